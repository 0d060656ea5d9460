# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for chainfiles.py: which files mail_tls_chain writes, their bytes and modes, refusals and the diff facts."""
from __future__ import annotations

import base64
import grp
import pwd
import shutil
import subprocess
from pathlib import Path

import pki
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from ansible_collections.mailops.tls.plugins.module_utils import chainfiles
from ansible_collections.mailops.tls.plugins.module_utils.chainfiles import (
    Change,
    FileState,
    Output,
    PlannedFile,
    compare,
    listing,
    outputs_from_params,
    parse_mode,
    plan,
)
from ansible_collections.mailops.tls.plugins.module_utils.client_matrix import clients_note
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.load import LoadedKey
from ansible_collections.mailops.tls.plugins.module_utils.module_args import CHAIN_INPUT_SPEC

PASSPHRASE = "a passphrase made up for this test 41c9"
NOBODY = pwd.getpwnam("nobody")
NOGROUP = grp.getgrnam("nogroup")


def params(**options) -> dict:
    """Module parameters as AnsibleModule would pass them: every option present, defaults filled in."""
    base = {name: spec.get("default") for name, spec in CHAIN_INPUT_SPEC.items()}
    base.update({name: None for name in chainfiles.OUTPUT_OPTIONS})
    base.update(system_roots=False, chains=None, force=False, backup=False, fail_on=[], ignore=[])
    base.update(options)
    return base


def key_base64_lines(issued: pki.Issued) -> list[str]:
    """The base64 lines of the key in every encoding a leak could take."""
    lines = []
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = issued.key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
        lines.extend(line for line in pem.splitlines() if "-----" not in line and len(line) > 20)
    return lines


@pytest.fixture()
def files(tmp_path: Path, company) -> dict:
    upper, lower = company.intermediates
    contents = {
        "messy.pem": b"Bag Attributes\n  friendlyName: mail\nsubject=junk\n" + pki.pem_bundle(upper, company.leaf)
                     + b"\n# trailing notes\n",
        "lower.pem": lower.pem,
        "root.pem": company.root.pem,
        "key.pem": company.leaf.key_pem(),
        "other.key": pki.new_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()),
    }
    paths = {}
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
        paths[name] = str(tmp_path / name)
    return paths


def served_pem(company) -> bytes:
    return pki.pem_bundle(*company.served_chain)


# --- modes -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("0600", 0o600), ("600", 0o600), ("0640", 0o640), ("0o644", 0o644), (" 0644 ", 0o644), (0o600, 0o600),
    (0o644, 0o644), ("0000", 0),
])
def test_modes_are_read_as_the_file_module_reads_them(value, expected):
    assert parse_mode(value, "key_mode") == expected


@pytest.mark.parametrize(("value", "message"), [
    ("u=rw,g=r", "is not an octal mode"),
    ("0800", "is not an octal mode"),
    ("", "is not an octal mode"),
    ("04755", "sets bits other than read, write and execute"),
    (600, "YAML read the unquoted 600 as a decimal number, which is octal 1130): quote it, such as '0600'"),
    (644, "quote it, such as '0644'"),
    (True, "must be an octal mode"),
    (["0600"], "must be an octal mode"),
])
def test_bad_modes_are_refused_with_the_fix(value, message):
    with pytest.raises(InputError, match="key_mode") as caught:
        parse_mode(value, "key_mode")
    assert message in str(caught.value)


def test_default_modes_keep_key_material_private():
    outputs = outputs_from_params(params(**{f"{kind}_path": f"/srv/{kind}.pem" for kind in chainfiles.KINDS}))
    assert {o.kind: o.mode for o in outputs} == {"fullchain": 0o644, "chain": 0o644, "combined": 0o600,
                                                 "key": 0o600, "root": 0o644}
    assert [o.kind for o in outputs] == list(chainfiles.KINDS)


