# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for report.py: probe results of several hosts judged into the JSON report (validated against
docs/audit-report-schema.json), cross-host backend_mismatch, the policy, JUnit XML and the HTML page."""
from __future__ import annotations

import datetime
import html
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pki
import pytest
import report_schema

from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement, loaded_certificates
from ansible_collections.mailops.tls.plugins.module_utils.client_matrix import clients_note
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import compare, endpoint_results, judge
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.findings import CODES
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, ProbeResult
from ansible_collections.mailops.tls.plugins.module_utils.report import (
    CHECKS,
    DATA_CHECKS,
    FIXES,
    SCHEMA_VERSION,
    build_report,
    hosts_from_reports,
    html_page,
    junit_xml,
    service_of,
    summary_lines,
    verdict_lines,
    violations,
)

NAME = "mail.example.test"
WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
PORTS = {"smtp": (25, "smtp"), "imaps": (993, "imaps"), "pop3": (110, "pop3")}
ISSUE_CODES_DOC = Path(__file__).resolve().parents[4] / "docs" / "issue-codes.md"


@pytest.fixture(scope="module")
def company() -> pki.Hierarchy:
    return pki.hierarchy(NAME, depth=1)


@pytest.fixture(scope="module")
def judgement(company) -> Judgement:
    return Judgement(roots=loaded_certificates([company.root.der], "the test roots"))


def probe_result(host: str, address: str, service: str, ders=(), error: str = "", server_name: str = NAME):
    port, protocol = PORTS[service]
    endpoint = Endpoint(address=address, port=port, protocol=protocol, server_name=server_name, label=host)
    if error:
        return ProbeResult(endpoint, False, error_code=error, error_message=f"{endpoint}: {error} happened",
                           seconds=0.01)
    return ProbeResult(endpoint, True, tuple(ders), "TLSv1.3", "TLS_AES_256_GCM_SHA384", seconds=0.02,
                       key_type="ecdsa")


def host_result(judgement, results) -> dict:
    """A host's mail_tls_endpoint_info result, made by the library itself from probe results."""
    return endpoint_results(compare([judge(result, judgement) for result in results]))


@pytest.fixture(scope="module")
def fleet(company, judgement) -> list:
    """mx1 good; mx2 broken twice (a leaf for another name, without its intermediate); mx3 refuses imaps; mx4 was
    not probed."""
    good = [company.leaf.der, company.intermediates[0].der]
    wrong = company.intermediates[0].leaf("other.example.test")
    hosts = []
    for number, ders, broken in ((1, good, ""), (2, [wrong.der], ""), (3, good, "imaps")):
        address = f"192.0.2.{10 + number}"
        results = [probe_result(f"mx{number}", address, service, ders, "connect_refused" if broken == service else "")
                   for service in PORTS]
        hosts.append({"name": f"mx{number}", "address": address, "result": host_result(judgement, results)})
    hosts.append({"name": "mx4", "address": "192.0.2.14", "result": None,
                  "error": "mail_tls_endpoint_info failed: endpoint 192.0.2.14:0: port out of range"})
    return hosts


@pytest.fixture(scope="module")
def document(fleet) -> dict:
    return build_report(fleet, generated_at=WHEN)


def endpoint(document: dict, host: str, service: str) -> dict:
    return next(e for h in document["hosts"] if h["name"] == host for e in h["endpoints"] if e["service"] == service)


def violated(e: dict) -> set:
    return {f["code"] for f in e["findings"] if f["status"] == "violation"}


# ---------------------------------------------------------------------------------------------------------------
# The JSON document


def test_document_matches_its_documented_schema(document):
    assert report_schema.errors(document, report_schema.load_schema()) == []
    assert document["schema_version"] == SCHEMA_VERSION == report_schema.load_schema()["properties"][
        "schema_version"]["const"]
    assert json.loads(json.dumps(document)) == document


