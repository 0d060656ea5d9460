# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_tls_chain run through the ansible command on generated PKIs, writing real files in tmp_path."""
from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import pki
from ansible_adhoc import ANSIBLE_BIN, run_task

from ansible_collections.mailops.tls.plugins.module_utils.client_matrix import clients_note

pytestmark = pytest.mark.skipif(not ANSIBLE_BIN.exists(),
                                reason="ansible-core is not installed in this interpreter's environment "
                                       "(make unit installs it; make unit-oldest tests the library only)")

MODULE = "mailops.tls.mail_tls_chain"
PASSPHRASE = "module test passphrase 9d2e"
KINDS = ("fullchain", "chain", "combined", "key", "root")
# A patched rename that kills its own process, or fails as a full or broken disk would, when it is about to replace
# one file: the writer dies or fails after the new file is complete and before the rename, as a power cut, an OOM
# kill or an I/O error would leave it.
KILLER = '''\
import errno
import os
import signal

_KILL = os.environ.get("MAILOPS_TEST_KILL_ON_RENAME_TO")
_FAIL = os.environ.get("MAILOPS_TEST_FAIL_ON_RENAME_TO")
_rename, _replace = os.rename, os.replace


def _before(dst):
    if os.fsdecode(dst) == _KILL:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.fsdecode(dst) == _FAIL:
        raise OSError(errno.EIO, os.strerror(errno.EIO), os.fsdecode(dst))


def rename(src, dst, *args, **kwargs):
    _before(dst)
    return _rename(src, dst, *args, **kwargs)


def replace(src, dst, *args, **kwargs):
    _before(dst)
    return _replace(src, dst, *args, **kwargs)


os.rename, os.replace = rename, replace
'''


@pytest.fixture()
def inputs(tmp_path: Path, company) -> dict:
    """A messy pile (wrong order, root included, junk, lower intermediate missing), the pool, root, encrypted key."""
    upper, lower = company.intermediates
    data = {
        "pile.pem": b"Bag Attributes\n    localKeyID: 01\nsubject=/CN=junk\n"
                    + pki.pem_bundle(company.root, upper, company.leaf) + b"\nthanks for your order\n",
        "pool.pem": lower.pem,
        "root.pem": company.root.pem,
        "leaf.key": company.leaf.key_pem(PASSPHRASE.encode()),
    }
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    for name, content in data.items():
        (tmp_path / "in" / name).write_bytes(content)
    return {"path": [str(tmp_path / "in" / "pile.pem")], "pool": [str(tmp_path / "in" / "pool.pem")],
            "roots": [str(tmp_path / "in" / "root.pem")], "system_roots": False,
            "private_key_path": str(tmp_path / "in" / "leaf.key"), "private_key_passphrase": PASSPHRASE,
            "names": ["mail.example.test", "imap.example.test"]}


def out(tmp_path: Path, kind: str) -> Path:
    return tmp_path / "out" / f"{kind}.pem"


def all_outputs(tmp_path: Path) -> dict:
    return {f"{kind}_path": str(out(tmp_path, kind)) for kind in KINDS}


def expected_bytes(company) -> dict:
    chain = pki.pem_bundle(*company.served_chain)
    key = company.leaf.key_pem()  # unencrypted PKCS#8
    return {"fullchain": chain, "chain": pki.pem_bundle(*company.served_chain[1:]), "combined": key + chain,
            "key": key, "root": company.root.pem}


def snapshot(path: Path) -> tuple:
    status = path.stat()
    return path.read_bytes(), status.st_ino, status.st_mtime_ns, status.st_uid, status.st_gid, \
        stat.S_IMODE(status.st_mode)


def assert_no_key_material(result: dict, *issued: pki.Issued) -> None:
    text = json.dumps(result)
    assert "PRIVATE KEY" not in text
    assert PASSPHRASE not in text
    for item in issued:
        for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
            pem = item.key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
            for line in pem.splitlines():
                if "-----" not in line:
                    assert line not in text