@pytest.mark.parametrize("kind", ["key", "combined"])
@pytest.mark.parametrize(("mode", "refused"), [
    ("0644", True), ("0604", True), ("0602", True), ("0601", True), ("0666", True),
    ("0600", False), ("0640", False), ("0660", False), ("0400", False),
])
def test_a_mode_giving_other_users_access_to_a_key_is_refused(kind, mode, refused):
    options = params(**{f"{kind}_path": "/srv/k.pem", f"{kind}_mode": mode})
    if refused:
        with pytest.raises(InputError, match=rf"{kind}_mode {mode} would let every user on the host read or change "
                                             r"the private key in /srv/k.pem"):
            outputs_from_params(options)
    else:
        assert outputs_from_params(options)[0].mode == int(mode, 8)


@pytest.mark.parametrize("kind", ["fullchain", "chain", "root"])
def test_files_without_key_material_may_be_world_readable(kind):
    assert outputs_from_params(params(**{f"{kind}_path": "/srv/x.pem", f"{kind}_mode": "0644"}))[0].mode == 0o644


@pytest.mark.parametrize(("options", "message"), [
    ({"key_mode": "0600"}, "key_mode is set but key_path is not"),
    ({"fullchain_path": "/srv/f.pem", "fullchain_owner": "no-such-user-x"},
     "fullchain_owner: owner 'no-such-user-x' is not a user on this host"),
    ({"key_path": "/srv/k.pem", "key_group": "no-such-group-x"},
     "key_group: group 'no-such-group-x' is not a group on this host"),
])
def test_output_options_are_checked(options, message):
    with pytest.raises(InputError, match=message):
        outputs_from_params(params(**options))


def test_two_outputs_naming_one_file_are_refused(files):
    with pytest.raises(InputError, match="named for both the fullchain output and the combined output"):
        plan(params(path=[files["messy.pem"]], fullchain_path="/srv/a.pem", combined_path="/srv/../srv/a.pem"))


def test_two_chains_naming_one_file_are_refused(files):
    chain = {"path": [files["messy.pem"]], "fullchain_path": "/srv/a.pem"}
    with pytest.raises(InputError, match="named for both"):
        plan(params(chains=[chain, dict(chain)]))


# --- what is written ---------------------------------------------------------------------------------------------

def test_every_output_holds_what_its_server_setting_expects(files, company):
    plans = plan(params(path=[files["messy.pem"]], pool=[files["lower.pem"]], roots=[files["root.pem"]],
                        private_key_path=files["key.pem"], names=["mail.example.test"],
                        **{f"{kind}_path": f"/srv/{kind}.pem" for kind in chainfiles.KINDS}))
    (only,) = plans
    assert only.verdict.passed, only.verdict.violations
    data = {f.output.kind: f.data for f in only.files}
    key_pem = company.leaf.key_pem()  # unencrypted PKCS#8
    assert data["fullchain"] == served_pem(company)
    assert data["chain"] == pki.pem_bundle(*company.served_chain[1:])
    assert data["combined"] == key_pem + served_pem(company)
    assert data["key"] == key_pem
    assert data["root"] == company.root.pem
    assert data["key"].startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_the_chain_is_written_in_serving_order_with_the_pool_intermediate(files, company):
    (only,) = plan(params(path=[files["messy.pem"]], pool=[files["lower.pem"]], roots=[files["root.pem"]],
                          fullchain_path="/srv/f.pem"))
    input_codes = {f.code for f in only.analysis.findings}
    assert {"wrong_order", "missing_intermediate"} <= input_codes  # the input is messy and incomplete ...
    assert only.verdict.passed  # ... but the file written is complete and ordered
    loaded = [x509.load_pem_x509_certificate(block) for block in
              [b"-----BEGIN" + part for part in only.files[0].data.split(b"-----BEGIN")[1:]]]
    assert [c.subject for c in loaded] == [c.subject for c in company.served_chain]


