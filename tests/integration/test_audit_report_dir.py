# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the audit role writes its reports when mail_tls_audit_report_dir is not given: one fixed place in the
controller user's home, whichever directory ansible-playbook starts in; never silently in an AWX job's container.
Through the role's merge entry point, which writes reports without probing (no lab needed)."""
from __future__ import annotations

import json

import pytest
from run_playbook import ANSIBLE_PLAYBOOK, run_playbook

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-core is not installed in this "
                                                                      "interpreter's environment")


def plays(slice_report: str) -> list:
    """Write one slice's JSON report, then merge it with the audit role and its default report directory."""
    return [{"name": "merge", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "Write a slice's report", "mailops.tls.mail_tls_report": {
            "hosts": [{"name": "mx1", "error": "not probed"}], "json_path": slice_report}},
        {"name": "Merge it", "ansible.builtin.import_role": {"name": "mailops.tls.audit", "tasks_from": "merge"},
         "vars": {"mail_tls_audit_merge": [slice_report], "mail_tls_audit_fail": False}},
    ]}]


@pytest.fixture
def home(tmp_path):
    directory = tmp_path / "home"
    directory.mkdir()
    return directory


def test_without_a_report_dir_the_reports_go_to_the_home_directory(tmp_path, home):
    started_in = tmp_path / "elsewhere"
    started_in.mkdir()
    run = run_playbook(started_in, plays(str(tmp_path / "slice.json")), env={"HOME": str(home), "JOB_ID": ""})
    assert run.returncode == 0, run.output
    written = sorted(path.name for path in (home / "mail-tls-audit").iterdir())
    assert written == ["mail-tls-audit.html", "mail-tls-audit.json", "mail-tls-audit.xml"]
    assert [host["name"] for host in json.loads((home / "mail-tls-audit" / "mail-tls-audit.json").read_text())[
        "hosts"]] == ["mx1"]
    assert not (started_in / "mail-tls-audit").exists()


def test_an_awx_job_without_a_report_dir_is_refused_before_writing(tmp_path, home):
    run = run_playbook(tmp_path, plays(str(tmp_path / "slice.json")), env={"HOME": str(home), "JOB_ID": "42"})
    assert run.returncode != 0
    assert "set mail_tls_audit_report_dir to a persistent volume" in run.output
    assert not (home / "mail-tls-audit").exists()


def test_an_awx_job_with_a_report_dir_writes_there(tmp_path, home):
    reports = tmp_path / "srv-reports"
    play = plays(str(tmp_path / "slice.json"))
    play[0]["tasks"][1]["vars"]["mail_tls_audit_report_dir"] = str(reports)
    run = run_playbook(tmp_path, play, env={"HOME": str(home), "JOB_ID": "42"})
    assert run.returncode == 0, run.output
    assert (reports / "mail-tls-audit.json").is_file()
