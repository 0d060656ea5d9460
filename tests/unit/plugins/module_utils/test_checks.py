# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for checks.py: for every issue code, a case that raises it and a near miss that does not."""
from __future__ import annotations

import datetime
import functools
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pki
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.mailops.tls.plugins.module_utils import analysis, chain, load, pathrules
from ansible_collections.mailops.tls.plugins.module_utils.certs import sha256_hex
from ansible_collections.mailops.tls.plugins.module_utils.expiry import ExpiryPolicy, Threshold
from ansible_collections.mailops.tls.plugins.module_utils.findings import CHAIN_CODES, CODES, SEVERITIES

REPO = Path(__file__).resolve().parents[4]
MAIL = "mail.example.test"
SECOND = datetime.timedelta(seconds=1)
DAMAGED = b"-----BEGIN CERTIFICATE-----\nMIIB!!!this is not base64!!!\n-----END CERTIFICATE-----\n"
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def loaded(items, source: str = "bundle.pem", check: bool = True) -> load.Loaded:
    return load.load_bytes(pki.pem_bundle(*items), source, check=check) if items else load.Loaded()


def analyze(given, pool=(), roots=(), system=(), raw: Optional[bytes] = None, keys=(), **options
            ) -> analysis.Analysis:
    """Analyse given (or raw bytes) as bundle.pem with the pool, operator roots and 'system' anchors."""
    certificates = load.load_bytes(raw, "bundle.pem") if raw is not None else loaded(given)
    request = analysis.Request(certificates=certificates, pool=loaded(pool, "pool.pem", check=False),
                               roots=loaded(roots, "roots.pem"), system_roots=loaded(system, "system.pem", check=False),
                               keys=tuple(keys), **options)
    return analysis.analyze(request)


def codes(result: analysis.Analysis) -> list[str]:
    return sorted(f.code for f in result.findings)


def key_of(item: pki.Issued, source: str = "key.pem") -> tuple[load.LoadedKey, ...]:
    return load.load_bytes(item.key_pem(), source).keys


@functools.cache
def rsa_key(bits: int):
    """RSA keys are slow to make: one per size for the whole module."""
    return pki.new_key("rsa", bits)


@dataclass
class Case:
    """An analysis, and what its finding must say: about which certificate, at which index, with which words."""

    result: analysis.Analysis
    certificate: Optional[pki.Issued] = None
    index: Optional[int] = None
    words: tuple[str, ...] = ()


def simple():
    return pki.hierarchy(MAIL, depth=1)


def clean(_tmp_path=None) -> analysis.Analysis:
    h = simple()
    return analyze(h.served_chain, roots=[h.root], names=[MAIL], keys=key_of(h.leaf))


# --- positive cases: one per code -------------------------------------------------------------------------------------

def parse_error(_tmp_path):
    h = simple()
    result = analyze((), raw=h.leaf.pem + DAMAGED + h.intermediates[0].pem, roots=[h.root])
    assert len(result.chain) == 2, "the intact certificates are still used"
    return Case(result, None, None, ("block 2 of bundle.pem", "base64"))


def ignored_block(_tmp_path):
    h = simple()
    public_key = h.leaf.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    result = analyze((), raw=h.leaf.pem + public_key + h.intermediates[0].pem, roots=[h.root])
    return Case(result, None, None, ("block 2 of bundle.pem", "PUBLIC KEY"))


def no_certificate(_tmp_path):
    return Case(analyze((), raw=simple().leaf.key_pem()), None, None, ("no certificate",))


def wrong_order(_tmp_path):
    h = simple()
    return Case(analyze([h.intermediates[0], h.leaf], roots=[h.root]), h.leaf, 1, (MAIL, "Test Intermediate CA 1"))


def missing_intermediate(_tmp_path):
    h = simple()
    return Case(analyze([h.leaf], roots=[h.root]), h.leaf, 0, ("Test Intermediate CA 1", "block 1 of bundle.pem"))


def root_included(_tmp_path):
    h = simple()
    return Case(analyze([*h.served_chain, h.root], roots=[h.root]), h.root, 2,
                ("Test Root CA", "block 3 of bundle.pem"))


