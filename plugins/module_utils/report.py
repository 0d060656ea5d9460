# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Audit reports: probe results of many hosts -> one judged document (the JSON report, schema_version 1), and that
document as JUnit XML, as one self-contained HTML page, and as summary lines for the console.

Pure: plain dicts in (the results of mail_tls_endpoint_info, one per host), plain data out. The schema is documented
in docs/audit-report-schema.json and docs/audit.md; a test keeps them in step.
"""
from __future__ import annotations

import datetime
import html
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.certs import printable
from ansible_collections.mailops.tls.plugins.module_utils.client_matrix import clients_note
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import mismatches, presented_from_result
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.findings import (
    CODES,
    DANE_CODES,
    DEPLOY_CODES,
    MTA_STS_CODES,
    PROBE_ERROR_CODES,
    CertificateRef,
    Finding,
)
from ansible_collections.mailops.tls.plugins.module_utils.policy import evaluate
from ansible_collections.mailops.tls.plugins.module_utils.report_schema import (
    PROBE_RESULT_SCHEMA,
    REPORT_SCHEMA,
    check_document,
    errors,
)

SCHEMA_VERSION = 1
# Who found a finding: the host's own probe call, or the report's comparison of hosts (recomputed when merging).
PROBE, COMPARISON = "probe", "comparison"
PASS, WARN, FAIL, SKIPPED = "pass", "warn", "fail", "skipped"
VERDICT_ORDER = {PASS: 0, WARN: 1, FAIL: 2}

# Standard ports of the mail services: port -> (service, protocol spoken there). The matrix's columns.
SERVICES = {25: ("smtp", "smtp"), 587: ("submission", "smtp"), 465: ("smtps", "smtps"), 143: ("imap", "imap"),
            993: ("imaps", "imaps"), 110: ("pop3", "pop3"), 995: ("pop3s", "pop3s"), 4190: ("sieve", "sieve"),
            24: ("lmtp", "lmtp")}
SERVICE_ORDER = [service for service, _protocol in SERVICES.values()]

# One test case per endpoint and check: which issue codes each check is about (every code is in exactly one).
CHECKS = {
    "connection": PROBE_ERROR_CODES,
    "chain": ("parse_error", "ignored_block", "no_certificate", "wrong_order", "missing_intermediate", "root_included",
              "unrelated_certificate", "duplicate_certificate", "chain_cycle", "chain_search_limit", "cross_signed"),
    "trust": ("untrusted_root", "bad_signature", "not_a_ca", "path_length_exceeded", "chain_too_deep",
              "certificate_version", "unknown_critical_extension", "basic_constraints_not_critical", "san_criticality",
              "issuer_missing_server_auth", "name_constraint_violation", "name_constraints_too_complex"),
    "names": ("name_mismatch", "wildcard_used", "cn_only"),
    "validity": ("expired", "not_yet_valid", "expires_soon", "expires_critical"),
    "keys": ("key_mismatch", "no_private_key", "weak_key", "weak_signature", "missing_server_auth", "leaf_is_ca",
             "ca_as_leaf"),
    # The deploy role's configuration codes never come from a probe; they belong with serving one chain.
    "consistency": ("backend_mismatch", "service_mismatch", *DEPLOY_CODES),
    "dane": DANE_CODES,
    "mta_sts": MTA_STS_CODES,
}
CHECK_TITLES = {
    "connection": "a TLS connection can be made",
    "chain": "the server sends the complete chain, in order",
    "trust": "the chain ends in a trusted root",
    "names": "the certificate is valid for the name clients use",
    "validity": "no certificate has expired or expires soon",
    "keys": "keys and signatures are strong",
    "consistency": "every backend and service sends the same chain",
    "dane": "published DANE TLSA records authenticate the chain",
    "mta_sts": "the MTA-STS policy covers the host and its certificate",
}
CHECK_OF = {code: check for check, codes in CHECKS.items() for code in codes}
# Checks that run only where the endpoint carries their data (mail_tls_dane_info results): skipped elsewhere.
DATA_CHECKS = ("dane", "mta_sts")
DANE_KEYS = ("status", "applies", "tlsa", "missing", "leftover")

# How to fix each finding, in words a non-expert can act on; the same advice as docs/issue-codes.md (a test checks).
FIXES = {
    "parse_error": "Copy the damaged block again from the CA's mail or portal, or give the passphrase.",
    "ignored_block": "Nothing, unless you meant to give a certificate there.",
    "no_certificate": "Give the server certificate and its intermediates (PEM, DER, PKCS#7 or PKCS#12).",
    "wrong_order": "Reorder the file, or let mail_tls_chain write it.",
    "missing_intermediate": "Add the intermediate right after the certificate it signed.",
    "root_included": "Nothing is broken: clients already have the root, so the server need not send it.",
    "unrelated_certificate": "Remove it.",
    "duplicate_certificate": "Keep one copy.",
    "untrusted_root": "For a private CA give its root in roots and publish it to users (publish_root role); otherwise "
                      "get a certificate from a CA the clients trust.",
    "chain_cycle": "Add the CA's real intermediate or root.",
    "chain_search_limit": "Give a smaller pool, or the intermediates themselves.",
    "cross_signed": "Nothing is broken: check that the chain chosen is the one you want to serve.",
    "expired": "Renew it, or use the CA's current intermediate.",
    "not_yet_valid": "Check the clock, or wait.",
    "expires_soon": "Renew it.",
    "expires_critical": "Renew it now, and find out why the automatic renewal did not.",
    "not_a_ca": "Get the certificate from a real CA.",
    "path_length_exceeded": "Use the path the CA intends (ask the CA which intermediate to use).",
    "bad_signature": "Get the intermediate that really issued the certificate.",
    "name_mismatch": "Get a certificate that lists every name clients connect by, including the load balancer's name.",
    "wildcard_used": "List the name itself in the subjectAltName, or accept the risk with ignore: [wildcard_used].",
    "cn_only": "Reissue the certificate with the names in the subjectAltName.",
    "key_mismatch": "Give the key the certificate was requested with.",
    "no_private_key": "Name the file of the leaf's private key in private_key_path.",
    "weak_key": "Reissue with a stronger key.",
    "weak_signature": "Reissue it with SHA-256.",
    "missing_server_auth": "Reissue the certificate for TLS server authentication.",
    "leaf_is_ca": "Use a server (end-entity) certificate.",
    "chain_too_deep": "Use the CA's shorter path, or raise max_chain_depth if your clients allow deeper chains.",
    "certificate_version": "Get a current (version 3) certificate from the CA.",
    "unknown_critical_extension": "Reissue it without that extension, or with it non-critical.",
    "basic_constraints_not_critical": "Get a corrected CA certificate.",
    "san_criticality": "Reissue the certificate.",
    "ca_as_leaf": "Use a server (end-entity) certificate.",
    "issuer_missing_server_auth": "Use the CA's intermediate for TLS servers.",
    "name_constraint_violation": "Get the certificate from a CA allowed to issue for that name.",
    "name_constraints_too_complex": "Ask the CA for simpler constraints.",
    "connect_refused": "Check that the service runs and listens on that address (ss -ltn), and the firewall.",
    "connect_timeout": "Check routing and firewalls between the prober and the host.",
    "connect_failed": "Check the name in DNS or the inventory.",
    "starttls_not_offered": "Enable TLS on that service (Postfix smtpd_tls_security_level = may, Dovecot ssl = yes).",
    "starttls_rejected": "Check the server's log and the files with mail_tls_assert.",
    "protocol_error": "Check protocol for that port.",
    "tls_handshake_failed": "Check the server's TLS settings and its log.",
    "timeout": "Raise timeout, or find why the service is slow.",
    "probe_unsupported": "Run the probe on the controller (delegate_to: localhost) or install openssl.",
    "backend_mismatch": "Deploy the same chain to every backend.",
    "service_mismatch": "Point every service at the same files.",
    "intermediate_in_cafile": "Put the intermediates in the chain file (the role does) and remove them from the CA "
                              "setting unless you verify client certificates.",
    "setting_overridden": "Remove the override, or point it at the same files.",
    "tlsproxy_overridden": "Let the deploy role set postscreen's TLS proxy back to the smtpd files.",
    "old_chain_served": "Check which files that service reads, and how it is reloaded.",
    "dns_lookup_failed": "Re-sign the zone and check its DS record at the parent (or that the name servers answer).",
    "tlsa_mismatch": "Publish the records for the new chain next to the current ones, wait the TTL, then deploy.",
    "tlsa_unusable": "Replace it with a 3 1 1 record for the server's key or a 2 1 1 record for its issuer.",
    "tlsa_insecure": "Sign the zone and publish its DS record at the parent, and ask a validating resolver.",
    "tlsa_leftover": "Remove it once no server uses that key any more and its TTL has passed; keep it when it is the "
                     "next key.",
    "mta_sts_invalid": "Serve a valid policy over HTTPS with a publicly trusted certificate.",
    "mta_sts_mx_mismatch": "Add the host, or a pattern that covers it, to the policy and change the id in the _mta-sts "
                           "TXT record.",
    "mta_sts_certificate": "Serve a publicly trusted chain that lists the MX host name.",
    "mta_sts_missing": "Nothing, unless you want MTA-STS: publish a policy and its TXT record.",
    "tls_rpt_missing": "Publish a TLS-RPT record with a mailto: or https: address.",
}


def service_of(port: int, protocol: str) -> str:
    """The matrix column of an endpoint: the service name of a standard port, else protocol:port."""
    known = SERVICES.get(port)
    return known[0] if known and known[1] == protocol else f"{protocol}:{port}"


def _finding_of(item: dict) -> Finding:
    cert = item.get("certificate")
    ref = CertificateRef(cert.get("index"), cert.get("sha256", ""), cert.get("subject", "")) if cert else None
    return Finding(item["code"], item["severity"], item["message"], ref)


def _cross_host_mismatches(entries: list) -> dict:
    """position -> [backend_mismatch], for endpoints of different hosts that answer for one name on one port (and
    key type) with another chain than most of them. Probes of one host were compared by their own probe call."""
    items = [presented_from_result(endpoint, _where(host, endpoint)) for host, endpoint, _findings in entries]
    found = mismatches(items, services=False)
    return {position: problems for position, problems in found.items()
            if not any(f.code == "backend_mismatch" for f in entries[position][2])}


def _where(host: str, endpoint: dict) -> str:
    label = endpoint.get("label") or host
    return f"{endpoint['address']}:{endpoint['port']} ({label})"


def _cert_summary(cert: Optional[dict]) -> Optional[dict]:
    if not cert:
        return None
    return {"subject": cert["subject"], "issuer": cert["issuer"], "sha256": cert["fingerprints"]["sha256"],
            "not_before": cert["not_before"], "not_after": cert["not_after"], "days_left": cert["days_left"]}


def _expiry(endpoint: dict) -> Optional[dict]:
    """The certificate of the chain (root included) that expires first."""
    certificates = list(endpoint.get("chain") or []) + ([endpoint["root"]] if endpoint.get("root") else [])
    if not certificates:
        return None
    first = min(certificates, key=lambda cert: cert["days_left"])
    return {"subject": first["subject"], "not_after": first["not_after"], "days_left": first["days_left"]}


def _verdict_of(statuses) -> str:
    statuses = set(statuses)
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


def _judge_endpoint(host: str, endpoint: dict, findings: Sequence[Finding], compared: Sequence[Finding], fail_on,
                    ignore) -> dict:
    """The report's entry for one endpoint: findings are its probe's, compared those the comparison of hosts added."""
    from_comparison = {id(f) for f in compared}
    findings = [*findings, *compared]
    verdict = evaluate(findings, fail_on, ignore)
    status_of = {}
    for f in findings:
        if f in verdict.violations:
            status_of[id(f)] = "violation"
        elif f in verdict.waived:
            status_of[id(f)] = "waived"
        elif f in verdict.warnings:
            status_of[id(f)] = "warning"
        else:
            status_of[id(f)] = "info"
    reachable = bool(endpoint.get("ok"))
    checks = []
    for check, codes in CHECKS.items():
        mine = [f for f in findings if f.code in codes]
        unchecked = check in DATA_CHECKS and endpoint.get(check) is None and not mine
        if unchecked or (not reachable and check != "connection"
                         and not any(status_of[id(f)] == "violation" for f in mine)):
            status = SKIPPED
        elif any(status_of[id(f)] == "violation" for f in mine):
            status = FAIL
        elif any(status_of[id(f)] == "warning" for f in mine):
            status = WARN
        else:
            status = PASS
        checks.append({"check": check, "title": CHECK_TITLES[check], "status": status,
                       "codes": sorted({f.code for f in mine})})
    presented = endpoint.get("presented") or []
    return {
        "name": endpoint["name"], "host": host, "service": service_of(endpoint["port"], endpoint["protocol"]),
        "address": endpoint["address"], "peer_address": endpoint.get("peer_address"), "port": endpoint["port"],
        "protocol": endpoint["protocol"], "server_name": endpoint.get("server_name"), "sni": endpoint.get("sni"),
        "label": endpoint.get("label"),
        "key_type": endpoint.get("key_type"), "key_type_requested": endpoint.get("key_type_requested"),
        "verdict": _verdict_of(c["status"] for c in checks), "reachable": reachable, "error": endpoint.get("error"),
        "tls_version": endpoint.get("tls_version"), "cipher": endpoint.get("cipher"),
        "seconds": endpoint.get("seconds"),
        "chain": {"sent": len(presented), "complete": bool(endpoint.get("complete")),
                  "ordered": bool(endpoint.get("ordered")), "trusted": bool(endpoint.get("trusted")),
                  "leaf": _cert_summary(presented[0] if presented else None),
                  "presented": [_cert_summary(cert) for cert in presented],
                  "root": _cert_summary(endpoint.get("root"))},
        "expiry": _expiry(endpoint),
        "dane": _dane_summary(endpoint.get("dane")),
        "mta_sts": endpoint.get("mta_sts"),
        "checks": checks,
        "findings": [dict(f.as_dict(), status=status_of[id(f)], check=CHECK_OF.get(f.code, "chain"),
                          summary=CODES[f.code][1] if f.code in CODES else f.code, fix=FIXES.get(f.code, ""),
                          found_by=COMPARISON if id(f) in from_comparison else PROBE)
                     for f in findings],
    }


def _dane_summary(verdict: Optional[dict]) -> Optional[dict]:
    """The DANE verdict of a mail_tls_dane_info endpoint (or of a stored report) as the report keeps it."""
    return {key: verdict[key] for key in DANE_KEYS} if verdict else None


def _sampled(item: dict) -> dict:
    """A load balancer's port as the probe sampled it: how many probes, how many different chains behind it."""
    keys = ("endpoint", "address", "port", "server_name", "key_type_requested", "probes", "answered", "chains")
    return {key: item[key] for key in keys}