def test_a_root_issuing_the_leaf_directly_gives_an_empty_chain_file(tmp_path):
    top = pki.root()
    leaf = top.leaf("mail.example.test")
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    (tmp_path / "root.pem").write_bytes(top.pem)
    (only,) = plan(params(path=[str(tmp_path / "leaf.pem")], roots=[str(tmp_path / "root.pem")],
                          chain_path="/srv/c.pem", fullchain_path="/srv/f.pem"))
    assert {f.output.kind: f.data for f in only.files} == {"fullchain": leaf.pem, "chain": b""}


def pile(tmp_path: Path, company, fmt: str) -> dict:
    """The company's chain (with the root) and key as an operator may hold it, in one format; returns options."""
    leaf, (upper, lower), top = company.leaf, company.intermediates, company.root
    certs = [c.cert for c in (upper, top, leaf, lower)]
    if fmt == "pem_with_junk":
        (tmp_path / "in.pem").write_bytes(b"issuer=whatever\r\n" + pki.pem_bundle(upper, top, leaf, lower)
                                          .replace(b"\n", b"\r\n") + b"-- end of mail --\n")
        (tmp_path / "in.key").write_bytes(leaf.key_pem())
        return {"path": [str(tmp_path / "in.pem")], "private_key_path": str(tmp_path / "in.key")}
    if fmt == "der":
        paths = []
        for number, item in enumerate((upper, top, leaf, lower)):
            (tmp_path / f"{number}.der").write_bytes(item.der)
            paths.append(str(tmp_path / f"{number}.der"))
        (tmp_path / "in.key.der").write_bytes(leaf.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return {"path": paths, "private_key_path": str(tmp_path / "in.key.der")}
    if fmt == "pkcs7":
        (tmp_path / "in.p7b").write_bytes(pkcs7_der(tmp_path, certs))
        (tmp_path / "in.key").write_bytes(leaf.key_pem())
        return {"path": [str(tmp_path / "in.p7b")], "private_key_path": str(tmp_path / "in.key")}
    if fmt == "pkcs12_with_passphrase":
        (tmp_path / "in.p12").write_bytes(pkcs12.serialize_key_and_certificates(
            b"mail", leaf.key, leaf.cert, [upper.cert, top.cert, lower.cert],
            serialization.BestAvailableEncryption(PASSPHRASE.encode())))
        return {"path": [str(tmp_path / "in.p12")], "pkcs12_passphrase": PASSPHRASE}
    if fmt in ("encrypted_pkcs8_key", "encrypted_traditional_key"):
        (tmp_path / "in.pem").write_bytes(pki.pem_bundle(lower, leaf, upper))
        (tmp_path / "in.key").write_bytes(leaf.key_pem(PASSPHRASE.encode(),
                                                       "pkcs8" if "pkcs8" in fmt else "traditional"))
        return {"path": [str(tmp_path / "in.pem")], "private_key_path": str(tmp_path / "in.key"),
                "private_key_passphrase": PASSPHRASE}
    raise ValueError(fmt)


def pkcs7_der(tmp_path: Path, certs: list) -> bytes:
    """A DER PKCS#7 certs-only bundle: by cryptography >= 37, else by openssl crl2pkcs7."""
    if hasattr(pkcs7, "serialize_certificates"):
        return pkcs7.serialize_certificates(certs, serialization.Encoding.DER)
    if shutil.which("openssl") is None:
        pytest.skip("cryptography < 37 and no openssl command: cannot build PKCS#7")
    (tmp_path / "for-p7.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return subprocess.run(["openssl", "crl2pkcs7", "-nocrl", "-outform", "DER", "-certfile",
                           str(tmp_path / "for-p7.pem")], capture_output=True, check=True).stdout