def unrelated_certificate(_tmp_path):
    h, other = simple(), simple()
    result = analyze([*h.served_chain, other.leaf], roots=[h.root])
    return Case(result, other.leaf, 2, ("block 3 of bundle.pem", MAIL))


def duplicate_certificate(_tmp_path):
    h = simple()
    inter = h.intermediates[0]
    result = analyze([h.leaf, inter, inter], roots=[h.root])
    return Case(result, inter, 1, ("2 times", "block 2 of bundle.pem", "block 3 of bundle.pem"))


def untrusted_root(_tmp_path):
    h = simple()
    return Case(analyze([*h.served_chain, h.root]), h.root, 2, ("Test Root CA", "block 3 of bundle.pem"))


def chain_cycle(_tmp_path):
    ca_a, ca_b = pki.root("CA A"), pki.root("CA B")
    a_by_b, b_by_a = pki.cross_sign(ca_a, ca_b), pki.cross_sign(ca_b, ca_a)
    result = analyze([ca_a.leaf(MAIL), a_by_b, b_by_a])
    return Case(result, b_by_a, 2, ("CA B", "block 3 of bundle.pem"))


def chain_search_limit(_tmp_path):
    h = simple()
    inter = h.intermediates[0]
    decoys = [pki.lookalike(inter, h.root) for _decoy in range(chain.MAX_SIGNATURE_CHECKS + 1)]
    result = analyze([h.leaf], pool=decoys, roots=[h.root])
    return Case(result, h.leaf, 0, (f"{chain.MAX_SIGNATURE_CHECKS} signature checks",))


def cross_signed(_tmp_path):
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_a.issue("Shared Intermediate", ca=True)
    leaf = inter.leaf(MAIL)
    result = analyze([leaf, inter], pool=[pki.cross_sign(inter, root_b)], roots=[root_a], system=[root_b])
    return Case(result, leaf, 0, ("2 paths", "Root A", "Root B"))


def expired(_tmp_path):
    h = pki.hierarchy(MAIL, not_before=pki.NOW - 100 * pki.DAY, not_after=pki.NOW - 2 * pki.DAY)
    result = analyze(h.served_chain, roots=[h.root])
    return Case(result, h.leaf, 0, (MAIL, "block 1 of bundle.pem", f"{pki.NOW - 2 * pki.DAY:%Y-%m-%d}"))


def not_yet_valid(_tmp_path):
    h = pki.hierarchy(MAIL, not_before=pki.NOW + 3 * pki.DAY)
    result = analyze(h.served_chain, roots=[h.root])
    return Case(result, h.leaf, 0, (MAIL, "block 1 of bundle.pem", f"{pki.NOW + 3 * pki.DAY:%Y-%m-%d}"))


def expires_soon(_tmp_path):
    h = pki.hierarchy(MAIL, not_after=pki.NOW + 10 * pki.DAY)
    result = analyze(h.served_chain, roots=[h.root])
    return Case(result, h.leaf, 0, (MAIL, "block 1 of bundle.pem", f"{pki.NOW + 10 * pki.DAY:%Y-%m-%d}"))


def expires_critical(_tmp_path):
    """An intermediate of 100 days with 4 left: past a critical 5%; the leaf, with 9 of 10 days left, is not."""
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True, not_before=pki.NOW - 96 * pki.DAY, not_after=pki.NOW + 4 * pki.DAY)
    leaf = inter.leaf(MAIL, not_before=pki.NOW - pki.DAY, not_after=pki.NOW + 9 * pki.DAY)
    result = analyze([leaf, inter], roots=[top], valid_at=pki.NOW, expiry=ExpiryPolicy(
        Threshold(days=1), Threshold(percent=5)))
    return Case(result, inter, 1, ("Issuing CA", "block 2 of bundle.pem", "critical threshold of 5% of its 100-day"))


def not_a_ca(_tmp_path):
    top = pki.root()
    inter = top.issue("Server Posing As CA", ca=False)
    return Case(analyze([inter.leaf(MAIL), inter], roots=[top]), inter, 1,
                ("Server Posing As CA", f"signed 'CN={MAIL}", "block 2 of bundle.pem", "not a CA"))