def test_schema_validator_finds_what_breaks_the_schema(document):
    schema = report_schema.load_schema()
    broken = json.loads(json.dumps(document))
    broken["hosts"][0]["endpoints"][0]["verdict"] = "maybe"
    del broken["summary"]["fail"]
    broken["hosts"][1]["surprise"] = 1
    problems = report_schema.errors(broken, schema)
    assert any("verdict" in p and "maybe" in p for p in problems)
    assert any("fail is missing" in p for p in problems)
    assert any("surprise is not allowed" in p for p in problems)


def test_each_host_and_endpoint_gets_its_verdict(document):
    verdicts = {h["name"]: h["verdict"] for h in document["hosts"]}
    assert verdicts == {"mx1": "pass", "mx2": "fail", "mx3": "fail", "mx4": "fail"}
    assert document["passed"] is False
    assert document["services"] == ["smtp", "imaps", "pop3"]
    for service in PORTS:
        assert endpoint(document, "mx1", service)["verdict"] == "pass"
        assert violated(endpoint(document, "mx2", service)) == {"missing_intermediate", "name_mismatch",
                                                                "backend_mismatch"}
    assert document["summary"]["codes"] == {"backend_mismatch": 3, "connect_refused": 1, "missing_intermediate": 3,
                                            "name_mismatch": 3}


def test_backends_are_compared_across_hosts_with_the_majority_chain_as_reference(document):
    mismatch = next(f for f in endpoint(document, "mx2", "smtp")["findings"] if f["code"] == "backend_mismatch")
    assert "192.0.2.12:25 (mx2) presents another chain than the other backends answering for mail.example.test" \
        in mismatch["message"]
    assert "with 1 more certificate(s) from 192.0.2.11:25 (mx1), 192.0.2.13:25 (mx3); leaf" in mismatch["message"]
    assert "backend_mismatch" not in violated(endpoint(document, "mx1", "smtp"))


def test_a_mismatch_the_probe_found_is_not_reported_twice(company, judgement):
    wrong = company.intermediates[0].leaf(NAME)
    results = [probe_result("lb", f"192.0.2.{n}", "imaps", [leaf.der, company.intermediates[0].der])
               for n, leaf in ((1, company.leaf), (2, company.leaf), (3, wrong))]
    one_call = build_report([{"name": "lb", "result": host_result(judgement, results)}], generated_at=WHEN)
    codes = [f["code"] for f in one_call["hosts"][0]["endpoints"][2]["findings"]]
    assert codes.count("backend_mismatch") == 1


def test_findings_say_whether_the_probe_or_the_comparison_of_hosts_found_them(document):
    found_by = {(e["host"], e["service"], f["code"]): f["found_by"]
                for h in document["hosts"] for e in h["endpoints"] for f in e["findings"]}
    assert found_by[("mx2", "smtp", "backend_mismatch")] == "comparison"
    assert found_by[("mx2", "smtp", "name_mismatch")] == "probe"
    assert found_by[("mx3", "imaps", "connect_refused")] == "probe"


# ---------------------------------------------------------------------------------------------------------------
# Merging the reports of job slices


def test_merged_slices_give_the_report_of_one_run(fleet, document):
    first, second = build_report(fleet[:2], generated_at=WHEN), build_report(fleet[2:], generated_at=WHEN)
    merged = build_report(hosts_from_reports([("slice-1.json", first), ("slice-2.json", second)]), generated_at=WHEN)
    assert merged == document


def test_merging_compares_the_backends_of_every_slice_again(company, judgement):
    """mx1 and mx2 tie in their slice, where the chain without errors (mx1's) wins; with mx3 and mx4, which serve
    mx2's chain, the majority changes: the merged report flags mx1, not mx2."""
    good = [company.leaf.der, company.intermediates[0].der]
    other = [company.intermediates[0].leaf(NAME).der, company.intermediates[0].der]

    def host(number: int, ders: list) -> dict:
        address = f"192.0.2.{10 + number}"
        results = [probe_result(f"mx{number}", address, "imaps", ders)]
        return {"name": f"mx{number}", "address": address, "result": host_result(judgement, results)}

    first = build_report([host(1, good), host(2, other)], generated_at=WHEN)
    second = build_report([host(3, other), host(4, other)], generated_at=WHEN)
    assert "backend_mismatch" in violated(endpoint(first, "mx2", "imaps"))
    merged = build_report(hosts_from_reports([("slice-1.json", first), ("slice-2.json", second)]), generated_at=WHEN)
    flagged = {h["name"] for h in merged["hosts"] if "backend_mismatch" in violated(h["endpoints"][0])}
    assert flagged == {"mx1"}