def _unprobed(host: str, address: Optional[str], error: str) -> dict:
    return {"name": host, "address": address, "verdict": FAIL, "error": error, "endpoints": [], "sampled": []}


def build_report(hosts: Sequence[dict], fail_on: Sequence[str] = (), ignore: Sequence[str] = (),
                 title: str = "Mail TLS audit", generated_at: Optional[datetime.datetime] = None) -> dict:
    """The JSON report (schema_version 1) from each host's mail_tls_endpoint_info result.

    hosts: dicts with name, address (optional), result (the probe result, or None when the host was not probed)
    and error (why not). Raises InputError for unknown codes in fail_on and ignore."""
    evaluate((), fail_on, ignore)  # refuses unknown codes before anything else
    for position, host in enumerate(hosts):
        if host.get("result") is not None:
            check_document(host["result"], PROBE_RESULT_SCHEMA, f"hosts[{position}].result ({host['name']})",
                           "give the result mail_tls_endpoint_info returned (registered), unchanged")
    generated_at = generated_at or datetime.datetime.now(datetime.timezone.utc)
    entries = []
    for host in hosts:
        for endpoint in (host.get("result") or {}).get("endpoints") or ():
            entries.append((host["name"], endpoint, [_finding_of(item) for item in endpoint.get("issues") or ()]))
    compared = _cross_host_mismatches(entries)
    judged: dict = defaultdict(list)
    for position, (host, endpoint, findings) in enumerate(entries):
        judged[host].append(_judge_endpoint(host, endpoint, findings, compared.get(position, ()), fail_on, ignore))
    host_docs = []
    for host in hosts:
        if host.get("result") is None:
            host_docs.append(_unprobed(host["name"], host.get("address"),
                                       host.get("error") or "the host was not probed: its probe task failed"))
            continue
        endpoints = judged.get(host["name"], [])
        host_docs.append({"name": host["name"], "address": host.get("address"),
                          "verdict": _verdict_of(e["verdict"] for e in endpoints), "error": None,
                          "endpoints": endpoints,
                          "sampled": [_sampled(item) for item in host["result"].get("sampled") or ()]})
    return {
        "schema_version": SCHEMA_VERSION, "generator": "mailops.tls audit", "title": title,
        "generated_at": generated_at.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "passed": all(h["verdict"] != FAIL for h in host_docs),
        "policy": {"fail_on": sorted(fail_on), "ignore": sorted(ignore)},
        "summary": _summary(host_docs),
        "services": _services(host_docs),
        "hosts": host_docs,
    }