FORMATS = ["pem_with_junk", "der", "pkcs7", "pkcs12_with_passphrase", "encrypted_pkcs8_key",
           "encrypted_traditional_key"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key_type", ["rsa", "ecdsa"])
def test_every_input_format_gives_the_same_files(tmp_path, fmt, key_type):
    company = pki.hierarchy("mail.example.test", depth=2, key_type=key_type)
    (tmp_path / "root.pem").write_bytes(company.root.pem)
    (only,) = plan(params(roots=[str(tmp_path / "root.pem")], names=["mail.example.test"],
                          combined_path="/srv/c.pem", fullchain_path="/srv/f.pem", root_path="/srv/r.pem",
                          **pile(tmp_path, company, fmt)))
    assert only.verdict.passed, only.verdict.violations
    data = {f.output.kind: f.data for f in only.files}
    assert data == {"combined": company.leaf.key_pem() + served_pem(company), "fullchain": served_pem(company),
                    "root": company.root.pem}


def test_two_chains_rsa_and_ecdsa(tmp_path):
    rsa = pki.hierarchy("mail.example.test", key_type="rsa")
    ecdsa = pki.hierarchy("mail.example.test", key_type="ecdsa")
    chains = []
    for label, company in (("rsa", rsa), ("ecdsa", ecdsa)):
        (tmp_path / f"{label}.pem").write_bytes(pki.pem_bundle(*company.served_chain))
        (tmp_path / f"{label}.key").write_bytes(company.leaf.key_pem())
        (tmp_path / f"{label}-root.pem").write_bytes(company.root.pem)
        chains.append({"path": [str(tmp_path / f"{label}.pem")], "private_key_path": str(tmp_path / f"{label}.key"),
                       "combined_path": f"/srv/{label}.pem"})
    roots = [str(tmp_path / "rsa-root.pem"), str(tmp_path / "ecdsa-root.pem")]
    plans = plan(params(chains=chains, roots=roots, names=["mail.example.test"]))
    assert [p.label for p in plans] == ["chains[0]", "chains[1]"]
    assert [p.files[0].data for p in plans] == [c.leaf.key_pem() + served_pem(c) for c in (rsa, ecdsa)]
    assert [p.analysis.chain[0].info.key_type for p in plans] == ["rsa", "ecdsa"]


# --- refusals ----------------------------------------------------------------------------------------------------

def refusal(tmp_path: Path, case: str) -> dict:
    """Options for a chain that must not be written, by case."""
    company = pki.hierarchy("mail.example.test", depth=2)
    upper, lower = company.intermediates
    (tmp_path / "root.pem").write_bytes(company.root.pem)
    options = {"roots": [str(tmp_path / "root.pem")], "fullchain_path": "/srv/f.pem"}
    bundle = pki.pem_bundle(company.leaf, lower, upper)
    if case == "incomplete":
        bundle = pki.pem_bundle(company.leaf, upper)
    elif case == "expired":
        old = upper.leaf("mail.example.test", not_before=pki.NOW - 400 * pki.DAY, not_after=pki.NOW - pki.DAY)
        bundle = pki.pem_bundle(old, lower, upper)
    elif case == "name_mismatch":
        options["names"] = ["smtp.example.test"]
    elif case == "key_mismatch":
        (tmp_path / "other.key").write_bytes(pki.root().key_pem())
        options["private_key_path"] = str(tmp_path / "other.key")
    elif case == "untrusted_root":
        options["roots"] = []
        bundle += company.root.pem
    elif case == "parse_error":
        bundle += b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
    (tmp_path / "in.pem").write_bytes(bundle)
    return dict(options, path=[str(tmp_path / "in.pem")])


@pytest.mark.parametrize(("case", "codes"), [
    ("incomplete", ["missing_intermediate"]),
    ("expired", ["expired"]),
    ("name_mismatch", ["name_mismatch"]),
    ("key_mismatch", ["key_mismatch"]),
    ("untrusted_root", ["untrusted_root"]),
    ("parse_error", ["parse_error"]),
])
def test_a_chain_with_errors_is_refused_unless_forced(tmp_path, case, codes):
    options = refusal(tmp_path, case)
    (refused,) = plan(params(**options))
    assert not refused.verdict.passed
    assert [f.code for f in refused.verdict.violations] == codes
    assert refused.files == ()  # nothing rendered, so nothing can be written
    message = chainfiles.refusal_message([refused])
    assert message.splitlines()[0] == f"the chain to write: {len(codes)} policy violation(s):"
    assert message.splitlines()[1].startswith(f"- [{codes[0]}] ")
    assert "set force: true" in message
    (forced,) = plan(params(force=True, **options))
    assert [f.code for f in forced.verdict.violations] == codes
    assert [f.output.kind for f in forced.files] == ["fullchain"]


def located_refusals(tmp_path: Path, case: str, monkeypatch) -> tuple[dict, str]:
    """Options for a refused chain whose one violation names a certificate, and that violation's exact message."""
    root = pki.root("Located Root")
    intermediate = root.issue("Located Intermediate", ca=True)
    leaf = intermediate.leaf("mail.example.test")
    expired = {"not_before": pki.NOW - 400 * pki.DAY, "not_after": pki.NOW - pki.DAY}
    day = f"{(pki.NOW - pki.DAY):%Y-%m-%d}"
    options = {"roots": [str(tmp_path / "roots.pem")], "fullchain_path": "/srv/f.pem"}
    files = {"roots.pem": root.pem, "in.pem": pki.pem_bundle(intermediate, leaf)}  # out of order
    old_intermediate = "'CN=Located Intermediate,O=mailops test'"
    if case == "expired_root_in_roots":
        root = pki.root("Located Root", key=root.key, **expired)
        files["roots.pem"] = root.pem
        message = (f"'CN=Located Root,O=mailops test' (the root of the chain to write, from block 1 of {tmp_path}/"
                   f"roots.pem (roots)) expired on {day}: renew it, or use the CA's current certificate")
    elif case == "expired_root_in_the_system_store":
        root = pki.root("Located Root", key=root.key, **expired)
        files["store.pem"] = pki.root("Another Root").pem + root.pem
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "store.pem"))
        options.update(roots=[], system_roots=True)
        message = (f"'CN=Located Root,O=mailops test' (the root of the chain to write, from block 2 of {tmp_path}/"
                   f"store.pem (system trust store)) expired on {day}: renew it, or use the CA's current certificate")
    elif case == "expired_intermediate_out_of_order":
        old = root.issue("Located Intermediate", ca=True, key=intermediate.key, **expired)
        files["in.pem"] = pki.pem_bundle(old, leaf)
        message = (f"{old_intermediate} (certificate 2 of the chain to write, from block 1 of {tmp_path}/in.pem) "
                   f"expired on {day}: renew it, or use the CA's current certificate")
    elif case == "expired_intermediate_from_the_pool":
        old = root.issue("Located Intermediate", ca=True, key=intermediate.key, **expired)
        files.update({"in.pem": leaf.pem, "pool.pem": pki.root("Unrelated Root").pem + old.pem})
        options["pool"] = [str(tmp_path / "pool.pem")]
        message = (f"{old_intermediate} (certificate 2 of the chain to write, from block 2 of {tmp_path}/pool.pem "
                   f"(pool)) expired on {day}: renew it, or use the CA's current certificate")
    elif case == "missing_intermediate":
        files["in.pem"] = pki.pem_bundle(pki.root("Unrelated Root"), leaf)
        message = (f"the issuer {old_intermediate} of 'CN=mail.example.test,O=mailops test' (certificate 1 of the "
                   f"chain to write, from block 2 of {tmp_path}/in.pem) is missing: add that intermediate certificate "
                   "after it; if it is the root of a private CA, give it in roots instead")
    elif case == "untrusted_root_in_the_pool":
        files["pool.pem"] = root.pem
        options.update(roots=[], pool=[str(tmp_path / "pool.pem")])
        message = (f"the chain ends in the self-signed 'CN=Located Root,O=mailops test' (the root of the chain to "
                   f"write, from block 1 of {tmp_path}/pool.pem (pool)), which is not among the trust anchors: give "
                   "it in roots if it is your private CA, and publish it for your users")
    elif case == "untrusted_root_given_first":
        files["in.pem"] = pki.pem_bundle(root, intermediate, leaf)
        options["roots"] = []
        message = (f"the chain ends in the self-signed 'CN=Located Root,O=mailops test' (the root of the chain to "
                   f"write, from block 1 of {tmp_path}/in.pem), which is not among the trust anchors: give it in roots "
                   "if it is your private CA, and publish it for your users")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return dict(options, path=[str(tmp_path / "in.pem")]), message