def test_merging_refuses_a_host_audited_twice(fleet):
    first, second = build_report(fleet[:2], generated_at=WHEN), build_report(fleet[1:], generated_at=WHEN)
    with pytest.raises(InputError, match=re.escape("host mx2 is in slice-1.json and in slice-2.json")):
        hosts_from_reports([("slice-1.json", first), ("slice-2.json", second)])


@pytest.mark.parametrize("other", [[], {"schema_version": 2, "hosts": []}, {"hosts": []}])
def test_merging_refuses_what_is_not_an_audit_report(other):
    with pytest.raises(InputError, match=re.escape("other.json is not a mailops.tls audit report")):
        hosts_from_reports([("other.json", other)])


@pytest.mark.parametrize("damage, reason", [
    (lambda doc: doc.pop("hosts"), "($: hosts is missing)"),
    (lambda doc: doc["hosts"][0].pop("endpoints"), "($.hosts[0]: endpoints is missing)"),
    (lambda doc: doc["hosts"][1]["endpoints"][0].pop("chain"), "($.hosts[1].endpoints[0]: chain is missing)"),
    (lambda doc: doc["hosts"][0].update(endpoints=7), "($.hosts[0].endpoints: 7 is not of type ['array'])"),
])
def test_merging_refuses_a_damaged_report_naming_what_is_wrong(document, damage, reason):
    damaged = json.loads(json.dumps(document))
    damage(damaged)
    expected = f"edited.json, a mailops.tls audit report to merge, does not match its schema {reason}"
    with pytest.raises(InputError, match=re.escape(expected)):
        hosts_from_reports([("edited.json", damaged)])


def test_merging_refuses_reports_that_do_not_say_who_found_a_finding(document):
    older = json.loads(json.dumps(document))
    for item in (f for h in older["hosts"] for e in h["endpoints"] for f in e["findings"]):
        del item["found_by"]
    with pytest.raises(InputError, match=re.escape("old.json was written by a version of mailops.tls that")):
        hosts_from_reports([("old.json", older)])


def test_an_unreachable_endpoint_fails_its_connection_check_and_skips_the_others(document):
    refused = endpoint(document, "mx3", "imaps")
    assert refused["reachable"] is False and refused["error"]["code"] == "connect_refused"
    statuses = {c["check"]: c["status"] for c in refused["checks"]}
    assert statuses == {"connection": "fail", "chain": "skipped", "trust": "skipped", "names": "skipped",
                        "validity": "skipped", "keys": "skipped", "consistency": "skipped", "dane": "skipped",
                        "mta_sts": "skipped"}
    assert refused["chain"]["presented"] == [] and refused["expiry"] is None


def test_endpoint_carries_chain_summary_and_expiry(document, company):
    good = endpoint(document, "mx1", "smtp")
    assert good["chain"]["sent"] == 2 and good["chain"]["complete"] and good["chain"]["trusted"]
    assert good["chain"]["leaf"]["subject"] == company.leaf.cert.subject.rfc4514_string()
    assert good["chain"]["root"]["subject"] == company.root.cert.subject.rfc4514_string()
    assert good["expiry"]["days_left"] == min(c["days_left"] for c in good["chain"]["presented"])
    assert good["tls_version"] == "TLSv1.3"


def test_unprobed_host_fails_with_its_reason(document):
    host = document["hosts"][3]
    assert host["error"].startswith("mail_tls_endpoint_info failed") and host["endpoints"] == []
    assert document["summary"]["hosts_not_probed"] == 1


