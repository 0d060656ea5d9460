# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The audit report (report.build_report's document) as Prometheus text exposition format, for node_exporter's
textfile collector or any scrape of a file: expiry timestamps, verdicts and findings per code per endpoint, and
the chains seen behind each port of a load balancer."""
from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterator

from ansible_collections.mailops.tls.plugins.module_utils.report import FAIL, PASS, WARN

VERDICTS = (PASS, WARN, FAIL)

# name -> help text; every family is a gauge (a file is a snapshot of one audit, nothing counts up).
FAMILIES = {
    "mail_tls_audit_timestamp_seconds": "When the audit ran, as a Unix time.",
    "mail_tls_audit_passed": "1 when every host passed the audit's policy, else 0.",
    "mail_tls_endpoint_up": "1 when the endpoint answered with a TLS certificate chain, else 0.",
    "mail_tls_endpoint_verdict": "The endpoint's verdict under the policy: 1 for the verdict it has, 0 for the others.",
    "mail_tls_endpoint_expiry_timestamp_seconds": "The earliest notAfter of the endpoint's chain and root, as a Unix "
                                                  "time.",
    "mail_tls_certificate_expiry_timestamp_seconds": "notAfter of each certificate the endpoint presented, as a Unix "
                                                     "time.",
    "mail_tls_certificate_not_before_timestamp_seconds": "notBefore of each certificate the endpoint presented, as a "
                                                         "Unix time (with notAfter, its lifetime).",
    "mail_tls_endpoint_findings": "How many findings of each issue code and status the endpoint has.",
    "mail_tls_load_balancer_probes": "How many probes the audit made to a load balancer's port.",
    "mail_tls_load_balancer_chains": "How many different chains answered the probes of a load balancer's port (more "
                                     "than 1: its backends do not all serve the same chain).",
}


def _escape(value) -> str:
    """A label value as the text format wants it: backslash, double quote and line feed escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels) -> str:
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _timestamp(text: str) -> int:
    """A report time (2027-01-31T12:00:00Z) as a Unix time."""
    parsed = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return int(parsed.timestamp())


def _samples(document: dict) -> Iterator[tuple[str, str, int]]:
    """(family, labels, value) for every sample of the document."""
    yield "mail_tls_audit_timestamp_seconds", "", _timestamp(document["generated_at"])
    yield "mail_tls_audit_passed", "", int(bool(document["passed"]))
    for host in document["hosts"]:
        for endpoint in host["endpoints"]:
            where = {"host": host["name"], "endpoint": endpoint["name"], "service": endpoint["service"]}
            yield "mail_tls_endpoint_up", _labels(**where), int(bool(endpoint["reachable"]))
            for verdict in VERDICTS:
                yield ("mail_tls_endpoint_verdict", _labels(**where, verdict=verdict),
                       int(endpoint["verdict"] == verdict))
            if endpoint["expiry"]:
                yield ("mail_tls_endpoint_expiry_timestamp_seconds", _labels(**where),
                       _timestamp(endpoint["expiry"]["not_after"]))
            for position, cert in enumerate(endpoint["chain"]["presented"]):
                labels = _labels(**where, position=position, subject=cert["subject"], sha256=cert["sha256"])
                yield "mail_tls_certificate_expiry_timestamp_seconds", labels, _timestamp(cert["not_after"])
                yield "mail_tls_certificate_not_before_timestamp_seconds", labels, _timestamp(cert["not_before"])
            counted = Counter((f["code"], f["severity"], f["status"]) for f in endpoint["findings"])
            for (code, severity, status), count in sorted(counted.items()):
                yield ("mail_tls_endpoint_findings", _labels(**where, code=code, severity=severity, status=status),
                       count)
        for item in host["sampled"]:
            labels = _labels(host=host["name"], endpoint=item["endpoint"], port=item["port"],
                             key_type=item["key_type_requested"] or "")
            yield "mail_tls_load_balancer_probes", labels, item["probes"]
            yield "mail_tls_load_balancer_chains", labels, item["chains"]


def prometheus_text(document: dict) -> str:
    """The report as Prometheus text format: each family's HELP and TYPE, then its samples."""
    by_family: dict = {name: [] for name in FAMILIES}
    for family, labels, value in _samples(document):
        by_family[family].append(f"{family}{labels} {value}")
    lines = []
    for family, samples in by_family.items():
        lines += [f"# HELP {family} {FAMILIES[family]}", f"# TYPE {family} gauge", *samples]
    return "\n".join(lines) + "\n"