def hosts_from_reports(reports: Sequence[tuple[str, dict]]) -> list:
    """build_report's hosts from the JSON reports of job slices, as (source, document) pairs: the probe results they
    keep, without what their own comparison of hosts added, so that build_report compares all hosts at once.
    Raises InputError for a document that is not such a report and for a host found in two of them."""
    hosts: list = []
    seen: dict = {}
    for source, document in reports:
        if not isinstance(document, dict) or document.get("schema_version") != SCHEMA_VERSION:
            raise InputError(f"{source} is not a mailops.tls audit report (JSON with schema_version "
                             f"{SCHEMA_VERSION}): give the JSON reports the audit wrote")
        _check_stored_report(source, document)
        _add_stored_hosts(hosts, seen, source, document)
    return hosts


def _check_stored_report(source: str, document: dict) -> None:
    """Every field of a report to merge, checked against the report's schema before any is used."""
    problems = errors(document, REPORT_SCHEMA)
    if problems and all(problem.endswith(": found_by is missing") for problem in problems):
        raise InputError(f"{source} was written by a version of mailops.tls that did not mark which findings its "
                         "comparison of hosts added: audit those hosts again before merging")
    check_document(document, REPORT_SCHEMA, f"{source}, a mailops.tls audit report to merge,",
                   "give the JSON reports the audit wrote, unchanged")