def path_length_exceeded(_tmp_path):
    top = pki.root(path_length=0)
    inter = top.issue("Issuing CA", ca=True)
    return Case(analyze([inter.leaf(MAIL), inter], roots=[top]), top, None, ("Test Root CA", "roots"))


def bad_signature(_tmp_path):
    h = simple()
    lookalike = h.root.issue(subject=h.intermediates[0].subject, ca=True)
    return Case(analyze([h.leaf, lookalike], roots=[h.root]), h.leaf, 0,
                ("Test Intermediate CA 1", "block 1 of bundle.pem", "block 2 of bundle.pem"))


def name_mismatch(_tmp_path):
    h = simple()
    result = analyze(h.served_chain, roots=[h.root], names=["smtp.example.test"])
    return Case(result, h.leaf, 0, (MAIL, "smtp.example.test"))


def wildcard_used(_tmp_path):
    h = pki.hierarchy("*.example.test")
    return Case(analyze(h.served_chain, roots=[h.root], names=[MAIL]), h.leaf, 0, (MAIL, "*.example.test"))


def cn_only(_tmp_path):
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True)
    leaf = inter.leaf(common_name=MAIL)
    return Case(analyze([leaf, inter], roots=[top], names=[MAIL]), leaf, 0, (MAIL, "subjectAltName"))


def key_mismatch(_tmp_path):
    h = simple()
    result = analyze(h.served_chain, roots=[h.root], keys=key_of(h.intermediates[0], "mail.key"))
    return Case(result, h.leaf, 0, (MAIL, "mail.key"))


def _with_key_file(tmp_path, key_file_data: bytes) -> analysis.Analysis:
    """The simple chain analysed with private_key_path naming a file that holds key_file_data."""
    h = simple()
    (tmp_path / "bundle.pem").write_bytes(pki.pem_bundle(*h.served_chain))
    (tmp_path / "root.pem").write_bytes(h.root.pem)
    (tmp_path / "mail.key").write_bytes(key_file_data(h))
    return analysis.analyze(analysis.load_request([str(tmp_path / "bundle.pem")], roots=[str(tmp_path / "root.pem")],
                                                  system_roots=False, private_key_path=str(tmp_path / "mail.key")))


def no_private_key(tmp_path):
    result = _with_key_file(tmp_path, lambda h: h.leaf.pem)
    assert result.key_matches is None
    return Case(result, None, None, (str(tmp_path / "mail.key"), "holds no private key, only 1 certificate(s)"))


def weak_key(_tmp_path):
    h = pki.hierarchy(MAIL, key=rsa_key(1024))
    return Case(analyze(h.served_chain, roots=[h.root]), h.leaf, 0, (MAIL, "1024-bit RSA", "2048"))


@needs_openssl
def weak_signature(tmp_path):
    top = pki.root()
    inter = pki.openssl_ca(tmp_path, top, "SHA1 Issuing CA")
    return Case(analyze([inter.leaf(MAIL), inter], roots=[top]), inter, 1,
                ("SHA1 Issuing CA", "block 2 of bundle.pem", "SHA-1"))


def missing_server_auth(_tmp_path):
    h = pki.hierarchy(MAIL, server_auth=False)
    return Case(analyze(h.served_chain, roots=[h.root]), h.leaf, 0, (MAIL, "serverAuth"))


def leaf_is_ca(_tmp_path):
    """A self-signed server certificate that is its own trust anchor may be a CA (private mail servers)."""
    leaf = pki.root(MAIL, dns_names=[MAIL])
    return Case(analyze([leaf], roots=[leaf], names=[MAIL]), leaf, 0, (MAIL,))


POSITIVE: dict[str, Callable] = {function.__name__: function for function in (
    parse_error, ignored_block, no_certificate, wrong_order, missing_intermediate, root_included,
    unrelated_certificate, duplicate_certificate, untrusted_root, chain_cycle, chain_search_limit, cross_signed,
    expired, not_yet_valid, expires_soon, expires_critical, not_a_ca, path_length_exceeded, bad_signature,
    name_mismatch, wildcard_used, cn_only, key_mismatch, no_private_key, weak_key, weak_signature, missing_server_auth,
    leaf_is_ca)}


