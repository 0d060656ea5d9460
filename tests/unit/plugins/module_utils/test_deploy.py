# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for deploy.py's planning and reporting on generated PKIs and files (the whole call against real Postfix and
Dovecot is tested in tests/integration/test_deploy_role.py): the files per server and version, a refusal before any
change, check mode, and the messages of a failed verification and of a rollback."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils import deploy
from ansible_collections.mailops.tls.plugins.module_utils.findings import finding
from ansible_collections.mailops.tls.plugins.module_utils.policy import gate


def params(tmp_path: Path, **changes) -> dict:
    """mail_tls_deploy's options with their defaults, for a pile, key and root written to tmp_path."""
    hierarchy = pki.hierarchy("mail.example.test")
    (tmp_path / "pile.pem").write_bytes(pki.pem_bundle(hierarchy.root, hierarchy.leaf, *hierarchy.intermediates))
    (tmp_path / "leaf.key").write_bytes(hierarchy.leaf.key_pem())
    (tmp_path / "root.pem").write_bytes(hierarchy.root.pem)
    (tmp_path / "dovecot.conf").write_text("!include conf.d/*.conf\n")
    (tmp_path / "conf.d").mkdir()
    tls = tmp_path / "tls"
    files = {name: str(tls / f"{name}.pem") for name in deploy.POSTFIX_FILES}
    base = {
        "certificates": [str(tmp_path / "pile.pem")], "private_key": str(tmp_path / "leaf.key"),
        "private_key_passphrase": None, "alt_certificates": [], "alt_private_key": None,
        "alt_private_key_passphrase": None, "pkcs12_passphrase": None, "pool": [],
        "roots": [str(tmp_path / "root.pem")],
        "system_roots": False, "names": ["mail.example.test"], "expires_soon_days": 30, "fail_on": [], "ignore": [],
        "tls_dir": str(tls), "tls_dir_mode": "0755", "file_owner": None, "keep_backups": False,
        "postfix": dict(files, enabled=True, config_dir="/etc/postfix", version="3.7.11", extra_settings={},
                        manage_tlsproxy=True, check_command=["true"], reload_command=["true"]),
        "dovecot": {"enabled": True, "config_file": str(tmp_path / "dovecot.conf"),
                    "dropin": str(tmp_path / "conf.d" / "99-tls.conf"), "add_include": True, "version": "2.3.19",
                    "cert_file": str(tls / "fullchain.pem"), "key_file": str(tls / "key.pem"),
                    "alt_cert_file": str(tls / "fullchain-alt.pem"), "alt_key_file": str(tls / "key-alt.pem"),
                    "key_group": "", "check_command": ["true"], "reload_command": ["true"]},
        "verify": False, "verify_address": "mx1 (192.0.2.1)", "endpoints": [], "timeout": 1.0, "verify_retries": 0,
        "verify_delay": 0.0, "verify_fail_on": [], "verify_ignore": []}
    base.update(changes)
    return base


def servers(postfix_version: str = "3.7.11", dovecot_version: str = "2.3.19.1"):
    """What postconf and dovecot print for an untouched installation of these versions; every other command (the
    check and reload commands the tests give) really runs."""
    def run(argv):
        if argv[0] == "postconf":
            return 0, {"-h": postfix_version + "\n"}.get(argv[3] if len(argv) > 3 else "", ""), ""
        if argv[0] in ("dovecot", "doveconf"):
            return 0, dovecot_version + " (0123456789)\n" if argv[0] == "dovecot" else "", ""
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr
    return run