def _add_stored_hosts(hosts: list, seen: dict, source: str, document: dict) -> None:
    for host in document["hosts"]:
        if host["name"] in seen:
            raise InputError(f"host {host['name']} is in {seen[host['name']]} and in {source}: merge the reports of "
                             "one run's slices, which audit each host once")
        seen[host["name"]] = source
        endpoints = [_stored_result(endpoint, source) for endpoint in host["endpoints"]]
        hosts.append({"name": host["name"], "address": host.get("address"), "error": host.get("error"),
                      "result": None if host.get("error") else {"endpoints": endpoints,
                                                                "sampled": host.get("sampled") or []}})


def _stored_result(endpoint: dict, source: str) -> dict:
    """One endpoint of a JSON report in the shape of a mail_tls_endpoint_info result, as _judge_endpoint reads it."""
    chain = endpoint["chain"]
    kept = ("name", "address", "peer_address", "port", "protocol", "server_name", "sni", "label", "key_type",
            "key_type_requested", "error", "tls_version", "cipher", "seconds", "dane", "mta_sts")
    return {
        **{key: endpoint.get(key) for key in kept}, "ok": endpoint["reachable"], "complete": chain["complete"],
        "ordered": chain["ordered"], "trusted": chain["trusted"],
        "presented": [_stored_certificate(cert) for cert in chain["presented"]],
        "root": _stored_certificate(chain["root"]),
        # The report keeps the first expiry of the chain it built (root included), not that chain: as its only
        # certificate, _expiry finds the same one again.
        "chain": [endpoint["expiry"]] if endpoint.get("expiry") else [],
        "issues": [item for item in endpoint["findings"] if item["found_by"] == PROBE],
    }


def _stored_certificate(summary: Optional[dict]) -> Optional[dict]:
    if not summary:
        return None
    return {"subject": summary["subject"], "issuer": summary["issuer"], "fingerprints": {"sha256": summary["sha256"]},
            "not_before": summary["not_before"], "not_after": summary["not_after"], "days_left": summary["days_left"]}


def _services(host_docs: Sequence[dict]) -> list:
    seen = {e["service"] for h in host_docs for e in h["endpoints"]}
    return [s for s in SERVICE_ORDER if s in seen] + sorted(seen - set(SERVICE_ORDER))


def _summary(host_docs: Sequence[dict]) -> dict:
    endpoints = [e for h in host_docs for e in h["endpoints"]]
    statuses = Counter(f["status"] for e in endpoints for f in e["findings"])
    expiries = [dict(e["expiry"], endpoint=e["name"], host=e["host"]) for e in endpoints if e["expiry"]]
    return {
        "hosts": len(host_docs), "hosts_failed": sum(h["verdict"] == FAIL for h in host_docs),
        "hosts_not_probed": sum(h["error"] is not None for h in host_docs),
        "endpoints": len(endpoints), "reachable": sum(e["reachable"] for e in endpoints),
        "pass": sum(e["verdict"] == PASS for e in endpoints), "warn": sum(e["verdict"] == WARN for e in endpoints),
        "fail": sum(e["verdict"] == FAIL for e in endpoints),
        "violations": statuses["violation"], "warnings": statuses["warning"], "waived": statuses["waived"],
        "codes": dict(sorted(Counter(f["code"] for e in endpoints for f in e["findings"]
                                     if f["status"] == "violation").items())),
        "soonest_expiry": min(expiries, key=lambda item: item["days_left"]) if expiries else None,
    }