def test_every_code_has_a_positive_case():
    assert sorted(POSITIVE) == sorted(CHAIN_CODES)
    assert all(severity in SEVERITIES for severity, _description in CODES.values())


@pytest.mark.parametrize("code", sorted(CHAIN_CODES))
def test_positive(code, tmp_path):
    case = POSITIVE[code](tmp_path)
    found = [f for f in case.result.findings if f.code == code]
    assert len(found) == 1, f"{code}: {[f.message for f in case.result.findings]}"
    item = found[0]
    assert item.severity == CODES[code][0]
    for word in case.words:
        assert word in item.message, f"{word!r} not in {item.message!r}"
    if case.certificate is None:
        assert item.certificate is None
    else:
        assert item.certificate.sha256 == sha256_hex(case.certificate.der)
        assert item.certificate.index == case.index
        assert item.certificate.subject == case.certificate.cert.subject.rfc4514_string()
    assert item.as_dict()["code"] == code


# --- negative cases: a clean chain, and near misses -------------------------------------------------------------------

def clean_chain_has_no_findings():
    result = clean()
    assert result.findings == () and result.trusted and result.complete and result.ordered
    assert result.key_matches is True


def near_wrong_order(_tmp_path):
    h = simple()
    return analyze([*h.served_chain, h.root], roots=[h.root])


def near_duplicate(_tmp_path):
    h = simple()
    return analyze([*h.served_chain, h.root], pool=h.served_chain, roots=[h.root], system=[h.root])


def near_unrelated(_tmp_path):
    """Both issuers of a cross-signed intermediate: each is on a valid path of the leaf."""
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_a.issue("Shared Intermediate", ca=True)
    return analyze([inter.leaf(MAIL), inter, pki.cross_sign(inter, root_b)], roots=[root_a], system=[root_b])


def near_validity(_tmp_path):
    """Expired now, but analysed at a time when it was valid and far from expiry."""
    top = pki.root(not_before=pki.NOW - 200 * pki.DAY)
    inter = top.issue("Issuing CA", ca=True, not_before=pki.NOW - 200 * pki.DAY)
    leaf = inter.leaf(MAIL, not_before=pki.NOW - 100 * pki.DAY, not_after=pki.NOW - 2 * pki.DAY)
    assert "expired" in codes(analyze([leaf, inter], roots=[top]))
    return analyze([leaf, inter], roots=[top], valid_at=pki.NOW - 50 * pki.DAY,
                   expiry=ExpiryPolicy(Threshold(days=10)))


def near_expires_soon(_tmp_path):
    h = pki.hierarchy(MAIL, not_after=pki.NOW + 10 * pki.DAY)
    return analyze(h.served_chain, roots=[h.root], expiry=ExpiryPolicy(Threshold(days=5)))


def near_expires_critical(_tmp_path):
    """Past the warning threshold, not the critical one: expires_soon alone."""
    h = pki.hierarchy(MAIL, not_after=pki.NOW + 10 * pki.DAY)
    result = analyze(h.served_chain, roots=[h.root], expiry=ExpiryPolicy(Threshold(days=30), Threshold(days=7)))
    assert codes(result) == ["expires_soon"]
    return result


def near_not_a_ca(_tmp_path):
    top = pki.root("Version 1 Style Root", basic_constraints=False)
    inter = top.issue("Issuing CA", ca=True)
    return analyze([inter.leaf(MAIL), inter], roots=[top])


def near_path_length(_tmp_path):
    top = pki.root(path_length=1)
    inter = top.issue("Issuing CA", ca=True, path_length=0)
    return analyze([inter.leaf(MAIL), inter], roots=[top])


def near_bad_signature(_tmp_path):
    h = simple()
    lookalike = h.root.issue(subject=h.intermediates[0].subject, ca=True)
    return analyze([*h.served_chain, lookalike], roots=[h.root])


def near_names(_tmp_path):
    h = pki.hierarchy(MAIL, "*.example.test")
    return analyze(h.served_chain, roots=[h.root], names=[MAIL, "MAIL.example.test."])


def near_name_mismatch(_tmp_path):
    h = pki.hierarchy("*.example.test")
    return analyze(h.served_chain, roots=[h.root], names=[MAIL])


