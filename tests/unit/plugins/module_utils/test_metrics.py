# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for metrics.py: the audit report as Prometheus text format (promtool checks it in tests/integration)."""
from __future__ import annotations

import datetime
import re
from dataclasses import replace

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement, loaded_certificates
from ansible_collections.mailops.tls.plugins.module_utils.certs import not_after, not_before
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import compare, endpoint_results, judge
from ansible_collections.mailops.tls.plugins.module_utils.metrics import FAMILIES, prometheus_text
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, ProbeResult
from ansible_collections.mailops.tls.plugins.module_utils.report import build_report

NAME = "mail.example.test"
WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
# name{labels} value, labels as name="value" with \\, \" and \n escaped
SAMPLE = re.compile(r'^([a-z_]+)(?:\{((?:[a-z_][a-z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (-?\d+)$')
LABEL = re.compile(r'([a-z_][a-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> list:
    """(family, labels, value) of each sample; asserts HELP and TYPE precede each family's samples."""
    samples, declared = [], []
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            declared.append(line.split()[2])
        elif line.startswith("# TYPE "):
            assert line.split()[2:] == [declared[-1], "gauge"]
        else:
            match = SAMPLE.match(line)
            assert match, line
            assert match.group(1) == declared[-1]
            labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                      for k, v in LABEL.findall(match.group(2) or "")}
            samples.append((match.group(1), labels, int(match.group(3))))
    assert declared == list(FAMILIES)
    return samples


@pytest.fixture(scope="module")
def company() -> pki.Hierarchy:
    # a subject with a quote and a backslash: label values must escape them
    return pki.hierarchy(NAME, common_name='mail "primary" \\ example')


def host(judgement, name: str, address: str, ders=(), error: str = "") -> dict:
    endpoints = [Endpoint(address=address, port=port, server_name=NAME, label=name) for port in (25, 993)]
    results = [ProbeResult(e, False, error_code=error, error_message=f"{e}: {error}") if error else
               ProbeResult(e, True, tuple(ders), "TLSv1.3", "TLS_AES_256_GCM_SHA384") for e in endpoints]
    return {"name": name, "address": address,
            "result": endpoint_results(compare([judge(result, judgement) for result in results]))}


@pytest.fixture(scope="module")
def samples(company) -> list:
    judgement = Judgement(roots=loaded_certificates([company.root.der], "roots"))
    good = [company.leaf.der, company.intermediates[0].der]
    hosts = [host(judgement, "mx1", "192.0.2.11", good), host(judgement, "mx2", "192.0.2.12", good[:1]),
             host(judgement, "mx3", "192.0.2.13", error="connect_refused")]
    return parse(prometheus_text(build_report(hosts, generated_at=WHEN)))


def values(samples, family: str, **wanted) -> list:
    return [value for name, labels, value in samples
            if name == family and all(labels.get(k) == v for k, v in wanted.items())]


def test_audit_time_and_result(samples):
    assert values(samples, "mail_tls_audit_timestamp_seconds") == [int(WHEN.timestamp())]
    assert values(samples, "mail_tls_audit_passed") == [0]


def test_verdicts_are_a_state_set_per_endpoint(samples):
    for host_name, verdict in (("mx1", "pass"), ("mx2", "fail"), ("mx3", "fail")):
        for service in ("smtp", "imaps"):
            where = {"host": host_name, "service": service}
            assert values(samples, "mail_tls_endpoint_verdict", **where, verdict=verdict) == [1]
            assert sum(values(samples, "mail_tls_endpoint_verdict", **where)) == 1
            assert values(samples, "mail_tls_endpoint_up", **where) == [int(host_name != "mx3")]
    assert any(labels["endpoint"] == "192.0.2.11:25 (mx1) smtp" for _n, labels, _v in samples if labels)


def test_expiry_timestamps_per_endpoint_and_certificate(company, samples):
    leaf_end = int(not_after(company.leaf.cert).timestamp())
    inter_end = int(not_after(company.intermediates[0].cert).timestamp())
    subject = company.leaf.cert.subject.rfc4514_string()
    assert '\\"' in subject or '"' in subject
    mine = values(samples, "mail_tls_certificate_expiry_timestamp_seconds", host="mx1", service="smtp")
    assert mine == [leaf_end, inter_end]
    assert values(samples, "mail_tls_certificate_expiry_timestamp_seconds", host="mx1", service="smtp", position="0",
                  subject=subject) == [leaf_end]
    assert values(samples, "mail_tls_certificate_not_before_timestamp_seconds", host="mx1", service="smtp",
                  position="0") == [int(not_before(company.leaf.cert).timestamp())]
    # the endpoint's first expiry includes the root
    assert values(samples, "mail_tls_endpoint_expiry_timestamp_seconds", host="mx1", service="smtp") == [
        min(leaf_end, inter_end, int(not_after(company.root.cert).timestamp()))]
    assert values(samples, "mail_tls_endpoint_expiry_timestamp_seconds", host="mx3") == []


def test_findings_per_code_and_status(samples):
    counted = {(labels["host"], labels["service"], labels["code"], labels["status"]): value
               for name, labels, value in samples if name == "mail_tls_endpoint_findings"}
    assert counted[("mx2", "smtp", "missing_intermediate", "violation")] == 1
    assert counted[("mx3", "imaps", "connect_refused", "violation")] == 1
    assert not any(key[0] == "mx1" for key in counted)


def test_a_load_balancer_port_has_its_probes_and_the_chains_behind_it(company):
    """Six probes of the balancer's imaps port, every third answered by a backend without the intermediate."""
    judgement = Judgement(roots=loaded_certificates([company.root.der], "roots"))
    good = (company.leaf.der, company.intermediates[0].der)
    endpoint = Endpoint(address="192.0.2.10", port=993, server_name=NAME, label="front")
    results = [replace(ProbeResult(endpoint, True, good if number % 3 else good[:1], "TLSv1.3",
                                   "TLS_AES_256_GCM_SHA384"), sample=number) for number in range(1, 7)]
    hosts = [{"name": "front", "address": "192.0.2.10",
              "result": endpoint_results(compare([judge(result, judgement) for result in results]))}]
    balancer = parse(prometheus_text(build_report(hosts, generated_at=WHEN)))
    where = {"host": "front", "endpoint": "192.0.2.10:993 (front)", "port": "993", "key_type": ""}
    assert [(name, labels) for name, labels, _value in balancer if name.startswith("mail_tls_load_balancer")] == [
        ("mail_tls_load_balancer_probes", where), ("mail_tls_load_balancer_chains", where)]
    assert values(balancer, "mail_tls_load_balancer_probes") == [6]
    assert values(balancer, "mail_tls_load_balancer_chains") == [2]


def test_hosts_that_are_not_load_balancers_have_no_sampling_samples(samples):
    assert not [name for name, _labels, _value in samples if name.startswith("mail_tls_load_balancer")]