def violations(document: dict) -> list:
    """Every finding that fails the policy, with the host and endpoint it is about."""
    return [{"host": e["host"], "endpoint": e["name"], "code": f["code"], "severity": f["severity"],
             "message": f["message"]}
            for h in document["hosts"] for e in h["endpoints"] for f in e["findings"] if f["status"] == "violation"]


# ---------------------------------------------------------------------------------------------------------------
# Console


def summary_lines(document: dict, paths: Optional[dict] = None) -> list:
    """A few lines for the end of the run: the overall verdict, each failing host with its codes, expiry, files."""
    s = document["summary"]
    state = "PASSED" if document["passed"] else "FAILED"
    lines = [f"{document['title']}: {state}: {s['fail']} of {s['endpoints']} endpoint(s) on {s['hosts']} host(s) break "
             f"the policy, {s['warn']} with warnings, {s['pass']} clean; {s['reachable']} answered"]
    for host in document["hosts"]:
        if host["error"]:
            lines.append(f"{host['name']}: not probed: {_one_line(host['error'])}")
        elif host["verdict"] == FAIL:
            codes = Counter(f["code"] for e in host["endpoints"] for f in e["findings"] if f["status"] == "violation")
            failing = sum(e["verdict"] == FAIL for e in host["endpoints"])
            lines.append(f"{host['name']}: {failing} endpoint(s) fail: "
                         + ", ".join(f"{code} ({count})" for code, count in sorted(codes.items())))
    lines.extend(_sampled_line(host) for host in document["hosts"] if host.get("sampled"))
    soonest = s["soonest_expiry"]
    if soonest:
        lines.append(f"first expiry: {soonest['subject']} in {soonest['days_left']} day(s) ({soonest['not_after']}), "
                     f"served by {soonest['endpoint']}")
    for kind, path in (paths or {}).items():
        lines.append(f"{kind} report: {path}")
    return [printable(line) for line in lines]


def _sampled_line(host: dict) -> str:
    """'front: load balancer, different chains behind each port: 993: 2 in 6 probe(s), ...'"""
    return (f"{host['name']}: load balancer, different chains behind each port: "
            + ", ".join(_sampled_words(item) for item in host["sampled"]))


def _sampled_words(item: dict) -> str:
    """'993 ecdsa: 2 in 6 probe(s)': a load balancer's port, the chains seen behind it and the probes made."""
    return f"{_sampled_port(item)}: {item['chains']} in {item['probes']} probe(s)"


def _sampled_port(item: dict) -> str:
    """'993', or '993 ecdsa' when the port was sampled for one key type."""
    return f"{item['port']} {item['key_type_requested']}" if item["key_type_requested"] else str(item["port"])


def verdict_lines(document: Optional[dict]) -> list:
    """One line per endpoint with its verdict and violated codes: what diff mode compares between two audits."""
    if not document:
        return []
    lines = []
    for host in document.get("hosts", ()):
        if host.get("error"):
            lines.append(f"{host['name']}: not probed")
        for e in host.get("endpoints", ()):
            codes = sorted({f["code"] for f in e["findings"] if f["status"] == "violation"})
            lines.append(f"{host['name']} {e['service']} {e['name']}: {e['verdict']}"
                         + (f" ({', '.join(codes)})" if codes else ""))
    return [printable(line) for line in lines]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------------------------------
# JUnit XML

_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text) -> str:
    """Text XML 1.0 can hold: control characters shown as \\xNN."""
    return _XML_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def junit_xml(document: dict) -> str:
    """One test suite per host, one test case per endpoint and check; policy violations are failures, checks that
    could not run (no TLS connection) are skipped, warnings go to system-out."""
    root = ET.Element("testsuites", name=_xml_text(document["title"]))
    totals = Counter()
    for host in document["hosts"]:
        suite = ET.SubElement(root, "testsuite", name=_xml_text(host["name"]),
                              hostname=_xml_text(host.get("address") or host["name"]),
                              timestamp=document["generated_at"])
        counts = Counter()
        if host["error"]:
            case = ET.SubElement(suite, "testcase", classname=_xml_text(host["name"]), name="probe")
            ET.SubElement(case, "failure", type="not_probed", message=_xml_text(_one_line(host["error"])))
            counts.update(tests=1, failures=1)
        for endpoint in host["endpoints"]:
            for check in endpoint["checks"]:
                counts.update(tests=1)
                case = ET.SubElement(suite, "testcase", classname=_xml_text(f"{host['name']}.{endpoint['service']}"),
                                     name=_xml_text(f"{check['check']}: {endpoint['name']}"),
                                     time=f"{(endpoint.get('seconds') or 0) if check['check'] == 'connection' else 0}")
                mine = [f for f in endpoint["findings"] if f["check"] == check["check"]]
                if check["status"] == FAIL:
                    counts.update(failures=1)
                    bad = [f for f in mine if f["status"] == "violation"]
                    failure = ET.SubElement(case, "failure", type=_xml_text(",".join(sorted({f["code"] for f in bad}))),
                                            message=_xml_text(_one_line(bad[0]["message"])))
                    failure.text = _xml_text("\n".join(f"[{f['code']}] {_one_line(f['message'])}\nFix: {f['fix']}"
                                                       for f in bad))
                elif check["status"] == SKIPPED:
                    counts.update(skipped=1)
                    error = endpoint.get("error") or {}
                    reason = f"no TLS connection ({error.get('code')})" if error else "not checked in this audit"
                    ET.SubElement(case, "skipped", message=_xml_text(reason))
                notes = [f for f in mine if f["status"] in ("warning", "waived", "info")]
                if notes and check["status"] != SKIPPED:
                    out = ET.SubElement(case, "system-out")
                    out.text = _xml_text("\n".join(f"{f['status']}: [{f['code']}] {_one_line(f['message'])}"
                                                   for f in notes))
        if host.get("sampled"):
            ET.SubElement(suite, "system-out").text = _xml_text(_sampled_line(host))
        for key in ("tests", "failures", "skipped"):
            suite.set(key, str(counts[key]))
        suite.set("errors", "0")
        totals.update(counts)
    for key in ("tests", "failures", "skipped"):
        root.set(key, str(totals[key]))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------------------------------------------