def near_weak_key(_tmp_path):
    h = pki.hierarchy(MAIL, key=rsa_key(2048))
    return analyze(h.served_chain, roots=[h.root])


@needs_openssl
def near_weak_signature(tmp_path):
    """A root's own SHA-1 self-signature is never checked by clients."""
    top = pki.openssl_ca(tmp_path, None, "SHA1 Self-Signed Root")
    inter = top.issue("Issuing CA", ca=True)
    return analyze([inter.leaf(MAIL), inter], roots=[top])


def near_untrusted_root(_tmp_path):
    h = simple()
    return analyze([*h.served_chain, h.root], system=[h.root])


def near_chain_cycle(_tmp_path):
    old = pki.root("Rollover CA", key_ids=False)
    new_with_old = old.issue(subject=old.subject, ca=True, key_ids=False)
    return analyze([new_with_old.leaf(MAIL, key_ids=False), new_with_old])


def near_search_limit(_tmp_path):
    h = simple()
    inter = h.intermediates[0]
    decoys = [h.root.issue(subject=inter.subject, ca=True) for _decoy in range(chain.MAX_SIGNATURE_CHECKS + 1)]
    return analyze([h.leaf], pool=[*decoys, inter], roots=[h.root])


def near_cross_signed(_tmp_path):
    """The second issuer's root is no anchor: only one trusted path."""
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_a.issue("Shared Intermediate", ca=True)
    return analyze([inter.leaf(MAIL), inter], pool=[pki.cross_sign(inter, root_b), root_b], roots=[root_a])


def near_no_private_key(tmp_path):
    """The key after a certificate in the same file, as a combined key+chain file may hold them."""
    result = _with_key_file(tmp_path, lambda h: h.leaf.pem + h.leaf.key_pem())
    assert result.key_matches is True
    return result


def near_key_mismatch(_tmp_path):
    h = simple()
    other = pki.new_key()
    keys = (*key_of(pki.Issued(None, other), "other.key"), *key_of(h.leaf, "mail.key"))
    return analyze(h.served_chain, roots=[h.root], keys=keys)


def near_leaf_usage(_tmp_path):
    h = simple()
    return analyze(h.served_chain, roots=[h.root])


def near_parse(_tmp_path):
    h = simple()
    return analyze((), raw=b"subject=CN = " + MAIL.encode() + b"\n" + pki.pem_bundle(*h.served_chain),
                   roots=[h.root])


NEAR_MISSES: dict[str, Callable] = {
    "wrong_order": near_wrong_order, "duplicate_certificate": near_duplicate, "unrelated_certificate": near_unrelated,
    "expired": near_validity, "not_yet_valid": near_validity, "expires_soon": near_expires_soon,
    "expires_critical": near_expires_critical,
    "not_a_ca": near_not_a_ca, "path_length_exceeded": near_path_length, "bad_signature": near_bad_signature,
    "name_mismatch": near_name_mismatch, "wildcard_used": near_names, "cn_only": near_names,
    "weak_key": near_weak_key, "weak_signature": near_weak_signature, "untrusted_root": near_untrusted_root,
    "chain_cycle": near_chain_cycle, "chain_search_limit": near_search_limit, "cross_signed": near_cross_signed,
    "key_mismatch": near_key_mismatch, "missing_server_auth": near_leaf_usage, "leaf_is_ca": near_leaf_usage,
    "no_private_key": near_no_private_key,
    "parse_error": near_parse, "ignored_block": near_parse, "no_certificate": near_parse,
    "missing_intermediate": clean, "root_included": clean,
}


def test_clean_chain_has_no_findings():
    clean_chain_has_no_findings()


def test_every_code_has_a_near_miss():
    assert sorted(NEAR_MISSES) == sorted(CHAIN_CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_clean_chain_lacks(code):
    assert code not in codes(clean())


@pytest.mark.parametrize("code", sorted(CHAIN_CODES))
def test_near_miss(code, tmp_path):
    result = NEAR_MISSES[code](tmp_path)
    assert code not in codes(result), [f.message for f in result.findings]


# --- details -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("days_left", "threshold", "expected"), [
    (10, None, True), (29, None, True), (31, None, False), (10, 5, False), (10, 11, True), (0.5, 0, False),
])
def test_expires_soon_threshold(days_left, threshold, expected):
    h = pki.hierarchy(MAIL, not_after=pki.NOW + days_left * pki.DAY)
    options = {} if threshold is None else {"expiry": ExpiryPolicy(Threshold(days=threshold))}
    result = analyze(h.served_chain, roots=[h.root], valid_at=pki.NOW, **options)
    assert ("expires_soon" in codes(result)) == expected