def test_every_finding_has_summary_and_fix(document):
    for f in (f for h in document["hosts"] for e in h["endpoints"] for f in e["findings"]):
        assert f["summary"] == CODES[f["code"]][1] and f["fix"] == FIXES[f["code"]]


# ---------------------------------------------------------------------------------------------------------------
# Policy


def test_ignore_waives_and_the_findings_stay(fleet):
    document = build_report(fleet[:3], ignore=["missing_intermediate", "name_mismatch", "backend_mismatch",
                                               "connect_refused"], generated_at=WHEN)
    assert document["passed"] is True
    assert {f["status"] for f in endpoint(document, "mx2", "smtp")["findings"]} == {"waived"}
    assert document["summary"]["waived"] == 10 and document["policy"]["ignore"][0] == "backend_mismatch"


def test_fail_on_turns_a_warning_into_a_violation(company, judgement):
    soon = company.intermediates[0].leaf(NAME, not_after=pki.NOW + 5 * pki.DAY)
    result = host_result(judgement, [probe_result("mx1", "192.0.2.1", "imaps",
                                                  [soon.der, company.intermediates[0].der])])
    relaxed = build_report([{"name": "mx1", "result": result}], generated_at=WHEN)
    strict = build_report([{"name": "mx1", "result": result}], fail_on=["expires_soon"], generated_at=WHEN)
    assert relaxed["passed"] and relaxed["hosts"][0]["verdict"] == "warn"
    assert relaxed["summary"]["soonest_expiry"]["days_left"] in (4, 5)
    assert not strict["passed"] and violated(strict["hosts"][0]["endpoints"][0]) == {"expires_soon"}


@pytest.mark.parametrize("option", ["fail_on", "ignore"])
def test_unknown_codes_in_the_policy_are_refused(fleet, option):
    with pytest.raises(InputError, match="unknown issue code"):
        build_report(fleet, **{option: ["name_mismatsch"]})


def test_violations_list_host_endpoint_and_code(document):
    listed = violations(document)
    assert {(v["host"], v["code"]) for v in listed} >= {("mx2", "name_mismatch"), ("mx3", "connect_refused")}
    assert all(v["endpoint"] for v in listed)


# ---------------------------------------------------------------------------------------------------------------
# Vocabulary


def test_checks_cover_every_issue_code_once():
    listed = [code for codes in CHECKS.values() for code in codes]
    assert sorted(listed) == sorted(CODES)


def test_every_code_has_a_fix_that_agrees_with_the_issue_codes_doc():
    sections = dict(re.findall(r"^### (\w+)\n(.*?)(?=^#{2,3} |\Z)", ISSUE_CODES_DOC.read_text(), re.M | re.S))
    assert set(FIXES) == set(CODES) == set(sections)
    for code, text in sections.items():
        plain = " ".join(text.replace("`", "").split()).lower()
        if "*fix:*" in plain:
            assert FIXES[code].rstrip(".").lower() in plain, code


@pytest.mark.parametrize("port,protocol,service", [
    (25, "smtp", "smtp"), (587, "smtp", "submission"), (465, "smtps", "smtps"), (143, "imap", "imap"),
    (993, "imaps", "imaps"), (110, "pop3", "pop3"), (995, "pop3s", "pop3s"), (4190, "sieve", "sieve"),
    (24, "lmtp", "lmtp"), (10993, "imaps", "imaps:10993"), (25, "tls", "tls:25"),
])
def test_service_columns(port, protocol, service):
    assert service_of(port, protocol) == service


# ---------------------------------------------------------------------------------------------------------------
# JUnit XML


