# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for analysis.py and module_args.py: requests from files and options, leaf choice, the result schema."""
from __future__ import annotations

import datetime
import json
import re

import pki
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.mailops.tls.plugins.module_utils import analysis, load
from ansible_collections.mailops.tls.plugins.module_utils.certs import sha256_hex
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.expiry import ExpiryPolicy, Threshold
from ansible_collections.mailops.tls.plugins.module_utils.module_args import (
    CHAIN_INPUT_SPEC,
    parse_valid_at,
    request_from_params,
)

MAIL = "mail.example.test"
PASSPHRASE = "correct horse battery staple"
UTC = datetime.timezone.utc

TOP_KEYS = {"certificates", "chain", "root", "issues", "names", "complete", "ordered", "trusted", "key_matches",
            "alternatives", "signature_checks"}
ENTRY_KEYS = {"subject", "issuer", "common_names", "dns_names", "ip_addresses", "serial", "not_before", "not_after",
              "days_left", "key_type", "key_size", "key_curve", "signature_algorithm", "is_ca", "path_length",
              "subject_key_id", "authority_key_id", "aia_ca_issuers", "self_signed", "fingerprints", "index", "source",
              "tlsa"}
ISSUE_KEYS = {"code", "severity", "message", "certificate"}
NAME_KEYS = {"name", "normalized", "matches", "matched_by", "source", "wildcard", "cn_only", "reason"}


def loaded(items, source: str = "bundle.pem") -> load.Loaded:
    return load.load_bytes(pki.pem_bundle(*items), source) if items else load.Loaded()


def analyze(given, roots=(), **options) -> analysis.Analysis:
    return analysis.analyze(analysis.Request(certificates=loaded(given), roots=loaded(roots, "roots.pem"), **options))


def codes(result: analysis.Analysis) -> list[str]:
    return sorted(f.code for f in result.findings)


def params(**values) -> dict:
    """The module options as AnsibleModule would pass them: every option, defaults filled in."""
    result = {name: spec.get("default") for name, spec in CHAIN_INPUT_SPEC.items()}
    result["system_roots"] = False
    result.update(values)
    return result


def key_body(pem: bytes) -> str:
    """The base64 text of a PEM block, without its BEGIN/END lines."""
    return "".join(line for line in pem.decode().splitlines() if line and not line.startswith("-----"))


@pytest.fixture(scope="module")
def h():
    return pki.hierarchy(MAIL, depth=1)


@pytest.fixture
def files(tmp_path, h):
    """A bundle with its key inside (encrypted), a separate key file, a root and a PKCS#12, on disk."""
    encrypted = h.leaf.key_pem(PASSPHRASE.encode())
    (tmp_path / "fullchain.pem").write_bytes(pki.pem_bundle(*h.served_chain) + encrypted)
    (tmp_path / "privkey.pem").write_bytes(h.leaf.key_pem())
    (tmp_path / "root.pem").write_bytes(h.root.pem)
    (tmp_path / "bundle.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"mail", h.leaf.key, h.leaf.cert, [h.intermediates[0].cert],
        serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    return tmp_path


# --- the result schema ---------------------------------------------------------------------------------------------

def results(h) -> dict:
    other = pki.hierarchy(MAIL)
    return {
        "clean": analyze(h.served_chain, roots=[h.root], names=[MAIL]),
        "no_certificate": analyze(()),
        "incomplete": analyze([h.leaf], names=["other.example.test"], keys=load.load_bytes(
            other.leaf.key_pem(), "other.key").keys),
        "cross_signed": analyze([h.leaf, h.intermediates[0], pki.cross_sign(h.intermediates[0], other.root)],
                                roots=[h.root, other.root]),
    }


def test_as_dict_is_json_with_stable_keys(h):
    for label, result in results(h).items():
        data = json.loads(json.dumps(result.as_dict()))
        assert set(data) == TOP_KEYS, label
        for entry in [*data["certificates"], *data["chain"], *([data["root"]] if data["root"] else [])]:
            assert set(entry) == ENTRY_KEYS, label
            assert set(entry["fingerprints"]) == {"md5", "sha1", "sha256", "spki_sha256"}
        for issue in data["issues"]:
            assert set(issue) == ISSUE_KEYS, label
            assert issue["certificate"] is None or set(issue["certificate"]) == {"index", "sha256", "subject"}
        for name in data["names"]:
            assert set(name) == NAME_KEYS, label


def test_as_dict_values(h):
    data = results(h)["clean"].as_dict()
    assert [e["fingerprints"]["sha256"] for e in data["chain"]] == [sha256_hex(i.der) for i in h.served_chain]
    assert data["root"]["fingerprints"]["sha256"] == sha256_hex(h.root.der)
    assert (data["complete"], data["ordered"], data["trusted"], data["key_matches"]) == (True, True, True, None)
    assert data["issues"] == [] and data["names"][0]["matches"] is True
    assert data["chain"][0]["index"] == 0 and data["chain"][0]["source"] == "block 1 of bundle.pem"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["chain"][0]["not_after"])
    assert data["chain"][0]["days_left"] in (364, 365)
    cross = results(h)["cross_signed"].as_dict()
    assert len(cross["alternatives"]) == 1 and cross["alternatives"][0][0] == sha256_hex(h.leaf.der)


