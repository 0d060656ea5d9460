# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for what report.py reads from outside: hosts[].result and the JSON reports to merge are checked against
their schemas before use (a clear InputError, never a TypeError, KeyError or RecursionError), and every value is
escaped in the HTML page, the JUnit XML and the console lines, whatever a crafted result or slice holds."""
from __future__ import annotations

import copy
import datetime
import json
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement, loaded_certificates
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import compare, endpoint_results, judge
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, ProbeResult
from ansible_collections.mailops.tls.plugins.module_utils.report import (
    build_report,
    hosts_from_reports,
    html_page,
    junit_xml,
    summary_lines,
    verdict_lines,
)
from ansible_collections.mailops.tls.plugins.module_utils.report_schema import (
    PROBE_RESULT_SCHEMA,
    REPORT_SCHEMA,
    errors,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
from sync_report_schema import SCHEMA_DOC, without_notes

NAME = "mail.example.test"
WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
SCRIPT = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
FORGED_LINE = "mx9\nmx1: PASSED \x1b[32mall good"


@pytest.fixture(scope="module")
def result() -> dict:
    """One host's mail_tls_endpoint_info result, made by the library: a good imaps and a refused smtp."""
    company = pki.hierarchy(NAME, depth=1)
    judgement = Judgement(roots=loaded_certificates([company.root.der], "the test roots"))
    imaps = Endpoint("192.0.2.11", 993, "imaps", server_name=NAME, label="mx1")
    smtp = Endpoint("192.0.2.11", 25, "smtp", server_name=NAME, label="mx1")
    probes = [ProbeResult(imaps, True, (company.leaf.der, company.intermediates[0].der), "TLSv1.3",
                          "TLS_AES_256_GCM_SHA384", seconds=0.02, key_type="ecdsa"),
              ProbeResult(smtp, False, error_code="connect_refused", error_message="refused", seconds=0.01)]
    return endpoint_results(compare([judge(probe, judgement) for probe in probes]))


def test_the_collection_checks_merges_against_the_documented_schema():
    """After a change to docs/audit-report-schema.json, run tests/tools/sync_report_schema.py."""
    assert without_notes(json.loads(SCHEMA_DOC.read_text())) == REPORT_SCHEMA


def test_real_probe_results_and_reports_match_their_schemas(result):
    assert errors(result, PROBE_RESULT_SCHEMA) == []
    assert errors(build_report([{"name": "mx1", "result": result}], generated_at=WHEN), REPORT_SCHEMA) == []


def _deep(depth: int):
    value: list = []
    for _level in range(depth):
        value = [value]
    return value


RESULT_DAMAGE = {
    "endpoints-not-a-list": (lambda r: r.update(endpoints=7), "$.endpoints: 7 is not of type"),
    "endpoint-not-an-object": (lambda r: r["endpoints"].append("x"), "$.endpoints[2]: 'x' is not of type"),
    "port-is-markup": (lambda r: r["endpoints"][0].update(port=SCRIPT), "$.endpoints[0].port: '<script>"),
    "port-out-of-range": (lambda r: r["endpoints"][0].update(port=70000), "$.endpoints[0].port: 70000 > 65535"),
    "days-left-is-markup": (lambda r: r["endpoints"][0]["presented"][0].update(days_left="<b>"),
                            "$.endpoints[0].presented[0].days_left"),
    "issue-without-code": (lambda r: r["endpoints"][1]["issues"][0].pop("code"),
                           "$.endpoints[1].issues[0]: code is missing"),
    "fingerprints-missing": (lambda r: r["endpoints"][0]["presented"][0].pop("fingerprints"),
                             "fingerprints is missing"),
    "deep-nesting": (lambda r: r["endpoints"][0].update(cipher=_deep(100000)),
                     "$.endpoints[0].cipher: a JSON array is not of type"),
    "control-characters": (lambda r: r["endpoints"][0].update(port="\x1b[2J\n"), "'\\x1b[2J\\n'"),
}


@pytest.mark.parametrize("damage", sorted(RESULT_DAMAGE))
def test_a_malformed_result_is_an_input_error_naming_the_field(result, damage):
    change, words = RESULT_DAMAGE[damage]
    crafted = copy.deepcopy(result) if damage != "deep-nesting" else json.loads(json.dumps(result))
    change(crafted)
    with pytest.raises(InputError) as caught:
        build_report([{"name": "mx1", "result": result}, {"name": "mx2", "result": crafted}], generated_at=WHEN)
    message = str(caught.value)
    assert message.startswith("hosts[1].result (mx2) does not match its schema (") and words in message
    assert message.isprintable()