def test_junit_has_one_case_per_endpoint_and_check_with_failures_where_they_belong(document):
    root = ET.fromstring(junit_xml(document))
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert list(suites) == ["mx1", "mx2", "mx3", "mx4"]
    assert len(suites["mx1"].findall("testcase")) == 3 * len(CHECKS)
    failed = {(case.get("classname"), case.get("name").split(":")[0]) for case in root.iter("testcase")
              if case.find("failure") is not None}
    assert failed == ({("mx2." + s, c) for s in PORTS for c in ("chain", "names", "consistency")}
                      | {("mx3.imaps", "connection"), ("mx4", "probe")})
    chain_failure = next(case for case in suites["mx2"] if case.get("name").startswith("chain: 192.0.2.12:993"))
    assert chain_failure.find("failure").get("type") == "missing_intermediate"
    assert "Fix: Add the intermediate" in chain_failure.find("failure").text
    skipped = [case for case in suites["mx3"] if case.find("skipped") is not None]
    unreachable = [case for case in skipped if case.find("skipped").get("message").startswith("no TLS connection")]
    assert len(unreachable) == len(CHECKS) - 1
    # DANE and MTA-STS come from mail_tls_dane_info: not checked by these probes (mx3's other two endpoints)
    assert {case.get("name").split(":")[0] for case in skipped if case not in unreachable} == set(DATA_CHECKS)
    assert len(skipped) == len(CHECKS) - 1 + 2 * len(DATA_CHECKS)
    assert root.get("tests") == str(9 * len(CHECKS) + 1) and root.get("failures") == str(len(failed))
    assert root.get("skipped") == str(sum(case.find("skipped") is not None for case in root.iter("testcase")))
    assert suites["mx2"].get("failures") == "9" and suites["mx2"].get("hostname") == "192.0.2.12"


def test_junit_survives_control_characters_and_markup(company, judgement):
    result = host_result(judgement, [probe_result("mx<1>&\x07", "192.0.2.1", "imaps", error="connect_refused")])
    text = junit_xml(build_report([{"name": "mx<1>&\x07", "result": result}], generated_at=WHEN))
    root = ET.fromstring(text)
    assert root.find("testsuite").get("name") == "mx<1>&\\x07"


# ---------------------------------------------------------------------------------------------------------------
# HTML


class Cells(HTMLParser):
    """Collects the matrix cells (host, service, verdict) and every tag name used."""

    def __init__(self):
        super().__init__()
        self.host = None
        self.cells = {}
        self.tags = set()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.add(tag)
        self.urls.extend(v for k, v in attrs if k in ("src", "href") and v)
        if tag == "tr" and "data-host" in attributes:
            self.host = attributes["data-host"]
        if tag == "td" and "data-service" in attributes:
            self.cells[(self.host, attributes["data-service"])] = attributes["data-verdict"]


class SampledRows(HTMLParser):
    """The rows of the HTML page's load balancer table: their data attributes and the text of each cell."""

    def __init__(self):
        super().__init__()
        self.rows = []
        self.inside = False
        self.cell = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.inside = self.inside or (tag == "table" and attributes.get("id") == "load-balancers")
        if self.inside and tag == "tr" and "data-port" in attributes:
            self.rows.append({key: attributes[f"data-{key}"] for key in ("host", "port", "key-type", "chains")}
                             | {"cells": []})
        if self.inside and tag == "td":
            self.cell = self.rows[-1]["cells"]
            self.cell.append("")

    def handle_endtag(self, tag):
        self.cell = None
        self.inside = self.inside and tag != "table"

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[-1] += data


def test_html_matrix_shows_each_cell_verdict(document):
    parser = Cells()
    parser.feed(html_page(document))
    expected = {("mx1", s): "pass" for s in PORTS} | {("mx2", s): "fail" for s in PORTS}
    expected |= {("mx3", "smtp"): "pass", ("mx3", "imaps"): "fail", ("mx3", "pop3"): "pass", ("mx4", "*"): "fail"}
    assert parser.cells == expected


def test_html_is_self_contained_and_escaped(company, judgement):
    hostile = "<script>alert(1)</script>"
    result = host_result(judgement, [probe_result(hostile, "192.0.2.1", "imaps", error="connect_refused")])
    page = html_page(build_report([{"name": hostile, "address": '"><img src=x>', "result": result}],
                                  title="Audit <b>&</b>", generated_at=WHEN))
    parser = Cells()
    parser.feed(page)
    assert "script" not in parser.tags and "img" not in parser.tags and "b" not in parser.tags
    assert all(url.startswith("#") for url in parser.urls)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "Audit &lt;b&gt;&amp;&lt;/b&gt;" in page