@pytest.mark.parametrize("case", ["expired_root_in_roots", "expired_root_in_the_system_store",
                                  "expired_intermediate_out_of_order", "expired_intermediate_from_the_pool",
                                  "missing_intermediate", "untrusted_root_in_the_pool", "untrusted_root_given_first"])
def test_a_refusal_names_each_certificate_by_its_place_in_the_chain_to_write_and_its_input(tmp_path, case,
                                                                                           monkeypatch):
    options, message = located_refusals(tmp_path, case, monkeypatch)
    (refused,) = plan(params(**options))
    assert [f.message for f in refused.verdict.violations] == [message]


def test_a_refusal_of_several_chains_locates_each_certificate_in_its_own_chain(tmp_path, monkeypatch):
    options, message = located_refusals(tmp_path, "expired_intermediate_out_of_order", monkeypatch)
    good = pki.hierarchy("mail.example.test")
    (tmp_path / "good.pem").write_bytes(pki.pem_bundle(*good.served_chain))
    (tmp_path / "roots.pem").write_bytes((tmp_path / "roots.pem").read_bytes() + good.root.pem)
    chains = [{"path": [str(tmp_path / "good.pem")], "fullchain_path": "/srv/good.pem"},
              {"path": options["path"], "fullchain_path": "/srv/f.pem"}]
    plans = plan(params(roots=options["roots"], chains=chains))
    assert [p.verdict.passed for p in plans] == [True, False]
    assert chainfiles.refusal_message(plans).splitlines()[:2] == [
        "chains[1]: 1 policy violation(s):", f"- [expired] {message}. {clients_note('expired')}"]