@pytest.mark.parametrize("kind", ["other_key", "same_ski", "no_key_ids"])
def test_bad_signature_for_each_kind_of_lookalike(kind):
    h = pki.hierarchy(MAIL, key_ids=kind != "no_key_ids")
    inter = h.intermediates[0]
    lookalike = pki.lookalike(inter, h.root) if kind == "same_ski" else \
        h.root.issue(subject=inter.subject, ca=True, key_ids=kind != "no_key_ids")
    result = analyze([h.leaf, lookalike], roots=[h.root])
    found = [f for f in result.findings if f.code == "bad_signature"]
    assert len(found) == 1 and "block 2 of bundle.pem" in found[0].message
    assert "unrelated_certificate" not in codes(result)


def test_lookalike_only_in_the_pool_is_not_blamed():
    h = simple()
    lookalike = h.root.issue(subject=h.intermediates[0].subject, ca=True)
    result = analyze([h.leaf], pool=[lookalike], roots=[h.root])
    assert codes(result) == ["missing_intermediate"]


def test_parse_error_outside_the_bundle_is_a_warning():
    h = simple()
    pool = load.load_bytes(DAMAGED + h.intermediates[0].pem, "pool.pem", check=False)
    request = analysis.Request(certificates=loaded([h.leaf]), pool=pool, roots=loaded([h.root], "roots.pem"))
    result = analysis.analyze(request)
    found = [f for f in result.findings if f.code == "parse_error"]
    assert len(found) == 1 and "pool.pem" in found[0].message
    assert found[0].severity == "warning"
    assert result.trusted


def test_a_leaf_not_first_is_out_of_order_even_if_the_rest_follows_it():
    h, other = simple(), pki.root("Other Root")
    result = analyze([other, *h.served_chain], roots=[h.root])
    assert codes(result) == ["unrelated_certificate", "wrong_order"]


def test_serving_order_of_an_incomplete_chain_places_the_missing_issuers():
    h = pki.hierarchy(MAIL, depth=2)
    result = analyze([h.intermediates[1], h.leaf], roots=[h.root])
    found = [f for f in result.findings if f.code == "wrong_order"]
    assert len(found) == 1 and "then each missing issuer after the certificate it signed" in found[0].message


def test_a_root_that_issued_the_leaf_itself_is_root_included():
    top = pki.root()
    leaf = top.leaf(MAIL)
    assert codes(analyze([leaf, top], roots=[top])) == ["root_included"]


def test_a_cross_certificate_of_the_root_that_issued_the_leaf_itself_is_not_unrelated():
    old, new = pki.root("Old Root"), pki.root("New Root")
    result = analyze([new.leaf(MAIL), pki.cross_sign(new, old)], system=[new])
    assert result.trusted and codes(result) == []


def test_a_second_certificate_for_a_self_signed_leafs_name_and_key_is_unrelated():
    """Only a root that issued something has cross-certificates that belong to the chain."""
    key = pki.new_key()
    self_signed = pki.Issued(pki.build_cert(subject=pki.name(MAIL), public_key=key.public_key(), issuer=None,
                                            ca=False, signing_key=key, dns_names=[MAIL]), key)
    issued = pki.root().issue(subject=self_signed.subject, key=key, dns_names=[MAIL])
    result = analyze([self_signed, issued], roots=[self_signed])
    assert [f.certificate.index for f in result.findings if f.code == "unrelated_certificate"] == [1]