def test_html_explains_findings_with_their_fix(document):
    page = html_page(document)
    assert "Failed: 4 of 9 endpoint(s) break the policy." in page
    assert "How to fix: Add the intermediate right after the certificate it signed." in page
    assert "What to fix first" in page and "connection refused" in page


def test_html_names_the_clients_that_refused_each_finding(document):
    page = html_page(document)
    note = clients_note("missing_intermediate")
    assert note.startswith("Refused in the client lab by ")
    assert page.count(f'<div class="clients">{html.escape(note)}</div>') >= 2  # what to fix first, and the details


# ---------------------------------------------------------------------------------------------------------------
# Console and diff


def test_summary_lines_name_failing_hosts_and_the_files(document):
    lines = summary_lines(document, {"json": "/r/a.json"})
    assert lines[0].startswith("Mail TLS audit: FAILED: 4 of 9 endpoint(s) on 4 host(s)")
    assert "mx2: 3 endpoint(s) fail: backend_mismatch (3), missing_intermediate (3), name_mismatch (3)" in lines
    assert any(line.startswith("mx4: not probed") for line in lines)
    assert lines[-1] == "json report: /r/a.json"


def test_verdict_lines_compare_two_audits(document):
    lines = verdict_lines(document)
    assert "mx1 smtp 192.0.2.11:25 (mx1) smtp: pass" in lines
    assert "mx3 imaps 192.0.2.13:993 (mx3) imaps: fail (connect_refused)" in lines
    assert verdict_lines(None) == [] and verdict_lines({}) == []


def test_a_sampled_load_balancer_reports_the_chains_behind_each_port(company, judgement, tmp_path):
    """The balancer's imaps port answered six probes with two chains (one server lacks the intermediate): each
    probe is an endpoint of the report, the host says how many chains stood behind the port, the console says it,
    and a merge of the report keeps it."""
    good = [company.leaf.der, company.intermediates[0].der]
    results = [replace(probe_result("front", "192.0.2.10", "imaps", good if number % 3 else good[:1]), sample=number)
               for number in range(1, 7)]
    hosts = [{"name": "front", "address": "192.0.2.10", "result": host_result(judgement, results)}]
    document = build_report(hosts, generated_at=WHEN)
    assert report_schema.errors(document, report_schema.load_schema()) == []
    (front,) = document["hosts"]
    assert front["sampled"] == [{"endpoint": "192.0.2.10:993 (front)", "address": "192.0.2.10", "port": 993,
                                 "server_name": NAME, "key_type_requested": None, "probes": 6, "answered": 6,
                                 "chains": 2}]
    assert [e["name"] for e in front["endpoints"]][:2] == [f"192.0.2.10:993 (front) imaps, probe {n}" for n in (1, 2)]
    assert front["verdict"] == "fail"
    line = "front: load balancer, different chains behind each port: 993: 2 in 6 probe(s)"
    assert line in summary_lines(document)
    merged = build_report(hosts_from_reports([("slice.json", json.loads(json.dumps(document)))]), generated_at=WHEN)
    assert merged["hosts"][0]["sampled"] == front["sampled"]
    (suite,) = ET.fromstring(junit_xml(document)).findall("testsuite")
    assert suite.find("system-out").text == line
    rows = SampledRows()
    rows.feed(html_page(document))
    assert rows.rows == [{"host": "front", "port": "993", "key-type": "", "chains": "2",
                          "cells": ["front", "993", "6", "6", "2"]}]


def test_a_report_without_load_balancers_says_nothing_of_sampling(document):
    assert all(host["sampled"] == [] for host in document["hosts"])
    assert "Load balancers" not in html_page(document)
    assert ET.fromstring(junit_xml(document)).find("testsuite/system-out") is None
    assert not any("load balancer" in line for line in summary_lines(document))