def test_check_mode_plans_every_file_and_setting_and_writes_nothing(tmp_path):
    d = deploy.Deployment(params(tmp_path), servers(), check_mode=True)
    result = deploy.deploy(d)
    tls = tmp_path / "tls"
    assert sorted(result["written"]) == sorted([str(tls / "chain_file.pem"), str(tls / "fullchain.pem"),
                                                str(tls / "key.pem")])
    assert result["postfix_settings"] == {"smtpd_tls_chain_files": str(tls / "chain_file.pem")}
    assert result["dovecot_dropin_changed"] and not result["dovecot_include_added"]
    assert result["changed"] and not result["succeeded"] and not tls.exists()
    assert "PRIVATE KEY" not in str(result["diff"])


def test_postfix_before_34_and_dovecot_share_the_chain_and_key_files(tmp_path):
    options = params(tmp_path)
    options["postfix"].update(cert_file=options["dovecot"]["cert_file"], key_file=options["dovecot"]["key_file"],
                              version="")
    result = deploy.deploy(deploy.Deployment(options, servers("3.3.0"), check_mode=True))
    assert sorted(result["postfix_settings"]) == ["smtpd_tls_cert_file", "smtpd_tls_key_file"]
    assert len(result["written"]) == 2  # no second copy of the same files


def test_an_undeployable_chain_is_refused_before_anything_is_read_or_written(tmp_path):
    options = params(tmp_path, names=["other.example.test"])
    refused = r"(?s)^not deployable, nothing was changed\.\nthe chain: 1 policy violation.*name_mismatch"
    with pytest.raises(deploy.DeployError, match=refused):
        deploy.deploy(deploy.Deployment(options, servers()))
    assert not (tmp_path / "tls").exists()


def test_a_failing_check_puts_back_every_file_and_names_the_command(tmp_path):
    options = params(tmp_path)
    options["dovecot"]["check_command"] = ["sh", "-c", "echo 'doveconf: Fatal: broken' >&2; exit 89"]
    (tmp_path / "tls").mkdir()
    key = tmp_path / "tls" / "key.pem"
    key.write_bytes(b"the old key\n")
    with pytest.raises(deploy.DeployError) as failed:
        deploy.deploy(deploy.Deployment(options, servers()))
    message = str(failed.value)
    assert "Failure: sh -c echo 'doveconf: Fatal: broken' >&2; exit 89 failed (exit 89): doveconf: Fatal" in message
    assert key.read_bytes() == b"the old key\n"
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["key.pem"]
    assert not (tmp_path / "conf.d" / "99-tls.conf").exists()
    assert failed.value.result["rolled_back"] and failed.value.result["backup_files"] == []


def test_verification_lines_count_each_port_and_code_once():
    judged = gate([("192.0.2.1:993 (mx1) imaps", [finding("old_chain_served", "serves the old leaf")] * 3),
                   ("192.0.2.1:25 (mx1) smtp", [finding("name_mismatch", "no name")])])
    assert deploy.violation_lines(judged) == [
        "192.0.2.1:993 (mx1) imaps: [old_chain_served] serves the old leaf (and 2 more like it on this port)",
        "192.0.2.1:25 (mx1) smtp: [name_mismatch] no name"]


def test_a_rollback_is_proven_only_where_a_leaf_was_served_before():
    before = [{"name": "a:25", "leaf": "AA:BB"}, {"name": "a:993", "leaf": None}]
    assert deploy.not_restored(before, [{"name": "a:25", "leaf": "AA:BB"}, {"name": "a:993", "leaf": "CC"}]) == []
    assert deploy.not_restored(before, [{"name": "a:25", "leaf": None}, {"name": "a:993", "leaf": None}]) == [
        "a:25 serves nothing, before: AA:BB..."]


def test_a_first_deploy_creates_the_tls_directory(tmp_path):
    result = deploy.deploy(deploy.Deployment(params(tmp_path), servers()))
    tls = tmp_path / "tls"
    assert result["succeeded"] and result["reloaded"] == ["postfix", "dovecot"], result
    assert oct(tls.stat().st_mode & 0o777) == "0o755"
    assert sorted(p.name for p in tls.iterdir()) == ["chain_file.pem", "fullchain.pem", "key.pem"]