@pytest.mark.parametrize(("moment", "expected"), [
    ("not_before", ["expires_soon"]), ("not_after", ["expires_soon"]),
    ("before", ["not_yet_valid"]), ("after", ["expired"]),
])
def test_validity_includes_both_ends_and_expiry_warnings_only_valid_certificates(moment, expected):
    """A 20-day leaf is within the 30-day warning from its first second to its last, and only then."""
    top = pki.root()
    leaf = top.leaf(MAIL, not_before=pki.NOW, not_after=pki.NOW + 20 * pki.DAY)
    valid_at = {"not_before": pki.NOW, "not_after": pki.NOW + 20 * pki.DAY, "before": pki.NOW - SECOND,
                "after": pki.NOW + 20 * pki.DAY + SECOND}[moment]
    assert codes(analyze([leaf], roots=[top], valid_at=valid_at)) == expected


@needs_openssl
@pytest.mark.parametrize("shape", ["root_issued_the_leaf", "untrusted_root", "intermediate_anchor",
                                   "self_signed_leaf_anchor"])
def test_sha1_signatures_clients_never_check_are_not_weak(shape, tmp_path):
    """A trust anchor's signature and a self-signed root's own are never checked (openssl verify at security level 2
    accepts each of these chains); a self-signed server certificate that is its own anchor is one of them."""
    if shape == "self_signed_leaf_anchor":
        leaf = pki.openssl_ca(tmp_path, None, MAIL)
        result = analyze([leaf], roots=[leaf])
        assert codes(result) == ["leaf_is_ca"]
        return
    top = pki.openssl_ca(tmp_path, None, "SHA1 Root") if shape != "intermediate_anchor" else pki.root()
    issuer = pki.openssl_ca(tmp_path, top, "SHA1 Issuing CA") if shape == "intermediate_anchor" else top
    leaf = issuer.leaf(MAIL)
    result = {"root_issued_the_leaf": lambda: analyze([leaf], roots=[top]),
              "untrusted_root": lambda: analyze([leaf, top]),
              "intermediate_anchor": lambda: analyze([leaf], roots=[issuer])}[shape]()
    expected = ["root_included", "untrusted_root"] if shape == "untrusted_root" else []
    assert codes(result) == expected  # no weak_signature


def test_weak_key_minimums():
    h = pki.hierarchy(MAIL, key_type="ecdsa384", leaf_key_type="ed25519")
    assert "weak_key" not in codes(analyze(h.served_chain, roots=[h.root]))


def test_issue_codes_are_documented():
    """docs/issue-codes.md has one '### code' heading per code, and no other code headings."""
    text = (REPO / "docs" / "issue-codes.md").read_text(encoding="utf-8")
    headings = re.findall(r"^###\s+`?([a-z_]+)`?\s*$", text, flags=re.MULTILINE)
    assert sorted(headings) == sorted(CODES)


# --- path validation rules (pathrules.py): a case and a near miss for each --------------------------------------------

PRIVATE_EXTENSION = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")


def constrained(*permitted: str) -> tuple[tuple[x509.NameConstraints, bool], ...]:
    return ((x509.NameConstraints(permitted_subtrees=[x509.DNSName(name) for name in permitted],
                                  excluded_subtrees=None), True),)


def chain_too_deep(_tmp_path):
    h = pki.hierarchy(MAIL, depth=3)
    result = analyze(h.served_chain, roots=[h.root], rules=pathrules.Rules(max_chain_depth=2))
    assert not result.trusted and "missing_intermediate" not in codes(result)
    return Case(result, h.leaf, 0, (MAIL, "more than 2 intermediate", "max_chain_depth"))


def near_chain_too_deep(_tmp_path):
    h = pki.hierarchy(MAIL, depth=3)
    return analyze(h.served_chain, roots=[h.root], rules=pathrules.Rules(max_chain_depth=3))


def certificate_version(_tmp_path):
    h = simple()
    leaf = pki.version_1(h.leaf, h.intermediates[0])
    return Case(analyze([leaf, *h.intermediates], roots=[h.root]), leaf, 0, (MAIL, "version 1", "leaf"))


def near_certificate_version(_tmp_path):
    """Version 3 certificates throughout, as every current CA issues them."""
    h = simple()
    return analyze(h.served_chain, roots=[h.root])


def unknown_critical_extension(_tmp_path):
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True, extensions=[(PRIVATE_EXTENSION, True)])
    return Case(analyze([inter.leaf(MAIL), inter], roots=[top]), inter, 1, ("Issuing CA", "1.3.6.1.4.1.55555.1"))