# HTML: one page, no script, no external resource; every value escaped.

_LABELS = {PASS: ("\u2714", "OK"), WARN: ("\u26a0", "Warning"), FAIL: ("\u2716", "Problem"), SKIPPED: ("\u2013", "n/a")}
_ERROR_WORDS = {
    "connect_refused": "connection refused", "connect_timeout": "no answer (timeout)",
    "connect_failed": "address unknown or unreachable", "starttls_not_offered": "STARTTLS not offered",
    "starttls_rejected": "STARTTLS refused", "protocol_error": "unexpected protocol",
    "tls_handshake_failed": "TLS handshake failed", "timeout": "too slow (timeout)",
    "probe_unsupported": "could not be probed",
}
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;max-width:90rem;
padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
h3{font-size:1.05rem;margin:1.4rem 0 .3rem}
.meta{color:#555}.banner{padding:.8rem 1rem;border-radius:.4rem;font-size:1.15rem;margin:1rem 0}
.banner.pass{background:#e6f4ea;border:2px solid #1e7b34}.banner.fail{background:#fdecea;border:2px solid #b3261e}
table.matrix{border-collapse:collapse;width:100%;table-layout:fixed}
.matrix th,.matrix td{border:1px solid #bbb;padding:.35rem;vertical-align:top;font-size:.85rem}
.matrix thead th{background:#f0f0f0}.matrix tbody th{text-align:left;background:#fafafa;width:9rem}
td.cell.pass{background:#e6f4ea}td.cell.warn{background:#fff4d6}td.cell.fail{background:#fdecea}
td.cell.none{background:#f7f7f7;color:#888}
.entry+.entry{border-top:1px dashed #aaa;margin-top:.3rem;padding-top:.3rem}
.verdict{font-weight:700;white-space:nowrap}.pass .verdict,.verdict.pass{color:#1e7b34}
.warn .verdict,.verdict.warn{color:#8a5a00}.fail .verdict,.verdict.fail{color:#b3261e}
.small{font-size:.8rem;color:#444}.problem{color:#8c1d18;font-weight:600}.mono{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
ul.findings{padding-left:1.2rem}ul.findings li{margin:.45rem 0}
.sev{display:inline-block;font-size:.75rem;font-weight:700;padding:0 .35rem;border-radius:.2rem;color:#fff}
.sev.violation{background:#b3261e}.sev.warning{background:#8a5a00}.sev.waived,.sev.info{background:#777}
.fix{background:#eef4fb;border-left:3px solid #0b5cad;padding:.2rem .5rem;margin-top:.2rem}
.clients{font-size:.85rem;color:#444;margin-top:.2rem}
table.legend td{padding:.15rem .6rem .15rem 0;font-size:.9rem}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _anchor(endpoint: dict) -> str:
    return "ep-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{endpoint['host']}-{endpoint['service']}-{endpoint['port']}-"
                          f"{endpoint.get('server_name') or ''}-{endpoint.get('key_type') or ''}").strip("-")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _countdown(expiry: Optional[dict]) -> str:
    if not expiry:
        return ""
    days = expiry["days_left"]
    if days < 0:
        return f"expired {-days} day(s) ago"
    return f"expires in {days} day(s)" if days != 0 else "expires today"


def _peer_words(endpoint: dict) -> str:
    """' via ADDRESS' (escaped) when a name was connected to and one of its addresses answered."""
    peer = endpoint.get("peer_address")
    return f" via {_e(peer)}" if peer and peer != endpoint["address"] else ""


def _chain_words(endpoint: dict) -> str:
    chain = endpoint["chain"]
    parts = [f"{chain['sent']} certificate(s) sent",
             "complete" if chain["complete"] else "incomplete",
             "in order" if chain["ordered"] else "out of order",
             "trusted root" if chain["trusted"] else "root not trusted" if chain["complete"] else "no root reached"]
    return ", ".join(parts)


def _cell_entry(endpoint: dict, several: bool) -> str:
    icon, word = _LABELS[endpoint["verdict"]]
    lines = [f'<div class="entry {_e(endpoint["verdict"])}" data-endpoint="{_e(endpoint["name"])}" '
             f'data-verdict="{_e(endpoint["verdict"])}">',
             f'<a href="#{_anchor(endpoint)}" class="verdict">{icon} {word}</a>']
    peer = endpoint.get("peer_address")
    if several or (peer and peer != endpoint["address"]):  # which name, key type and address of the host answered
        lines.append(f'<div class="small">{_e(endpoint.get("server_name") or endpoint["address"])}'
                     f'{" " + _e(endpoint["key_type"]) if endpoint.get("key_type_requested") else ""}'
                     f'{" @ " + _e(peer) if peer else ""}</div>')
    if endpoint["reachable"]:
        lines.append(f'<div>{_e(_countdown(endpoint["expiry"]))}</div>')
        lines.append(f'<div class="small">{_e(_chain_words(endpoint))}</div>')
    else:
        code = (endpoint.get("error") or {}).get("code")
        lines.append(f'<div>{_e(_ERROR_WORDS.get(code, code or "no connection"))}</div>')
    lines.extend(f'<div class="small" data-{key}="{_e(value)}">{_e(words)}</div>'
                 for key, value, words in _dns_words(endpoint))
    problems = sorted({f["code"] for f in endpoint["findings"] if f["status"] in ("violation", "warning")})
    lines.extend(f'<div class="small problem" data-code="{_e(code)}">{_e(code.replace("_", " "))}</div>'
                 for code in problems)
    lines.append("</div>")
    return "".join(lines)


def _dns_words(endpoint: dict) -> list:
    """(data attribute, value, words) for the DANE and MTA-STS verdicts an endpoint carries."""
    words = []
    dane = endpoint.get("dane")
    if dane:
        words.append(("dane", dane["status"], f"DANE: {dane['status'].replace('_', ' ')}"
                      + (f", publish {len(dane['missing'])} record(s)" if dane["status"] == "mismatch" else "")))
    policy = endpoint.get("mta_sts")
    if policy:
        covered = f"covered by {policy['pattern']}" if policy["pattern"] else "not in the policy"
        valid = "certificate valid" if policy["certificate_valid"] else "certificate not Web PKI valid"
        words.append(("mta-sts", policy["mode"], f"MTA-STS {policy['mode']}: {covered}, {valid}"))
    return words


def _matrix(document: dict) -> str:
    services = document["services"]
    head = "".join(f'<th scope="col">{_e(s)}</th>' for s in services)
    rows = []
    for host in document["hosts"]:
        row = [f'<tr data-host="{_e(host["name"])}"><th scope="row">{_e(host["name"])}'
               f'<div class="small mono">{_e(host.get("address") or "")}</div></th>']
        if host["error"]:
            row.append(f'<td class="cell fail" colspan="{max(len(services), 1)}" data-service="*" data-verdict="fail">'
                       f'<span class="verdict">{_LABELS[FAIL][0]} Not probed</span> {_e(host["error"])}</td>')
        else:
            for service in services:
                endpoints = [e for e in host["endpoints"] if e["service"] == service]
                if not endpoints:
                    row.append(f'<td class="cell none" data-service="{_e(service)}" data-verdict="none">'
                               "not audited</td>")
                    continue
                verdict = _verdict_of(e["verdict"] for e in endpoints)
                row.append(f'<td class="cell {verdict}" data-service="{_e(service)}" data-verdict="{verdict}">'
                           + "".join(_cell_entry(e, len(endpoints) > 1) for e in endpoints) + "</td>")
        row.append("</tr>")
        rows.append("".join(row))
    return (f'<table class="matrix" id="matrix"><thead><tr><th scope="col">host</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _load_balancers(document: dict) -> str:
    """Per port of each load balancer: how many probes were made and how many different chains answered them."""
    rows = []
    for host in document["hosts"]:
        for item in host.get("sampled") or ():
            state = PASS if item["chains"] <= 1 else FAIL
            rows.append(f'<tr data-host="{_e(host["name"])}" data-port="{_e(item["port"])}" '
                        f'data-key-type="{_e(item["key_type_requested"] or "")}" data-chains="{_e(item["chains"])}">'
                        f'<td>{_e(host["name"])}</td><td class="mono">{_e(_sampled_port(item))}</td>'
                        f'<td>{_e(item["probes"])}</td><td>{_e(item["answered"])}</td>'
                        f'<td class="verdict {state}">{_e(item["chains"])}</td></tr>')
    if not rows:
        return ""
    return ('<h2>Load balancers</h2><p>Each port of a load balancer was probed until every backend had answered or '
            "the bound was reached. One chain behind a port means every backend that answered serves the same "
            "chain; more mean some backends serve another one (see backend mismatch in the findings).</p>"
            '<table class="matrix" id="load-balancers"><thead><tr><th scope="col">load balancer</th>'
            '<th scope="col">port</th><th scope="col">probes</th><th scope="col">answered</th>'
            f'<th scope="col">different chains</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _first_fixes(document: dict) -> str:
    codes = Counter()
    example = {}
    for host in document["hosts"]:
        for endpoint in host["endpoints"]:
            for f in endpoint["findings"]:
                if f["status"] == "violation":
                    codes[f["code"]] += 1
                    example.setdefault(f["code"], f)
    if not codes:
        return ""
    items = []
    for code, count in codes.most_common():
        f = example[code]
        items.append(f'<li><strong>{_e(_sentence(f["summary"]))}</strong> <span class="mono small">({_e(code)}, '
                     f'{count} endpoint finding(s))</span><div class="fix">How to fix: {_e(f["fix"])}</div>'
                     f'{_clients(code)}</li>')
    return f'<h2>What to fix first</h2><ul class="findings">{"".join(items)}</ul>'


def _clients(code: str) -> str:
    """Which mail clients refused such a chain in the client lab (docs/clients.md), when measured."""
    note = clients_note(code)
    return f'<div class="clients">{_e(note)}</div>' if note else ""


def _certificate_lines(endpoint: dict) -> str:
    chain = endpoint["chain"]
    rows = []
    for position, cert in enumerate(chain["presented"], 1):
        rows.append(f"<li>#{position} {_e(cert['subject'])} <span class='small'>issued by {_e(cert['issuer'])}; "
                    f"valid until {_e(cert['not_after'])} ({_e(cert['days_left'])} days)</span></li>")
    root = chain["root"]
    if root:
        rows.append(f"<li>root (not sent, as it should be): {_e(root['subject'])} "
                    f"<span class='small'>valid until {_e(root['not_after'])}</span></li>")
    return f"<ol class='small'>{''.join(rows)}</ol>" if rows else ""


def _details(document: dict) -> str:
    parts = ["<h2>Findings by endpoint</h2>",
             "<p>Only endpoints with something to look at are listed; the others passed every check.</p>"]
    listed = 0
    for host in document["hosts"]:
        for endpoint in host["endpoints"]:
            shown = [f for f in endpoint["findings"] if f["status"] != "info"]
            if not shown:
                continue
            listed += 1
            icon, word = _LABELS[endpoint["verdict"]]
            parts.append(f'<section id="{_anchor(endpoint)}" data-endpoint="{_e(endpoint["name"])}">'
                         f'<h3><span class="verdict {_e(endpoint["verdict"])}">{icon} {word}</span> '
                         f'{_e(host["name"])} &middot; {_e(endpoint["service"])} &middot; '
                         f'<span class="mono">{_e(endpoint["address"])}:{_e(endpoint["port"])}'
                         f'{_peer_words(endpoint)}</span>'
                         f'{" &middot; " + _e(endpoint["server_name"]) if endpoint.get("server_name") else ""}</h3>')
            if endpoint["reachable"]:
                parts.append(f"<p class='small'>{_e(endpoint.get('tls_version') or '')} "
                             f"{_e(endpoint.get('cipher') or '')}; {_e(_chain_words(endpoint))}; "
                             f"{_e(_countdown(endpoint['expiry']))}</p>")
                parts.append(_certificate_lines(endpoint))
            items = []
            for f in sorted(shown, key=lambda f: ["violation", "warning", "waived"].index(f["status"])):
                label = {"violation": "must fix", "warning": "warning", "waived": "waived"}[f["status"]]
                items.append(f'<li><span class="sev {f["status"]}">{label}</span> <strong>{_e(_sentence(f["summary"]))}'
                             f'</strong> <span class="mono small">{_e(f["code"])}</span><div>{_e(f["message"])}</div>'
                             f'<div class="fix">How to fix: {_e(f["fix"])}</div>{_clients(f["code"])}</li>')
            parts.append(f'<ul class="findings">{"".join(items)}</ul></section>')
    if not listed:
        parts.append("<p>Nothing to report.</p>")
    return "".join(parts)


def html_page(document: dict) -> str:
    """The report as one self-contained HTML page a non-expert can read: verdict, what to fix first, the matrix of
    hosts by service, and every finding with its fix."""
    s = document["summary"]
    state = PASS if document["passed"] else FAIL
    headline = ("Passed: every endpoint meets the policy." if document["passed"] else
                f"Failed: {s['fail']} of {s['endpoints']} endpoint(s) break the policy.")
    soonest = s["soonest_expiry"]
    expiry = (f"<p>The first certificate to expire is {_e(soonest['subject'])}, served by {_e(soonest['endpoint'])}: "
              f"{_e(_countdown(soonest))} ({_e(soonest['not_after'])}).</p>" if soonest else "")
    policy = document["policy"]
    legend = "".join(f'<tr><td class="verdict {v}">{_LABELS[v][0]} {_LABELS[v][1]}</td><td>{_e(text)}</td></tr>'
                     for v, text in ((PASS, "the endpoint passes every check"),
                                     (WARN, "it works, but something needs attention soon"),
                                     (FAIL, "mail clients may refuse it, or it breaks the policy: fix it")))
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(document['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(document['title'])}</h1>",
        f"<p class='meta'>Generated {_e(document['generated_at'])} by {_e(document['generator'])}; "
        f"policy: every error fails{', also ' + _e(', '.join(policy['fail_on'])) if policy['fail_on'] else ''}"
        f"{'; waived: ' + _e(', '.join(policy['ignore'])) if policy['ignore'] else ''}.</p>",
        f'<div class="banner {state}" id="verdict" data-passed="{str(document["passed"]).lower()}">'
        f"<strong>{_e(headline)}</strong><br>{_e(s['hosts'])} host(s), {_e(s['endpoints'])} endpoint(s): "
        f"{_e(s['pass'])} OK, {_e(s['warn'])} with warnings, {_e(s['fail'])} with problems; "
        f"{_e(s['reachable'])} answered.</div>",
        expiry,
        "<p>Each mail service must present a certificate that mail clients can verify: valid for the name they "
        "connect by, with every intermediate certificate sent in order, up to a root the clients trust. "
        "Every backend behind the load balancer must present the same one.</p>",
        _first_fixes(document),
        _load_balancers(document),
        "<h2>Hosts by service</h2>",
        f'<table class="legend">{legend}</table>',
        _matrix(document),
        _details(document),
        "</body></html>\n",
    ])