def test_writes_every_output_once_and_then_changes_nothing(tmp_path, inputs, company):
    first = run_task(tmp_path, MODULE, dict(inputs, **all_outputs(tmp_path)))
    assert not first["failed"], first.get("msg")
    assert first["changed"] is True
    assert first["written"] == [str(out(tmp_path, kind)) for kind in KINDS]
    for kind, data in expected_bytes(company).items():
        assert out(tmp_path, kind).read_bytes() == data, kind
        mode = stat.S_IMODE(out(tmp_path, kind).stat().st_mode)
        assert mode == (0o600 if kind in ("combined", "key") else 0o644), kind
    # The result is the analysis of the input, in the schema of mail_tls_chain_facts, plus the files.
    assert [c["subject"] for c in first["chain"]] == [c.subject.rfc4514_string() for c in company.served_chain]
    assert "pool" in first["chain"][1]["source"]  # the intermediate the pile lacked
    assert first["root"]["subject"] == company.root.subject.rfc4514_string()
    assert {"wrong_order", "missing_intermediate", "root_included"} <= {i["code"] for i in first["issues"]}
    assert first["violations"] == [] and first["key_matches"] is True
    assert [(f["output"], f["changes"]) for f in first["files"]] == [(kind, ["content"]) for kind in KINDS]
    assert_no_key_material(first, company.leaf)

    before = {kind: snapshot(out(tmp_path, kind)) for kind in KINDS}
    second = run_task(tmp_path, MODULE, dict(inputs, **all_outputs(tmp_path)))
    assert not second["failed"], second.get("msg")
    assert second["changed"] is False and second["written"] == []
    assert [f["changed"] for f in second["files"]] == [False] * len(KINDS)
    assert {kind: snapshot(out(tmp_path, kind)) for kind in KINDS} == before  # not even rewritten
    assert not [name for name in os.listdir(tmp_path / "out") if name.endswith(".tmp")]


def test_owner_group_and_mode(tmp_path, inputs, company):
    nobody, nogroup = pwd.getpwnam("nobody"), grp.getgrnam("nogroup")
    args = dict(inputs, fullchain_path=str(out(tmp_path, "fullchain")), fullchain_owner="nobody",
                fullchain_group="nogroup", key_path=str(out(tmp_path, "key")), key_group="nogroup",
                key_mode="0640")
    result = run_task(tmp_path, MODULE, args)
    assert not result["failed"], result.get("msg")
    full, key = out(tmp_path, "fullchain").stat(), out(tmp_path, "key").stat()
    assert (full.st_uid, full.st_gid, stat.S_IMODE(full.st_mode)) == (nobody.pw_uid, nogroup.gr_gid, 0o644)
    assert (key.st_uid, key.st_gid, stat.S_IMODE(key.st_mode)) == (0, nogroup.gr_gid, 0o640)

    # Attributes alone change as content does, inside the call's one transaction (a new file renamed over the old
    # one); only what differs is reported, and the file that does not change is not touched.
    key_inode = key.st_ino
    again = run_task(tmp_path, MODULE, dict(args, fullchain_mode="0640", fullchain_owner="root"))
    assert again["changed"] is True and again["written"] == [str(out(tmp_path, "fullchain"))]
    assert again["files"][0]["changes"] == ["owner nobody -> root", "mode 0644 -> 0640"]
    assert again["files"][1]["changed"] is False
    full = out(tmp_path, "fullchain").stat()
    assert (full.st_uid, stat.S_IMODE(full.st_mode)) == (0, 0o640)
    assert out(tmp_path, "fullchain").read_bytes() == pki.pem_bundle(*company.served_chain)
    assert out(tmp_path, "key").stat().st_ino == key_inode


