# SPDX-License-Identifier: GPL-3.0-or-later
"""probe_and_judge against the real lab: every port of every backend and of the front, and one backend broken
(no intermediate, or a certificate for another name) found, named, and set apart by backend_mismatch."""
from __future__ import annotations

import contextlib
import time

import lab as lablib
import pytest

from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement
from ansible_collections.mailops.tls.plugins.module_utils.certs import sha256_hex
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import probe_and_judge
from ansible_collections.mailops.tls.plugins.module_utils.load import load_bytes
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint

NAME = "mail.example.test"
TIMEOUT = 5.0
CONCURRENCY = 16
BROKEN = 1  # the backend the breaking tests change: mx2, neither the first listed nor the last
PROTOCOLS = {25: "smtp", 587: "smtp", 465: "smtps", 143: "imap", 993: "imaps", 110: "pop3", 995: "pop3s",
             4190: "sieve", 24: "lmtp"}


def lab_endpoints(lab, *, backends=True, front=True) -> list:
    """Every lab port of every backend (labelled mxN) and of the front, in that order, for NAME; the protocol
    is left to the port's default."""
    targets = [(b.address, b.name) for b in lab.backends] if backends else []
    targets += [(lab.front_address, "front")] if front else []
    return [Endpoint(address, port, server_name=NAME, label=label) for address, label in targets
            for port in lab.ports.values()]


def lab_judgement(lab) -> Judgement:
    """Trusts the lab root only: the intermediate must come from the server."""
    return Judgement(roots=load_bytes(lab.pki.root_pem, str(lab.root_file)))


def default_chain(lab) -> list:
    return [lab.pki.leaf.der, lab.pki.intermediate.der]


def wait_for_chain(lab, backend, chain_der: list, timeout: float = 15) -> None:
    """Until every service of backend sends exactly chain_der twice in a row.

    lab.set_chain waits for the new leaf only: a chain that keeps the leaf and drops the intermediate (or gets
    it back) would otherwise race the reload.
    """
    deadline = time.monotonic() + timeout
    for service in lab.ports:
        seen = 0
        while seen < 2:
            try:
                seen = seen + 1 if lablib.served_chain(backend.address, service, timeout=2) == chain_der else 0
            except (OSError, lablib.LabError):
                seen = 0
            if seen == 0:
                assert time.monotonic() < deadline, f"{backend.name} {service} does not serve the chain yet"
                time.sleep(0.05)


@contextlib.contextmanager
def serving(lab, index: int, chain: list, key):
    """Backend index serves chain (pki.Issued, leaf first) with key (its pki.Issued) while the block runs."""
    backend = lab.backends[index]
    lab.set_chain(index, b"".join(issued.pem for issued in chain), key.key_pem())
    try:
        wait_for_chain(lab, backend, [issued.der for issued in chain])
        yield backend
    finally:
        lab.reset_chain(index)
        wait_for_chain(lab, backend, default_chain(lab))


@pytest.fixture(params=["leaf_only", "other_name"])
def broken(lab, request):
    """(kind, backend, leaf DER) with backend mx2 serving a chain without its intermediate, or one for another
    name, until the test ends."""
    if request.param == "leaf_only":
        leaf, chain = lab.pki.leaf, [lab.pki.leaf]
    else:
        leaf = lab.pki.intermediate.leaf("other.example.test")
        chain = [leaf, lab.pki.intermediate]
    with serving(lab, BROKEN, chain, leaf) as backend:
        yield request.param, backend, [issued.der for issued in chain]


def codes(report) -> list:
    return sorted(f.code for f in report.findings)