def test_days_left_counts_from_valid_at(h):
    result = analyze(h.served_chain, roots=[h.root], valid_at=pki.NOW + 300 * pki.DAY)
    assert result.as_dict()["chain"][0]["days_left"] in (64, 65)
    assert "expires_soon" not in codes(result)
    assert "expires_soon" in codes(analyze(h.served_chain, roots=[h.root], valid_at=pki.NOW + 340 * pki.DAY))


@pytest.mark.parametrize("source", ["fullchain.pem", "bundle.p12", "content"])
def test_as_dict_holds_no_private_key_material(files, h, source):
    bundle_text = (files / "fullchain.pem").read_text()
    request = analysis.load_request(
        paths=[] if source == "content" else [str(files / source)],
        content=bundle_text if source == "content" else None,
        roots=[str(files / "root.pem")], system_roots=False, private_key_path=str(files / "privkey.pem"),
        passphrases=[b"a wrong one", PASSPHRASE.encode()], names=[MAIL])
    assert request.keys, "the keys were read"
    result = analysis.analyze(request)
    assert result.key_matches is True and result.trusted and "key_mismatch" not in codes(result)
    text = json.dumps(result.as_dict())
    secrets = [key_body(h.leaf.key_pem()), key_body(h.leaf.key_pem(PASSPHRASE.encode())), PASSPHRASE]
    for secret in ("PRIVATE KEY", *secrets, *(line for s in secrets[:2] for line in re.findall(".{64}", s))):
        assert secret not in text
    assert PASSPHRASE not in repr(result) and "PRIVATE KEY" not in repr(request)


def test_wrong_passphrase_is_a_parse_error_without_the_passphrase(files):
    request = analysis.load_request(paths=[str(files / "fullchain.pem")], system_roots=False,
                                    passphrases=[b"not the passphrase"])
    result = analysis.analyze(request)
    found = [f for f in result.findings if f.code == "parse_error"]
    assert len(found) == 1 and "passphrase" in found[0].message
    assert "not the passphrase" not in json.dumps(result.as_dict())


def test_key_mismatch_names_the_key_file(files):
    other = pki.new_key()
    (files / "other.key").write_bytes(pki.Issued(None, other).key_pem())
    request = analysis.load_request(paths=[str(files / "fullchain.pem")], system_roots=False,
                                    private_key_path=str(files / "other.key"))
    result = analysis.analyze(request)
    assert result.key_matches is False
    assert [f.code for f in result.findings if f.code.startswith("key")] == ["key_mismatch"]
    assert "other.key" in next(f.message for f in result.findings if f.code == "key_mismatch")