SLICE_DAMAGE = {
    "port-is-markup": (lambda d: d["hosts"][0]["endpoints"][0].update(port=SCRIPT), ".port: '<script>"),
    "days-left-is-markup": (lambda d: d["hosts"][0]["endpoints"][0]["chain"]["presented"][0].update(
        days_left=SCRIPT), ".days_left: '<script>"),
    "found-by-unknown": (lambda d: d["hosts"][0]["endpoints"][1]["findings"][0].update(found_by="me"),
                         ".found_by: 'me' is not one of"),
    "host-not-an-object": (lambda d: d["hosts"].append(None), "$.hosts[1]: None is not of type"),
    "extra-field": (lambda d: d["hosts"][0].update(script=SCRIPT), "$.hosts[0]: script is not allowed"),
}


@pytest.mark.parametrize("damage", sorted(SLICE_DAMAGE))
def test_a_crafted_slice_is_refused_before_any_field_is_used(result, damage):
    change, words = SLICE_DAMAGE[damage]
    crafted = json.loads(json.dumps(build_report([{"name": "mx1", "result": result}], generated_at=WHEN)))
    change(crafted)
    with pytest.raises(InputError) as caught:
        hosts_from_reports([("slice.json", crafted)])
    assert str(caught.value).startswith("slice.json, a mailops.tls audit report to merge, does not match its schema")
    assert words in str(caught.value)


class Elements(HTMLParser):
    """Every element and attribute name of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set = set()
        self.attributes: set = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _value in attrs)


@pytest.fixture(scope="module")
def hostile(result) -> dict:
    """A valid result whose every free-text field holds markup or forged lines, merged through a slice."""
    crafted = copy.deepcopy(result)
    for endpoint in crafted["endpoints"]:
        endpoint.update(label=SCRIPT, server_name=SCRIPT, sni=SCRIPT, address=SCRIPT, name=SCRIPT + FORGED_LINE,
                        tls_version=SCRIPT, cipher=SCRIPT)
        for item in endpoint["issues"]:
            item["message"] = SCRIPT + FORGED_LINE
        for certificate in endpoint.get("presented") or ():
            certificate.update(subject=SCRIPT, issuer=SCRIPT)
    first = build_report([{"name": FORGED_LINE + SCRIPT, "address": SCRIPT, "result": crafted}], title=SCRIPT,
                         generated_at=WHEN)
    return build_report(hosts_from_reports([("slice.json", json.loads(json.dumps(first)))]), title=SCRIPT,
                        generated_at=WHEN)


def test_every_value_is_escaped_in_the_html_page(hostile):
    page = html_page(hostile)
    parser = Elements()
    parser.feed(page)
    assert parser.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "div", "span",
                           "strong", "br", "table", "thead", "tbody", "tr", "th", "td", "a", "ul", "ol", "li",
                           "section"}
    assert not {name for name in parser.attributes if name.startswith("on")}
    assert "&lt;script&gt;" in page


def test_every_value_is_escaped_in_the_junit_xml(hostile):
    root = ET.fromstring(junit_xml(hostile).encode())
    tags = {"testsuites", "testsuite", "testcase", "failure", "skipped", "system-out"}
    assert {element.tag for element in root.iter()} <= tags
    assert any(SCRIPT in (element.text or "") + " ".join(element.attrib.values()) for element in root.iter())


def test_console_lines_cannot_be_forged(hostile):
    for line in summary_lines(hostile) + verdict_lines(hostile):
        assert line.isprintable(), line
    assert any("mx9\\x0amx1: PASSED \\x1b[32mall good" in line for line in summary_lines(hostile))


def test_html_page_escapes_numbers_too(result):
    """The page's own escaping, behind the schema check: a document whose numbers were replaced by markup."""
    document = build_report([{"name": "mx1", "result": result}], generated_at=WHEN)
    good, refused = document["hosts"][0]["endpoints"]
    refused.update(port=SCRIPT, reachable=True, verdict="fail")
    refused["chain"]["presented"] = [dict(good["chain"]["presented"][0], days_left=SCRIPT)]
    document["summary"].update(hosts=SCRIPT, endpoints=SCRIPT, reachable=SCRIPT)
    parser = Elements()
    parser.feed(html_page(document))
    assert "script" not in parser.tags and "img" not in parser.tags
    assert not {name for name in parser.attributes if name.startswith("on")}
