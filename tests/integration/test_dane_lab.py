# SPDX-License-Identifier: GPL-3.0-or-later
"""DANE and MTA-STS against the real lab: NSD serving signed zones, a validating Unbound, Postfix on port 25, an
HTTPS server for the policy. Every DANE verdict is compared with Postfix's own posttls-finger on the same DNS."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import dnslab
import pytest
import report_schema
from run_playbook import REPO, run_playbook

from ansible_collections.mailops.tls.plugins.module_utils import dane
from ansible_collections.mailops.tls.plugins.module_utils import dns as dnslib
from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement
from ansible_collections.mailops.tls.plugins.module_utils.domaincheck import Request, check
from ansible_collections.mailops.tls.plugins.module_utils.load import load_bytes
from ansible_collections.mailops.tls.plugins.module_utils.report import build_report, html_page, junit_xml

RESOLVER = dnslib.Resolver(dnslab.RESOLVER, 53, 5.0)


def domain_check(lab, domain: str = dnslab.SIGNED, **options) -> dict:
    judgement = Judgement(roots=load_bytes(lab.pki.root_pem, "the lab root"))
    return check(Request(domain=domain, resolver=RESOLVER, judgement=judgement, timeout=5.0, **options))


def by_mx(result: dict) -> dict:
    return {endpoint["mx"]: endpoint for endpoint in result["endpoints"]}


def codes(endpoint: dict) -> set:
    return {issue["code"] for issue in endpoint["issues"]}


# posttls-finger ------------------------------------------------------------------------------------------------


def posttls_finger(host: str, port: int = 25) -> str:
    """Postfix's own verdict: posttls-finger -l dane for [host]:port, with the lab resolver as the system's in a
    private mount namespace (LAB-NOTES: glibc passes the AD bit only with 'options trust-ad')."""
    with tempfile.TemporaryDirectory() as scratch:
        resolv = Path(scratch) / "resolv.conf"
        resolv.write_text(f"nameserver {dnslab.RESOLVER}\noptions trust-ad\n")
        (Path(scratch) / "main.cf").write_text("compatibility_level = 3.6\n")  # Postfix's defaults otherwise
        script = (f"mount --bind {resolv} /etc/resolv.conf && exec posttls-finger -c -l dane -L summary "
                  f"-t 5 -T 10 '[{host}]:{port}'")
        done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60,
                              check=False, env=dict(os.environ, MAIL_CONFIG=scratch))
    return done.stdout + done.stderr


FINGER_VERDICTS = {
    # what posttls-finger prints -> the collection's DANE status for the same host
    dane.VERIFIED: r"Verified TLS connection established",
    dane.MISMATCH: r"verification failed .*no matching DANE TLSA records",
    # DANE does not apply: Postfix falls back to unauthenticated TLS and never mentions the records
    dane.INSECURE: r"Untrusted TLS connection established",
    dane.LOOKUP_FAILED: r"TLSA lookup error",
}


def assert_posttls_finger_agrees(host: str, status: str) -> None:
    output = posttls_finger(host)
    assert re.search(FINGER_VERDICTS[status], output), f"posttls-finger for {host} (expected {status}):\n{output}"
    if status != dane.VERIFIED:
        assert "Verified TLS" not in output, output
    if status == dane.INSECURE:
        assert "DANE TLSA" not in output, output


@pytest.fixture(scope="module", autouse=True)
def needs_posttls_finger(dns_lab):
    if shutil.which("posttls-finger") is None or shutil.which("unshare") is None:
        pytest.fail("posttls-finger (postfix) and unshare (util-linux) are installed with the lab")


# tests ---------------------------------------------------------------------------------------------------------


def test_the_resolver_validates_the_lab_zones_and_refuses_every_other_name(dns_lab):
    signed = dnslib.query(RESOLVER, "_25._tcp.mx1.example.test", "TLSA")
    assert signed.secure and signed.rcode == "NOERROR" and len(signed.records) == 2
    assert signed.original_ttl == dnslab.TLSA_TTL
    assert dnslib.query(RESOLVER, "_25._tcp.mx1.bogus.test", "TLSA").rcode == "SERVFAIL"
    unsigned = dnslib.query(RESOLVER, "_25._tcp.mx1.unsigned.test", "TLSA")
    assert not unsigned.secure and len(unsigned.records) == 1
    assert dnslib.query(RESOLVER, "example.org", "MX").rcode == "REFUSED"


def test_matching_records_verify_every_mx_as_postfix_does(lab, dns_lab):
    result = domain_check(lab)
    assert [mx["name"] for mx in result["mx"]] == ["mx1.example.test", "mx2.example.test", "mx3.example.test"]
    assert all(mx["secure"] for mx in result["mx"])
    endpoints = by_mx(result)
    assert {mx: e["dane"]["status"] for mx, e in endpoints.items()} == dict.fromkeys(endpoints, dane.VERIFIED)
    # mx3 has only the 2 1 1 record: DANE-TA with the name checked
    assert endpoints["mx3.example.test"]["dane"]["records"][0]["authenticates"]
    assert result["records_to_publish"] == [] and result["summary"]["errors"] == 0
    for host in endpoints:
        assert_posttls_finger_agrees(host, dane.VERIFIED)


def test_a_lagging_rollover_is_refused_then_passes_after_the_next_record_is_published(lab, dns_lab):
    new = lab.pki.intermediate.leaf("mx1.example.test", "mx2.example.test", "mx3.example.test")
    planned = (new.der, lab.pki.intermediate.der)
    only_current = {"mx1": [dnslab.spki_record(lab.pki.leaf)]}
    try:
        dns_lab.publish(only_current)
        lagging = domain_check(lab, mx=("mx1.example.test",), chain_der=planned, mta_sts=False)
        assert lagging["endpoints"][0]["dane"]["status"] == dane.MISMATCH
        assert lagging["records_to_publish"] == [{"name": "_25._tcp.mx1.example.test", "ttl": dnslab.TLSA_TTL,
                                                  "records": [dnslab.spki_record(new),
                                                              dnslab.spki_record(lab.pki.intermediate, usage=2)]}]
        dns_lab.publish({"mx1": [*only_current["mx1"], dnslab.spki_record(new)]})  # current + next
        published = domain_check(lab, mx=("mx1.example.test",), chain_der=planned, mta_sts=False)
        assert published["endpoints"][0]["dane"]["status"] == dane.VERIFIED
        assert published["records_to_publish"] == []
        # Live, the old key still serves: the next record is reported as matching nothing served yet.
        live = by_mx(domain_check(lab, mx=("mx1.example.test",), mta_sts=False))["mx1.example.test"]
        assert live["dane"]["status"] == dane.VERIFIED and live["dane"]["leftover"] == [dnslab.spki_record(new)]
        assert_posttls_finger_agrees("mx1.example.test", dane.VERIFIED)
    finally:
        dns_lab.restore()


def test_records_that_match_nothing_served_fail_as_they_do_for_postfix(lab, dns_lab):
    stranger = lab.pki.intermediate.leaf("mx1.example.test")
    try:
        dns_lab.publish({"mx1": [dnslab.spki_record(stranger)]})
        endpoint = by_mx(domain_check(lab, mx=("mx1.example.test",), mta_sts=False))["mx1.example.test"]
        assert endpoint["dane"]["status"] == dane.MISMATCH and "tlsa_mismatch" in codes(endpoint)
        assert_posttls_finger_agrees("mx1.example.test", dane.MISMATCH)
    finally:
        dns_lab.restore()


def test_a_bogus_signature_means_senders_defer(lab, dns_lab):
    result = domain_check(lab, dnslab.BOGUS, mta_sts=False)
    endpoint = result["endpoints"][0]
    assert endpoint["dane"]["status"] == dane.LOOKUP_FAILED and "dns_lookup_failed" in codes(endpoint)
    assert "SERVFAIL" in endpoint["dane"]["tlsa"]["error"]
    assert_posttls_finger_agrees("mx1.bogus.test", dane.LOOKUP_FAILED)


def test_an_unsigned_zone_means_dane_does_not_apply(lab, dns_lab):
    result = domain_check(lab, dnslab.UNSIGNED)
    endpoint = result["endpoints"][0]
    # unsigned.test publishes neither an MTA-STS policy nor a TLS-RPT record: reported once, for the domain
    assert {(issue["code"], issue["endpoint"]) for issue in result["issues"] if issue["severity"] == "info"} >= {
        ("mta_sts_missing", None), ("tls_rpt_missing", None)}
    assert result["mta_sts"]["id"] is None and endpoint["mta_sts"] is None
    assert not result["mx"][0]["secure"]
    assert endpoint["dane"]["status"] == dane.INSECURE and not endpoint["dane"]["applies"]
    # A warning, not an error: senders deliver with opportunistic TLS. (name_mismatch is there too: the lab's
    # certificate does not name mx1.unsigned.test.)
    assert "tlsa_insecure" in codes(endpoint) and not {"tlsa_mismatch", "dns_lookup_failed"} & codes(endpoint)
    assert_posttls_finger_agrees("mx1.unsigned.test", dane.INSECURE)


def test_mta_sts_policy_and_tls_rpt_are_read_and_every_mx_is_covered(lab, dns_lab):
    result = domain_check(lab)
    assert result["mta_sts"]["id"] == "1" and result["mta_sts"]["policy"]["mode"] == "enforce"
    assert result["mta_sts"]["tls_rpt"] == dnslab.TLS_RPT
    endpoints = by_mx(result)
    assert endpoints["mx1.example.test"]["mta_sts"] == {"mode": "enforce", "pattern": "mx1.example.test",
                                                        "certificate_valid": True}
    assert endpoints["mx2.example.test"]["mta_sts"]["pattern"] == "*.example.test"
    assert not any(issue["code"].startswith(("mta_sts", "tls_rpt")) for issue in result["issues"])


def test_a_policy_whose_mx_patterns_miss_a_host_is_reported_for_that_host(lab, dns_lab):
    try:
        dns_lab.serve_policy(dnslab.policy("mx1.example.test", "mx3.example.test"))
        endpoints = by_mx(domain_check(lab))
        assert "mta_sts_mx_mismatch" in codes(endpoints["mx2.example.test"])
        assert endpoints["mx2.example.test"]["mta_sts"]["pattern"] is None
        assert "mta_sts_mx_mismatch" not in codes(endpoints["mx1.example.test"])
    finally:
        dns_lab.restore()


def test_a_policy_server_without_a_web_pki_certificate_is_invalid(lab, dns_lab):
    result = check(Request(domain=dnslab.SIGNED, resolver=RESOLVER, judgement=Judgement(), timeout=5.0))
    assert result["mta_sts"]["error"] and "Web PKI" in result["mta_sts"]["error"]
    assert "mta_sts_invalid" in {issue["code"] for issue in result["issues"]}
    # Without the lab root the MX chains are not Web PKI valid either.
    assert "mta_sts_certificate" not in codes(by_mx(result)["mx1.example.test"])  # no policy: not judged


def test_the_audit_report_has_dane_and_mta_sts_columns_in_json_junit_and_html(lab, dns_lab):
    stranger = lab.pki.intermediate.leaf("mx1.example.test")
    try:
        dns_lab.publish({"mx1": [dnslab.spki_record(stranger)], "mx2": dns_lab.tlsa["mx2"]})
        dns_lab.serve_policy(dnslab.policy("mx1.example.test"))
        result = domain_check(lab)
    finally:
        dns_lab.restore()
    document = build_report([{"name": "example.test (DNS)", "address": None, "result": result}])
    assert report_schema.errors(document, report_schema.load_schema()) == []
    endpoints = {endpoint["server_name"]: endpoint for endpoint in document["hosts"][0]["endpoints"]}
    checks = {name: {c["check"]: c["status"] for c in e["checks"]} for name, e in endpoints.items()}
    assert checks["mx1.example.test"]["dane"] == "fail" and checks["mx1.example.test"]["mta_sts"] == "pass"
    assert checks["mx2.example.test"]["dane"] == "pass" and checks["mx2.example.test"]["mta_sts"] == "fail"
    # no TLSA records for mx3 here: DANE does not apply, nothing fails
    assert checks["mx3.example.test"]["dane"] == "pass"
    assert endpoints["mx3.example.test"]["dane"]["status"] == "no_records"
    assert endpoints["mx1.example.test"]["dane"]["missing"] == [
        dnslab.spki_record(lab.pki.leaf), dnslab.spki_record(lab.pki.intermediate, usage=2)]
    junit = ET.fromstring(junit_xml(document))
    failures = {" ".join(re.match(r"(\w+): .*\((\S+)\)", case.get("name")).groups())
                for case in junit.iter("testcase") if case.find("failure") is not None}
    assert {"dane mx1.example.test", "mta_sts mx2.example.test"} <= failures
    page = html_page(document)
    assert 'data-dane="mismatch"' in page and 'data-dane="verified"' in page
    assert "MTA-STS enforce: not in the policy" in page


def test_the_audit_role_checks_mail_domains_when_asked(lab, dns_lab, tmp_path):
    play = [{"name": "The audit playbook", "ansible.builtin.import_playbook": str(REPO / "playbooks" / "audit.yml")}]
    settings = {"mail_tls_audit_report_dir": str(tmp_path / "reports"), "mail_tls_audit_roots": [str(lab.root_file)],
                "mail_tls_audit_system_roots": False, "mail_tls_audit_dane_domains": [dnslab.SIGNED, dnslab.BOGUS],
                "mail_tls_audit_dane_resolver": dnslab.RESOLVER, "mail_tls_audit_services": ["smtp"],
                "mail_tls_audit_public_names": ["mx1.example.test"]}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    inventory = {"mail": {"hosts": {"mx1": {"ansible_host": lab.backends[0].address}}}}
    run = run_playbook(tmp_path, play, inventory=inventory, args=("-e", f"@{tmp_path / 'settings.json'}"))
    assert (tmp_path / "reports" / "mail-tls-audit.json").exists(), run.output
    document = json.loads((tmp_path / "reports" / "mail-tls-audit.json").read_text())
    hosts = {host["name"]: host for host in document["hosts"]}
    assert list(hosts) == ["mx1", "example.test (DNS)", "bogus.test (DNS)"], run.output
    assert {e["server_name"]: e["dane"]["status"] for e in hosts["example.test (DNS)"]["endpoints"]} == {
        "mx1.example.test": "verified", "mx2.example.test": "verified", "mx3.example.test": "verified"}
    assert hosts["bogus.test (DNS)"]["verdict"] == "fail"  # the bogus signature: senders defer mail
    assert run.returncode != 0 and "dns_lookup_failed" in run.output  # the policy fails, after the reports