def test_system_trust_bundle_is_read_and_does_not_trust_a_private_root(files, h):
    path = analysis.system_trust_store()
    if path is None:
        pytest.skip("this host has no system trust bundle")
    request = analysis.load_request(paths=[str(files / "fullchain.pem")], system_roots=True,
                                    passphrases=[PASSPHRASE.encode()])
    assert len(request.system_roots.certificates) > 20
    assert request.system_roots.certificates[0].source == path
    result = analysis.analyze(request)
    assert not result.trusted
    assert "missing_intermediate" in codes(result)
    request = analysis.load_request(paths=[str(files / "fullchain.pem"), str(files / "root.pem")],
                                    system_roots=True, passphrases=[PASSPHRASE.encode()])
    result = analysis.analyze(request)
    assert not result.trusted and "untrusted_root" in codes(result)


# --- the leaf -----------------------------------------------------------------------------------------------------

def test_no_certificate():
    result = analyze(())
    assert codes(result) == ["no_certificate"]
    assert (result.chain, result.root, result.complete, result.trusted) == ((), None, False, False)


def test_leaf_is_the_certificate_the_key_matches(h):
    other = h.intermediates[0].leaf("other.example.test")
    keys = load.load_bytes(h.leaf.key_pem(), "mail.key").keys
    result = analyze([other, h.intermediates[0], h.leaf], roots=[h.root], keys=keys)
    assert result.chain[0].info.sha256 == sha256_hex(h.leaf.der)
    assert "unrelated_certificate" in codes(result)


def test_leaf_is_the_certificate_valid_for_the_names(h):
    other = h.intermediates[0].leaf("other.example.test")
    result = analyze([other, h.leaf, h.intermediates[0]], roots=[h.root], names=[MAIL])
    assert result.chain[0].info.sha256 == sha256_hex(h.leaf.der)
    result = analyze([other, h.leaf, h.intermediates[0]], roots=[h.root])
    assert result.chain[0].info.sha256 == sha256_hex(other.der)


def test_bundle_of_only_cas_takes_the_lowest_as_leaf(h):
    result = analyze([h.root, h.intermediates[0]], roots=[h.root])
    assert result.chain[0].info.sha256 == sha256_hex(h.intermediates[0].der)


def test_certificates_lists_every_given_certificate_with_its_position(h):
    result = analyze([h.leaf, h.intermediates[0], h.leaf], roots=[h.root])
    assert [(e.index, e.source) for e in result.certificates] == [
        (0, "block 1 of bundle.pem"), (1, "block 2 of bundle.pem"), (2, "block 3 of bundle.pem")]
    assert [e.info.sha256 for e in result.certificates] == [
        sha256_hex(i.der) for i in (h.leaf, h.intermediates[0], h.leaf)]


def test_loaded_certificates_from_der_as_a_server_sent_them(h):
    given = analysis.loaded_certificates([i.der for i in h.served_chain], "the chain sent by mail.example.test:25")
    result = analysis.analyze(analysis.Request(certificates=given, roots=loaded([h.root])))
    assert result.trusted and result.findings == ()
    assert result.chain[1].source == "certificate 2 of the chain sent by mail.example.test:25"


# --- module_args ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    (None, None),
    ("", None),
    ("2027-01-31", datetime.datetime(2027, 1, 31, tzinfo=UTC)),
    ("2027-01-31T12:30:00Z", datetime.datetime(2027, 1, 31, 12, 30, tzinfo=UTC)),
    ("2027-01-31T12:30:00z", datetime.datetime(2027, 1, 31, 12, 30, tzinfo=UTC)),
    (" 2027-01-31T12:30:00 ", datetime.datetime(2027, 1, 31, 12, 30, tzinfo=UTC)),
    ("2027-01-31T14:30:00+02:00", datetime.datetime(2027, 1, 31, 12, 30, tzinfo=UTC)),
])
def test_parse_valid_at(text, expected):
    parsed = parse_valid_at(text)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["2027-13-01", "2027-02-30", "tomorrow", "31.01.2027", "2027-01-31T25:00:00Z",
                                  "Z"])
