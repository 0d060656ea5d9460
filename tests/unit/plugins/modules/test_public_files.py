# SPDX-License-Identifier: GPL-3.0-or-later
"""The public files mail_tls_root_files and mail_tls_report write: modes under any umask, links, check mode with a
directory yet to be created, and what a failed call says it wrote; through the ansible command itself."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import pki
from ansible_adhoc import ANSIBLE_BIN, run_task
from test_mail_tls_chain import KILLER

pytestmark = pytest.mark.skipif(not ANSIBLE_BIN.exists(),
                                reason="ansible-core is not installed in this interpreter's environment "
                                       "(make unit installs it; make unit-oldest tests the library only)")
HOSTS = [{"name": "mx1", "address": "192.0.2.11", "error": "unreachable from the controller"}]


@pytest.fixture()
def permissive_umask():
    """umask 000, as a careless service unit or shell profile sets it; the ansible command inherits it."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def modes(directory: Path) -> dict:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in directory.iterdir()}


def test_the_published_root_is_not_writable_by_others_under_umask_000_and_a_link_is_refused(tmp_path,
                                                                                            permissive_umask):
    root = pki.hierarchy("mail.example.test").root
    (tmp_path / "ca").mkdir(mode=0o755)
    args = {"content": root.pem.decode(), "dest": str(tmp_path / "ca"), "basename": "example-root"}
    result = run_task(tmp_path, "mailops.tls.mail_tls_root_files", args)
    assert not result["failed"], result.get("msg")
    assert modes(tmp_path / "ca") == {"example-root.pem": 0o644, "example-root.crt": 0o644,
                                      "example-root.cer": 0o644}

    (tmp_path / "elsewhere").write_bytes(b"")
    (tmp_path / "ca" / "example-root.crt").unlink()
    (tmp_path / "ca" / "example-root.crt").symlink_to(tmp_path / "elsewhere")
    refused = run_task(tmp_path, "mailops.tls.mail_tls_root_files", args)
    assert refused["failed"] is True
    assert f"{tmp_path}/ca/example-root.crt is a symbolic link (to {tmp_path}/elsewhere)" in refused["msg"]
    assert (tmp_path / "elsewhere").read_bytes() == b""


def test_reports_check_mode_with_a_directory_yet_to_be_created_then_written_not_writable_by_others(
        tmp_path, permissive_umask):
    reports = tmp_path / "reports"
    args = {"hosts": HOSTS, "json_path": str(reports / "audit.json"), "junit_path": str(reports / "audit.xml"),
            "html_path": str(reports / "audit.html")}
    checked = run_task(tmp_path, "mailops.tls.mail_tls_report", args, check_mode=True)
    assert not checked["failed"], checked.get("msg")
    assert checked["changed"] is True
    assert checked["written"] == [str(reports / name) for name in ("audit.json", "audit.xml", "audit.html")]
    assert not reports.exists()

    reports.mkdir(mode=0o755)
    written = run_task(tmp_path, "mailops.tls.mail_tls_report", args)
    assert not written["failed"], written.get("msg")
    assert written["written"] == checked["written"]
    assert modes(reports) == {"audit.json": 0o644, "audit.xml": 0o644, "audit.html": 0o644}


def test_a_failed_report_call_says_it_wrote_nothing_and_leaves_the_previous_reports(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "audit.json").write_text("{}\n")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(KILLER)
    env = {"PYTHONPATH": str(tmp_path / "site"), "MAILOPS_TEST_FAIL_ON_RENAME_TO": str(reports / "audit.html")}
    result = run_task(tmp_path, "mailops.tls.mail_tls_report",
                      {"hosts": HOSTS, "json_path": str(reports / "audit.json"),
                       "html_path": str(reports / "audit.html")}, env=env)
    assert result["failed"] is True
    assert result["msg"].startswith(f"writing the reports failed: writing failed: Input/output error: "
                                    f"{reports / 'audit.html'}; every file was put back as it was, nothing changed")
    assert result["written"] == [] and result["changed"] is False
    assert sorted(os.listdir(reports)) == ["audit.json"]
    assert (reports / "audit.json").read_text() == "{}\n"