def test_a_key_mode_readable_by_others_is_refused(tmp_path, inputs):
    result = run_task(tmp_path, MODULE, dict(inputs, combined_path=str(out(tmp_path, "combined")),
                                             combined_mode="0644"))
    assert result["failed"] is True
    assert "combined_mode 0644 would let every user on the host read or change the private key" in result["msg"]
    assert not out(tmp_path, "combined").exists()


def test_check_mode_reports_and_touches_nothing_and_the_diff_holds_no_key(tmp_path, inputs, company):
    old = pki.hierarchy("old.example.test")
    out(tmp_path, "combined").write_bytes(old.leaf.key_pem() + old.leaf.pem)
    os.chmod(out(tmp_path, "combined"), 0o600)
    before = snapshot(out(tmp_path, "combined"))
    result = run_task(tmp_path, MODULE, dict(inputs, combined_path=str(out(tmp_path, "combined")),
                                             fullchain_path=str(out(tmp_path, "fullchain"))),
                      check_mode=True, diff=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"] is True
    assert result["written"] == [str(out(tmp_path, "fullchain")), str(out(tmp_path, "combined"))]
    assert snapshot(out(tmp_path, "combined")) == before
    assert not out(tmp_path, "fullchain").exists()
    assert os.listdir(tmp_path / "out") == ["combined.pem"]

    diff = result["diff_text"]
    assert f"before: {out(tmp_path, 'combined')}" in diff
    assert f"-[1] subject: {old.leaf.subject.rfc4514_string()}" in diff
    assert f"+[1] subject: {company.leaf.subject.rfc4514_string()}" in diff
    assert f"+[3] subject: {company.intermediates[0].subject.rfc4514_string()}" in diff
    assert "+    SHA-256: " in diff and "+    valid: " in diff
    assert "-private key (ecdsa secp256r1, 256 bits, SPKI SHA-256 " in diff
    assert "+private key (ecdsa secp256r1, 256 bits, SPKI SHA-256 " in diff
    assert_no_key_material({"diff": diff, "result": result}, company.leaf, old.leaf)


def test_backup_keeps_the_previous_version_and_the_diff_shows_the_change(tmp_path, inputs, company):
    old = pki.hierarchy("old.example.test")
    out(tmp_path, "fullchain").write_bytes(pki.pem_bundle(*old.served_chain))
    out(tmp_path, "fullchain").chmod(0o640)
    old_bytes, old_inode = out(tmp_path, "fullchain").read_bytes(), out(tmp_path, "fullchain").stat().st_ino
    result = run_task(tmp_path, MODULE, dict(inputs, fullchain_path=str(out(tmp_path, "fullchain")), backup=True,
                                             root_path=str(out(tmp_path, "root"))), diff=True)
    assert not result["failed"], result.get("msg")
    (backup,) = result["backup_files"]
    assert backup.startswith(str(out(tmp_path, "fullchain")) + ".") and backup.endswith("~")
    assert Path(backup).read_bytes() == old_bytes
    # The backup is the replaced file itself, kept under a second name: never a copy that exists for a moment with
    # a looser mode than the original (a key file's backup is never readable by others).
    assert (Path(backup).stat().st_ino, stat.S_IMODE(Path(backup).stat().st_mode)) == (old_inode, 0o640)
    assert result["files"][0]["backup_file"] == backup
    assert result["files"][1]["backup_file"] is None  # a new file has nothing to back up
    # What a rollback needs besides the backup: the replaced file's owner, group and mode (new files: none).
    assert result["files"][0]["previous"] == {"uid": os.getuid(), "gid": os.getgid(), "mode": "0640"}
    assert result["files"][1]["previous"] is None
    assert oct(out(tmp_path, "fullchain").stat().st_mode & 0o777) == "0o644"
    assert out(tmp_path, "fullchain").read_bytes() == expected_bytes(company)["fullchain"]
    assert f"-[1] subject: {old.leaf.subject.rfc4514_string()}" in result["diff_text"]
    assert f"+[1] subject: {company.leaf.subject.rfc4514_string()}" in result["diff_text"]


def test_a_refusal_names_each_certificate_by_its_place_in_the_chain_to_write_and_its_input(tmp_path, company):
    """The chain to write is judged apart from the inputs, but its messages point at the files to fix."""
    upper, lower = company.intermediates
    expired = {"not_before": pki.NOW - 400 * pki.DAY, "not_after": pki.NOW - pki.DAY}
    old_root = pki.root(subject=company.root.subject, key=company.root.key, **expired)
    old_upper = company.root.issue(subject=upper.subject, ca=True, key=upper.key, **expired)
    (tmp_path / "pile.pem").write_bytes(pki.pem_bundle(old_upper, company.leaf, lower))  # out of order
    (tmp_path / "roots.pem").write_bytes(old_root.pem)
    refused = run_task(tmp_path, MODULE, {"path": [str(tmp_path / "pile.pem")], "roots": [str(tmp_path / "roots.pem")],
                                          "system_roots": False, "fullchain_path": str(out(tmp_path, "fullchain"))})
    assert refused["failed"] is True
    day = f"{(pki.NOW - pki.DAY):%Y-%m-%d}"
    fix = "renew it, or use the CA's current certificate"
    expected = [f"'CN=Test Intermediate CA 1,O=mailops test' (certificate 3 of the chain to write, from block 1 of "
                f"{tmp_path}/pile.pem) expired on {day}: {fix}",
                f"'CN=Test Root CA,O=mailops test' (the root of the chain to write, from block 1 of "
                f"{tmp_path}/roots.pem (roots)) expired on {day}: {fix}"]
    assert sorted(v["message"] for v in refused["violations"]) == expected
    assert sorted(refused["msg"].splitlines()[1:3]) == [f"- [expired] {message}. {clients_note('expired')}"
                                                        for message in expected]
    assert not out(tmp_path, "fullchain").exists()


def test_a_chain_with_errors_is_refused_and_force_writes_it(tmp_path, inputs, company):
    incomplete = dict(inputs, pool=[], fullchain_path=str(out(tmp_path, "fullchain")), names=["smtp.example.test"])
    out(tmp_path, "fullchain").write_bytes(b"the old chain\n")
    before = snapshot(out(tmp_path, "fullchain"))
    refused = run_task(tmp_path, MODULE, incomplete)
    assert refused["failed"] is True
    lines = refused["msg"].splitlines()
    assert lines[0] == "the chain to write: 2 policy violation(s):"
    assert sorted(line.split("]")[0] for line in lines[1:3]) == ["- [missing_intermediate", "- [name_mismatch"]
    assert lines[-1].startswith("Nothing was written")
    assert [v["code"] for v in refused["violations"]] == ["missing_intermediate", "name_mismatch"]
    assert snapshot(out(tmp_path, "fullchain")) == before

    forced = run_task(tmp_path, MODULE, dict(incomplete, force=True))
    assert not forced["failed"], forced.get("msg")
    assert forced["changed"] is True
    # What could be built: the leaf alone, as its issuer is nowhere to be found.
    assert out(tmp_path, "fullchain").read_bytes() == company.leaf.pem
    assert "force: written despite [missing_intermediate]" in forced["stderr_of_ansible"]
    assert "force: written despite [name_mismatch]" in forced["stderr_of_ansible"]


def test_dual_rsa_and_ecdsa_chains_from_a_pkcs12_and_pem(tmp_path):
    rsa = pki.hierarchy("mail.example.test", key_type="rsa")
    ecdsa = pki.hierarchy("mail.example.test", key_type="ecdsa")
    (tmp_path / "out").mkdir()
    (tmp_path / "rsa.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"rsa", rsa.leaf.key, rsa.leaf.cert, [rsa.intermediates[0].cert],
        serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    (tmp_path / "ecdsa.pem").write_bytes(pki.pem_bundle(*ecdsa.served_chain) + ecdsa.leaf.key_pem())
    (tmp_path / "roots.pem").write_bytes(rsa.root.pem + ecdsa.root.pem)
    chains = [{"path": [str(tmp_path / "rsa.p12")], "pkcs12_passphrase": PASSPHRASE,
               "combined_path": str(out(tmp_path, "rsa"))},
              {"path": [str(tmp_path / "ecdsa.pem")], "combined_path": str(out(tmp_path, "ecdsa"))}]
    args = {"roots": [str(tmp_path / "roots.pem")], "system_roots": False, "names": ["mail.example.test"],
            "chains": chains}
    result = run_task(tmp_path, MODULE, args)
    assert not result["failed"], result.get("msg")
    for name, company in (("rsa", rsa), ("ecdsa", ecdsa)):
        assert out(tmp_path, name).read_bytes() == company.leaf.key_pem() + pki.pem_bundle(*company.served_chain)
        assert stat.S_IMODE(out(tmp_path, name).stat().st_mode) == 0o600
    assert [c["chain"][0]["key_type"] for c in result["chains"]] == ["rsa", "ecdsa"]
    assert "chain" not in result  # one result per chain, under chains
    assert_no_key_material(result, rsa.leaf, ecdsa.leaf)


def test_killed_between_two_renames_the_next_run_puts_the_pair_back_before_writing(tmp_path, inputs, company):
    old = pki.hierarchy("old.example.test")
    fullchain, key = out(tmp_path, "fullchain"), out(tmp_path, "key")
    fullchain.write_bytes(pki.pem_bundle(*old.served_chain))
    key.write_bytes(old.leaf.key_pem())
    key.chmod(0o600)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(KILLER)
    env = {"PYTHONPATH": str(tmp_path / "site"), "MAILOPS_TEST_KILL_ON_RENAME_TO": os.path.realpath(key)}
    args = dict(inputs, fullchain_path=str(fullchain), key_path=str(key))
    killed = run_task(tmp_path, MODULE, args, env=env)
    assert killed["failed"] is True
    # Killed after the new chain was renamed into place and before the new key was: a mismatched pair, whole files,
    # and the journal that says how to undo it.
    assert fullchain.read_bytes() == expected_bytes(company)["fullchain"]
    assert key.read_bytes() == old.leaf.key_pem()
    assert sorted(name.rsplit(".", 1)[-1] if ".mailtls-" in name else name
                  for name in os.listdir(tmp_path / "out")) == ["fullchain.pem", "journal", "key.pem", "new", "old",
                                                                "old"]

    checked = run_task(tmp_path, MODULE, args, check_mode=True)
    assert "an interrupted write left" in checked["stderr_of_ansible"]

    again = run_task(tmp_path, MODULE, args)
    assert not again["failed"], again.get("msg")
    # The chain was put back first, so this run writes both files again.
    assert again["written"] == [str(fullchain), str(key)]
    assert fullchain.read_bytes() == expected_bytes(company)["fullchain"]
    assert key.read_bytes() == expected_bytes(company)["key"]
    assert sorted(os.listdir(tmp_path / "out")) == ["fullchain.pem", "key.pem"]


def test_a_failure_at_the_second_rename_puts_the_first_file_back_and_reports_nothing_written(tmp_path, inputs):
    old = pki.hierarchy("old.example.test")
    fullchain, key = out(tmp_path, "fullchain"), out(tmp_path, "key")
    fullchain.write_bytes(pki.pem_bundle(*old.served_chain))
    key.write_bytes(old.leaf.key_pem())
    key.chmod(0o600)
    before = {path: snapshot(path) for path in (fullchain, key)}
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(KILLER)
    env = {"PYTHONPATH": str(tmp_path / "site"), "MAILOPS_TEST_FAIL_ON_RENAME_TO": os.path.realpath(key)}
    result = run_task(tmp_path, MODULE, dict(inputs, fullchain_path=str(fullchain), key_path=str(key), backup=True),
                      env=env)
    assert result["failed"] is True
    assert f"Input/output error: {os.path.realpath(key)}" in result["msg"]
    assert "every file was put back as it was, nothing changed" in result["msg"]
    assert result["changed"] is False and result["written"] == [] and result["backup_files"] == []
    assert [f["changed"] for f in result["files"]] == [False, False]
    assert {path: snapshot(path) for path in (fullchain, key)} == before
    assert sorted(os.listdir(tmp_path / "out")) == ["fullchain.pem", "key.pem"]


def test_links_and_directories_others_can_write_are_refused_for_keys(tmp_path, inputs, company):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stolen.pem").write_bytes(b"")
    out(tmp_path, "key").symlink_to(elsewhere / "stolen.pem")
    refused = run_task(tmp_path, MODULE, dict(inputs, key_path=str(out(tmp_path, "key"))))
    assert refused["failed"] is True
    assert f"{out(tmp_path, 'key')} is a symbolic link (to {elsewhere / 'stolen.pem'})" in refused["msg"]
    assert "Set follow: true" in refused["msg"]
    assert (elsewhere / "stolen.pem").read_bytes() == b""

    followed = run_task(tmp_path, MODULE, dict(inputs, key_path=str(out(tmp_path, "key")), follow=True))
    assert not followed["failed"], followed.get("msg")
    assert (elsewhere / "stolen.pem").read_bytes() == expected_bytes(company)["key"]
    assert out(tmp_path, "key").is_symlink()

    out(tmp_path, "chain").symlink_to(out(tmp_path, "fullchain"))
    same = run_task(tmp_path, MODULE, dict(inputs, fullchain_path=str(out(tmp_path, "fullchain")),
                                           chain_path=str(out(tmp_path, "chain")), follow=True))
    assert same["failed"] is True
    assert (f"named for both the fullchain output and the chain output ({out(tmp_path, 'fullchain')} and "
            f"{out(tmp_path, 'chain')} are one file)") in same["msg"]

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    unsafe = run_task(tmp_path, MODULE, dict(inputs, combined_path=str(shared / "mail.pem")))
    assert unsafe["failed"] is True
    assert (f"{shared / 'mail.pem'} would hold a private key, but users other than its owner can write the "
            f"directory {shared} (mode 0777)") in unsafe["msg"]
    assert os.listdir(shared) == []


def test_check_mode_reports_files_in_a_directory_an_earlier_task_creates(tmp_path, inputs):
    missing = tmp_path / "out" / "tls"
    result = run_task(tmp_path, MODULE, dict(inputs, combined_path=str(missing / "mail.pem")), check_mode=True,
                      diff=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"] is True and result["written"] == [str(missing / "mail.pem")]
    assert "+private key (ecdsa secp256r1" in result["diff_text"]
    assert not missing.exists()


@pytest.mark.parametrize(("args", "expected"), [
    ({"key_path": "{out}/key.pem", "key_mode": 600},
     "key_mode 600 sets bits other than read, write and execute (YAML read the unquoted 600"),
    ({"fullchain_path": "{out}/missing/dir/full.pem"}, "the directory {out}/missing/dir does not exist"),
    ({"fullchain_path": "{out}/full.pem", "chains": [{"content": "x", "fullchain_path": "{out}/x.pem"}]},
     "chains|fullchain_path"),
    ({}, "one of the following is required: chains, fullchain_path, chain_path, combined_path, key_path, root_path"),
    ({"root_path": "{out}/root.pem", "roots": [], "pool": [], "force": True}, "ends in no root"),
])
def test_bad_requests_fail_with_a_clear_message_and_write_nothing(tmp_path, inputs, args, expected):
    where = str(tmp_path / "out")
    filled = json.loads(json.dumps(args).replace("{out}", where))
    result = run_task(tmp_path, MODULE, dict(inputs, **filled))
    assert result["failed"] is True
    assert expected.replace("{out}", where) in result["msg"]
    assert "Traceback" not in json.dumps(result)
    assert os.listdir(tmp_path / "out") == []