def near_unknown_critical_extension(_tmp_path):
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True, extensions=[(PRIVATE_EXTENSION, False)])
    return analyze([inter.leaf(MAIL), inter], roots=[top])


def basic_constraints_not_critical(_tmp_path):
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True, basic_constraints_critical=False)
    return Case(analyze([inter.leaf(MAIL), inter], roots=[top]), inter, 1, ("Issuing CA", "(intermediate)",
                                                                            "critical"))


def near_basic_constraints_not_critical(_tmp_path):
    """A leaf's basicConstraints (cA false) may be non-critical."""
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True)
    return analyze([inter.leaf(MAIL, basic_constraints_critical=False), inter], roots=[top])


def san_criticality(_tmp_path):
    h = pki.hierarchy(MAIL, san_critical=True)
    return Case(analyze(h.served_chain, roots=[h.root], names=[MAIL]), h.leaf, 0, (MAIL, "critical"))


def near_san_criticality(_tmp_path):
    """An empty subject needs a critical subjectAltName."""
    h = pki.hierarchy(MAIL, san_critical=True, subject=x509.Name([]))
    return analyze(h.served_chain, roots=[h.root], names=[MAIL])


def ca_as_leaf(_tmp_path):
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True)
    leaf = inter.issue(MAIL, ca=True, dns_names=[MAIL])
    return Case(analyze([leaf, inter], roots=[top], names=[MAIL]), leaf, 0, (MAIL, "Issuing CA"))


def issuer_missing_server_auth(_tmp_path):
    top = pki.root()
    inter = top.issue("Client CA", ca=True,
                      extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)])
    return Case(analyze([inter.leaf(MAIL), inter], roots=[top]), inter, 1,
                ("Client CA", "(intermediate)", "serverAuth"))


def near_issuer_missing_server_auth(_tmp_path):
    top = pki.root()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    inter = top.issue("Issuing CA", ca=True, extensions=[(x509.ExtendedKeyUsage(usages), False)])
    return analyze([inter.leaf(MAIL), inter], roots=[top])


def name_constraint_violation(_tmp_path):
    top = pki.root()
    inter = top.issue("Example Org CA", ca=True, extensions=constrained("example.org"))
    leaf = inter.leaf("mail.other.test")
    return Case(analyze([leaf, inter], roots=[top]), leaf, 0, ("mail.other.test", "Example Org CA"))


def near_name_constraint_violation(_tmp_path):
    top = pki.root()
    inter = top.issue("Example Org CA", ca=True, extensions=constrained("example.org"))
    return analyze([inter.leaf("mail.example.org", "example.org"), inter], roots=[top])


def many_constraints(count: int):
    top = pki.root()
    inter = top.issue("Busy CA", ca=True, extensions=constrained(*(f"d{n}.example.org" for n in range(count))))
    return top, inter, inter.leaf(*(f"mail.d{n}.example.org" for n in range(count)))


def name_constraints_too_complex(_tmp_path):
    top, inter, leaf = many_constraints(300)  # 90,000 comparisons
    return Case(analyze([leaf, inter], roots=[top]), inter, 1, ("Busy CA", "comparisons"))


def near_name_constraints_too_complex(_tmp_path):
    top, inter, leaf = many_constraints(100)
    return analyze([leaf, inter], roots=[top])


PATH_RULE_CASES = (chain_too_deep, certificate_version, unknown_critical_extension, basic_constraints_not_critical,
                   san_criticality, ca_as_leaf, issuer_missing_server_auth, name_constraint_violation,
                   name_constraints_too_complex)
POSITIVE.update({function.__name__: function for function in PATH_RULE_CASES})
NEAR_MISSES.update({
    "chain_too_deep": near_chain_too_deep, "certificate_version": near_certificate_version,
    "unknown_critical_extension": near_unknown_critical_extension,
    "basic_constraints_not_critical": near_basic_constraints_not_critical, "san_criticality": near_san_criticality,
    "ca_as_leaf": near_leaf_usage, "issuer_missing_server_auth": near_issuer_missing_server_auth,
    "name_constraint_violation": near_name_constraint_violation,
    "name_constraints_too_complex": near_name_constraints_too_complex,
})