def test_every_port_of_every_backend_and_of_the_front_serves_the_lab_chain(lab):
    endpoints = lab_endpoints(lab)
    assert len(endpoints) == 9 * (len(lab.backends) + 1)
    started = time.monotonic()
    reports = probe_and_judge(endpoints, lab_judgement(lab), TIMEOUT, CONCURRENCY)
    elapsed = time.monotonic() - started
    assert [report.probe.endpoint for report in reports] == endpoints
    for report in reports:
        entry = report.as_dict()
        assert report.probe.ok, report.probe.error_message
        assert list(report.probe.chain_der) == default_chain(lab), report.name
        assert report.findings == (), (report.name, [f.message for f in report.findings])
        assert (entry["protocol"], entry["sni"]) == (PROTOCOLS[entry["port"]], NAME)
        assert entry["trusted"] and entry["complete"] and entry["ordered"], report.name
        assert entry["root"]["fingerprints"]["sha256"] == sha256_hex(lab.pki.root.der)
        assert [(n["name"], n["matches"]) for n in entry["names"]] == [(NAME, True)]
    assert elapsed < TIMEOUT  # concurrent: 36 handshakes, not 36 deadlines


def test_a_broken_backend_is_found_and_named_on_every_port_with_backend_mismatch(lab, broken):
    kind, backend, broken_chain = broken
    endpoints = lab_endpoints(lab)
    reports = probe_and_judge(endpoints, lab_judgement(lab), TIMEOUT, CONCURRENCY)
    assert all(report.probe.ok for report in reports), [r.probe.error_message for r in reports if not r.probe.ok]
    problem = {"leaf_only": "missing_intermediate", "other_name": "name_mismatch"}[kind]
    for report in reports:
        endpoint = report.probe.endpoint
        if endpoint.label == backend.name:
            assert list(report.probe.chain_der) == broken_chain
            assert codes(report) == sorted([problem, "backend_mismatch"]), report.name
            mismatch = next(f for f in report.findings if f.code == "backend_mismatch")
            assert mismatch.message.startswith(f"{endpoint} presents another chain than the other backends "
                                               f"answering for {NAME}: "), mismatch.message
            assert f"from {endpoint}" in mismatch.message  # the front may be named beside it, when it chose mx2
            assert mismatch.message.endswith("; deploy the same chain everywhere")
            assert ", ".join(f"{b.address}:{endpoint.port} ({b.name})" for b in lab.backends
                             if b is not backend) in mismatch.message
        elif endpoint.label == "front":  # HAProxy chose some backend; front ports may differ from one another
            assert list(report.probe.chain_der) in (broken_chain, default_chain(lab))
            expected = {problem, "backend_mismatch"} if list(report.probe.chain_der) == broken_chain else set()
            assert expected <= set(codes(report)) <= expected | {"service_mismatch"}, report.name
        else:
            assert list(report.probe.chain_der) == default_chain(lab), report.name
            assert codes(report) == [], (report.name, [f.message for f in report.findings])
    for report in reports:
        if report.probe.endpoint.label == backend.name:
            found = next(f for f in report.findings if f.code == problem)
            if kind == "leaf_only":  # named by the certificate that lacks its issuer, as sent by that port
                assert f"(certificate 1 of the chain sent by {report.probe.endpoint})" in found.message
            else:
                assert "'CN=other.example.test,O=mailops test' is not valid for mail.example.test" in found.message


def test_probing_the_front_repeatedly_sees_the_broken_backend_too(lab, broken):
    _kind, backend, broken_chain = broken
    front = [Endpoint(lab.front_address, port, server_name=NAME, label="front") for port in (25, 993)]
    endpoints = [endpoint for endpoint in front for _probe in range(6)]
    reports = probe_and_judge(endpoints, lab_judgement(lab), TIMEOUT, CONCURRENCY)
    assert all(report.probe.ok for report in reports), [r.probe.error_message for r in reports if not r.probe.ok]
    for endpoint in front:
        probes = [r for r in reports if r.probe.endpoint == endpoint]
        from_broken = [r for r in probes if list(r.probe.chain_der) == broken_chain]
        # Round robin over 3 backends: 2 of 6 connections reach mx2.
        assert len(from_broken) == 6 // len(lab.backends), f"{endpoint}: {backend.name} not reached twice"
        for report in probes:
            from_mx2 = list(report.probe.chain_der) == broken_chain
            assert ("backend_mismatch" in codes(report)) is from_mx2, report.name
            assert "service_mismatch" not in codes(report)  # one service's own mix is a backend matter