def test_parse_valid_at_refuses_what_is_not_a_date(text):
    with pytest.raises(InputError) as caught:
        parse_valid_at(text)
    assert repr(text) in str(caught.value) and "ISO 8601" in str(caught.value) and "2027-01-31" in str(caught.value)


def test_request_from_params(files, h):
    request = request_from_params(params(
        path=[str(files / "fullchain.pem")], roots=[str(files / "root.pem")], names=[MAIL],
        private_key_passphrase=PASSPHRASE, valid_at="2027-01-31", expires_soon_days=10))
    assert len(request.certificates.certificates) == 2 and len(request.keys) == 1
    assert request.certificates.findings == ()
    assert request.system_roots.certificates == ()
    assert request.valid_at == datetime.datetime(2027, 1, 31, tzinfo=UTC)
    assert (request.names, request.expiry) == ((MAIL,), ExpiryPolicy(Threshold(days=10)))
    result = analysis.analyze(request)
    assert result.trusted and result.key_matches is True


def test_cn_fallback_and_max_chain_depth_reach_the_analysis(tmp_path):
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True)
    legacy = inter.leaf(common_name=MAIL)
    (tmp_path / "legacy.pem").write_bytes(pki.pem_bundle(legacy, inter))
    (tmp_path / "root.pem").write_bytes(top.pem)
    options = {"path": [str(tmp_path / "legacy.pem")], "roots": [str(tmp_path / "root.pem")], "names": [MAIL],
               "system_roots": False}
    assert codes(analysis.analyze(request_from_params(params(**options)))) == ["cn_only", "name_mismatch"]
    assert codes(analysis.analyze(request_from_params(params(**options, cn_fallback=True)))) == ["cn_only"]
    shallow = analysis.analyze(request_from_params(params(**options, cn_fallback=True, max_chain_depth=0)))
    assert "chain_too_deep" in codes(shallow) and not shallow.trusted


def test_request_from_params_with_pkcs12(files):
    request = request_from_params(params(path=[str(files / "bundle.p12")], pkcs12_passphrase=PASSPHRASE))
    assert len(request.certificates.certificates) == 2 and len(request.keys) == 1


@pytest.mark.parametrize(("values", "words"), [
    ({"expires_soon_days": -1}, ["expires_soon_days", "from 0 to 36500"]),
    ({"max_chain_depth": -1}, ["max_chain_depth", "0 or more", "default 8"]),
    ({"names": ["mail example.test"]}, ["names:", "'mail example.test'", "white space"]),
    ({"names": ["*.example.test"]}, ["names:", "wildcard"]),
    ({"names": [MAIL, ""]}, ["names:", "empty"]),
    ({"valid_at": "soon"}, ["valid_at", "'soon'", "ISO 8601"]),
])
def test_request_from_params_refuses_bad_options(files, values, words):
    with pytest.raises(InputError) as caught:
        request_from_params(params(path=[str(files / "fullchain.pem")], **values))
    for word in words:
        assert word in str(caught.value)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        request_from_params(params(path=[str(tmp_path / "nope.pem")]))


def test_passphrases_are_no_log():
    assert CHAIN_INPUT_SPEC["private_key_passphrase"].get("no_log") is True
    assert CHAIN_INPUT_SPEC["pkcs12_passphrase"].get("no_log") is True


def test_leaf_is_the_certificate_whose_issuers_the_pile_holds_without_key_or_names():
    """An old server certificate left before the real leaf is not taken for the leaf."""
    company = pki.hierarchy("mail.example.test", depth=2)
    stale = pki.hierarchy("old.example.test").leaf
    pile = pki.pem_bundle(company.intermediates[0], stale, company.root, company.intermediates[1], company.leaf)
    result = analysis.analyze(analysis.Request(certificates=load.load_bytes(pile, "pile.pem")))
    assert result.chain[0].info.subject == company.leaf.cert.subject.rfc4514_string()
    assert [f.code for f in result.findings if f.code == "unrelated_certificate"] == ["unrelated_certificate"]
