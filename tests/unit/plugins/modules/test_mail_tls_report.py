# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_tls_report merging the JSON reports of an audit's job slices, run through the ansible command itself."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ansible_adhoc import ANSIBLE_BIN, run_task

from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement, loaded_certificates
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import endpoint_results, judge
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, ProbeResult
from ansible_collections.mailops.tls.plugins.module_utils.report import build_report

pytestmark = pytest.mark.skipif(not ANSIBLE_BIN.exists(),
                                reason="ansible-core is not installed in this interpreter's environment "
                                       "(make unit installs it; make unit-oldest tests the library only)")
NAME = "mail.example.test"


@pytest.fixture()
def slices(tmp_path: Path, company) -> list:
    """Two slice reports: mx1 (its own chain) with mx2, then mx3 and mx4; mx2-mx4 serve one chain, so only the
    comparison of all four hosts finds that mx1 is the odd one out."""
    judgement = Judgement(roots=loaded_certificates([company.root.der], "the test roots"))
    upper, lower = company.intermediates
    usual = [company.leaf.der, lower.der, upper.der]
    odd = [lower.leaf(NAME).der, lower.der, upper.der]

    def host(number: int, ders: list) -> dict:
        endpoint = Endpoint(f"192.0.2.{10 + number}", 993, "imaps", server_name=NAME, label=f"mx{number}")
        probed = ProbeResult(endpoint, True, tuple(ders), "TLSv1.3", "TLS_AES_256_GCM_SHA384", seconds=0.02,
                             key_type="ecdsa")
        return {"name": f"mx{number}", "address": endpoint.address,
                "result": endpoint_results([judge(probed, judgement)])}

    paths = []
    for number, hosts in enumerate(([host(1, odd), host(2, usual)], [host(3, usual), host(4, usual)]), 1):
        path = tmp_path / f"slice-{number}.json"
        path.write_text(json.dumps(build_report(hosts)), encoding="utf-8")
        paths.append(str(path))
    return paths


def test_merge_writes_the_fleet_report_with_the_hosts_of_every_slice_compared(tmp_path, slices):
    merged = tmp_path / "fleet.json"
    result = run_task(tmp_path, "mailops.tls.mail_tls_report",
                      {"merge": slices, "json_path": str(merged), "html_path": str(tmp_path / "fleet.html")})
    assert not result["failed"] and result["changed"] and result["passed"] is False
    assert result["summary"]["hosts"] == 4 and result["summary"]["codes"] == {"backend_mismatch": 1}
    assert [(v["host"], v["code"]) for v in result["violations"]] == [("mx1", "backend_mismatch")]
    document = json.loads(merged.read_text(encoding="utf-8"))
    assert [h["name"] for h in document["hosts"]] == ["mx1", "mx2", "mx3", "mx4"]
    assert "mx1" in (tmp_path / "fleet.html").read_text(encoding="utf-8")


def test_merge_in_check_mode_writes_nothing(tmp_path, slices):
    result = run_task(tmp_path, "mailops.tls.mail_tls_report",
                      {"merge": slices, "json_path": str(tmp_path / "fleet.json")}, check_mode=True)
    assert not result["failed"] and result["changed"] and not (tmp_path / "fleet.json").exists()


@pytest.mark.parametrize("damage, message", [
    ("missing", "slice-3.json does not exist: check the path"),
    ("not json", "slice-3.json is not JSON"),
    ("other json", "slice-3.json is not a mailops.tls audit report"),
    ("directory", "slice-3.json is a directory"),
    ("fifo", "slice-3.json is a FIFO (named pipe), not a regular file"),
    ("deep", "slice-3.json nests its JSON too deeply to be an audit report"),
    ("markup", "slice-3.json, a mailops.tls audit report to merge, does not match its schema ($.hosts[0].endpoints[0]"
               ".port: '<script>alert(1)</script>' is not of type ['integer'])"),
])
def test_merge_refuses_what_it_cannot_merge(tmp_path, slices, damage, message):
    third = tmp_path / "slice-3.json"
    if damage == "directory":
        third.mkdir()
    elif damage == "fifo":
        os.mkfifo(third)
    elif damage == "deep":
        third.write_text("[" * 200000 + "]" * 200000, encoding="utf-8")
    elif damage == "markup":
        report = json.loads(Path(slices[0]).read_text(encoding="utf-8"))
        report["hosts"][0]["endpoints"][0]["port"] = "<script>alert(1)</script>"
        report["hosts"] = report["hosts"][:1]
        report["hosts"][0]["name"] = "mx9"
        third.write_text(json.dumps(report), encoding="utf-8")
    elif damage != "missing":
        third.write_text("{not json" if damage == "not json" else '{"hosts": []}', encoding="utf-8")
    result = run_task(tmp_path, "mailops.tls.mail_tls_report",
                      {"merge": [*slices, str(third)], "json_path": str(tmp_path / "fleet.json")})
    assert result["failed"] and message in result["msg"] and "Traceback" not in result["msg"]
    assert not (tmp_path / "fleet.json").exists()


def test_hosts_and_merge_exclude_each_other(tmp_path, slices):
    both = run_task(tmp_path, "mailops.tls.mail_tls_report", {"merge": slices, "hosts": []})
    neither = run_task(tmp_path, "mailops.tls.mail_tls_report", {"json_path": str(tmp_path / "fleet.json")})
    assert both["failed"] and "mutually exclusive: hosts|merge" in both["msg"]
    assert neither["failed"] and "one of the following is required: hosts, merge" in neither["msg"]