def test_ignore_waives_and_fail_on_adds(tmp_path):
    options = refusal(tmp_path, "name_mismatch")
    (waived,) = plan(params(ignore=["name_mismatch"], **options))
    assert waived.verdict.passed and [f.code for f in waived.verdict.waived] == ["name_mismatch"]
    assert waived.files
    (strict,) = plan(params(fail_on=["cross_signed", "expires_soon"], expires_soon_days=400,
                            **refusal(tmp_path, "good")))
    assert {f.code for f in strict.verdict.violations} == {"expires_soon"}
    with pytest.raises(InputError, match="fail_on lists unknown issue code"):
        plan(params(fail_on=["no_such_code"], **options))


def test_one_refused_chain_stops_every_chain(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good = refusal(tmp_path / "good", "good")
    bad = refusal(tmp_path / "bad", "key_mismatch")
    plans = plan(params(chains=[
        {"path": good["path"], "fullchain_path": "/srv/good.pem"},
        {"path": bad["path"], "private_key_path": bad["private_key_path"], "fullchain_path": "/srv/bad.pem"},
    ], roots=good["roots"] + bad["roots"]))
    assert [p.verdict.passed for p in plans] == [True, False]
    assert all(p.files == () for p in plans)
    assert chainfiles.refusal_message(plans).splitlines()[0] == "chains[1]: 1 policy violation(s):"


@pytest.mark.parametrize(("case", "output", "message"), [
    ("incomplete", "root_path", "ends in no root"),
    ("key_mismatch", "key_path", "no key given belongs to it"),
    ("key_mismatch", "combined_path", "no key given belongs to it"),
    ("good", "key_path", "no key given belongs to it"),
])
def test_force_does_not_invent_a_root_or_a_key(tmp_path, case, output, message):
    with pytest.raises(InputError, match=message):
        plan(params(force=True, **dict(refusal(tmp_path, case), **{output: "/srv/out.pem"})))


# --- comparing and the diff --------------------------------------------------------------------------------------

def planned(data: bytes = b"x", **output) -> PlannedFile:
    return PlannedFile(Output(**dict({"kind": "key", "path": "/srv/k.pem", "mode": 0o600}, **output)), data)


@pytest.mark.parametrize(("state", "output", "expected"), [
    (FileState(), {}, Change(True)),
    (FileState(b"x", 0, 0, 0o600), {}, Change(False)),
    (FileState(b"y", 0, 0, 0o600), {}, Change(True)),
    (FileState(b"x", 0, 0, 0o644), {}, Change(False, ("mode 0644 -> 0600",))),
    (FileState(b"x", 0, 0, 0o600), {"owner": "nobody", "group": "nogroup"},
     Change(False, ("owner root -> nobody", "group root -> nogroup"))),
    (FileState(b"x", NOBODY.pw_uid, NOGROUP.gr_gid, 0o600), {"owner": "nobody", "group": str(NOGROUP.gr_gid)},
     Change(False)),
    (FileState(b"x", 12345, 0, 0o600), {}, Change(False)),  # no owner wanted: the current one stays
])
def test_compare_reports_content_and_each_attribute(state, output, expected):
    change = compare(planned(**output), state)
    assert change == expected
    assert change.changed is (expected.content or bool(expected.attributes))


def test_listing_names_certificates_and_keys_without_key_material(company):
    data = company.leaf.key_pem() + served_pem(company)
    text = listing(FileState(data, 0, 0, 0o600), "/srv/combined.pem")
    lines = text.splitlines()
    assert lines[0] == "owner=root group=root mode=0600"
    assert lines[1].startswith("private key (ecdsa secp256r1, 256 bits, SPKI SHA-256 ")
    assert lines[2] == f"[1] subject: {company.leaf.subject.rfc4514_string()}"
    assert f"SHA-256: {pki_sha256(company.intermediates[1])}" in text
    assert "valid: " in lines[3] and " to " in lines[3]
    assert "PRIVATE KEY" not in text
    assert not any(line in text for line in key_base64_lines(company.leaf))
    assert base64.b64encode(company.leaf.der).decode()[:40] not in text


def test_listing_of_an_absent_empty_or_damaged_file():
    assert listing(FileState(), "/srv/x.pem") == ""
    assert listing(FileState(b"", 0, 0, 0o644), "/srv/x.pem") == "owner=root group=root mode=0644\n(empty)\n"
    assert "parse_error: /srv/x.pem cannot be read" in listing(FileState(b"# nothing\n", 0, 0, 0o644), "/srv/x.pem")
    damaged = listing(FileState(b"-----BEGIN CERTIFICATE-----\nAAAA\n", 0, 0, 0o644), "/srv/x.pem")
    assert "parse_error: block 1 of /srv/x.pem cannot be read" in damaged


def test_expected_state_keeps_what_is_not_asked_for():
    state = FileState(b"old", 12345, 54321, 0o644)
    assert chainfiles.expected_state(planned(b"new"), state, 0, 0) == FileState(b"new", 12345, 54321, 0o600)
    assert chainfiles.expected_state(planned(b"new", owner="nobody"), FileState(), 0, 7) == \
        FileState(b"new", NOBODY.pw_uid, 7, 0o600)


def pki_sha256(issued: pki.Issued) -> str:
    return ":".join(f"{b:02X}" for b in issued.cert.fingerprint(hashes.SHA256()))


@pytest.mark.parametrize("key_type", ["rsa", "ecdsa", "ed25519"])
def test_pem_encodings_are_what_openssl_and_cryptography_write(key_type):
    company = pki.hierarchy(key_type=key_type)
    assert chainfiles.pem_certificate(company.leaf.der) == company.leaf.pem
    assert chainfiles.pem_key(LoadedKey(company.leaf.key, "test")) == company.leaf.key_pem()
