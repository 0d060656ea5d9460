# SPDX-License-Identifier: GPL-3.0-or-later
"""Names with several addresses: lookup within the deadline, fallback to the next address, every address as an
endpoint of its own (dual stack on ::1 and 127.0.0.1), and the address that answered in every result.

The machine's resolver knows no name with an IPv6 and an IPv4 loopback address, so names are looked up in a
table here, through the probe's resolver seam; the servers, connections and handshakes are real."""
from __future__ import annotations

import contextlib
import json
import threading

import pki
import pytest
import report_schema
from unit.hostile_server import (
    Behaviour,
    HostileServer,
    free_port,
    has_ipv6_loopback,
    resolver_table,
    server_context,
)

from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import compare, endpoint_results, judge
from ansible_collections.mailops.tls.plugins.module_utils.load import load_bytes
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, probe, probe_many
from ansible_collections.mailops.tls.plugins.module_utils.report import build_report, hosts_from_reports, html_page

TIMEOUT = 5.0
SHORT = 0.6
MARGIN = 0.5
NAME = "mail.example.test"


@pytest.fixture(scope="module")
def ipv6():
    if not has_ipv6_loopback():
        pytest.skip("this machine has no ::1")
    return "::1"


@pytest.fixture(scope="module")
def pkis():
    return {"v4": pki.hierarchy(NAME), "v6": pki.hierarchy(NAME)}


@pytest.fixture
def dual(ipv6, pkis):
    """One SMTP port on ::1 and on 127.0.0.1, each address serving its own chain: (port, servers by family)."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        servers = {family: stack.enter_context(HostileServer(server_context(pkis[family].served_chain),
                                                             Behaviour("smtp"), address, port))
                   for family, address in (("v6", ipv6), ("v4", "127.0.0.1"))}
        yield port, servers


def ders(hierarchy) -> tuple:
    return tuple(issued.der for issued in hierarchy.served_chain)


def test_a_name_falls_back_to_the_next_address_and_records_the_one_that_answered(ipv6, pkis):
    port = free_port()
    with HostileServer(server_context(pkis["v6"].served_chain), Behaviour("smtp"), ipv6, port):
        resolver = resolver_table({NAME: ["127.0.0.1", ipv6]})  # nothing listens on the first address
        result = probe(Endpoint(NAME, port, "smtp"), TIMEOUT, resolver=resolver)
    assert result.ok, result.error_message
    assert (result.peer_address, result.chain_der) == (ipv6, ders(pkis["v6"]))


def test_without_every_address_a_dual_stack_name_is_one_probe_of_its_first_address(dual, pkis, ipv6):
    port, _servers = dual
    resolver = resolver_table({NAME: [ipv6, "127.0.0.1"]})
    results = probe_many([Endpoint(NAME, port, "smtp")], TIMEOUT, 2, resolver=resolver)
    assert [(r.endpoint.address, r.peer_address, r.chain_der) for r in results] == [(NAME, ipv6, ders(pkis["v6"]))]


def test_every_address_probes_each_address_of_the_name_under_the_name(dual, pkis, ipv6):
    port, _servers = dual
    resolver = resolver_table({NAME: [ipv6, "127.0.0.1"]})
    results = probe_many([Endpoint(NAME, port, "smtp", label="mx", every_address=True)], TIMEOUT, 2,
                         key_types=("ecdsa",), resolver=resolver)
    assert [(r.endpoint.address, r.endpoint.server_name, r.endpoint.sni, r.endpoint.label, r.endpoint.key_type,
             r.peer_address, r.chain_der) for r in results] == [
        (ipv6, NAME, NAME, "mx", "ecdsa", ipv6, ders(pkis["v6"])),
        ("127.0.0.1", NAME, NAME, "mx", "ecdsa", "127.0.0.1", ders(pkis["v4"]))]
    # The two families serve different chains for one name: the comparison of backends flags the second (in a
    # tie the first listed is the reference).
    judgement = Judgement(roots=load_bytes(pki.pem_bundle(pkis["v4"].root, pkis["v6"].root), "roots.pem"))
    reports = compare([judge(result, judgement) for result in results])
    assert [[f.code for f in report.findings] for report in reports] == [[], ["backend_mismatch"]]
    assert [report.as_dict()["peer_address"] for report in reports] == [ipv6, "127.0.0.1"]


def test_every_address_of_a_name_that_does_not_resolve_is_one_failure_per_key_type():
    results = probe_many([Endpoint("gone.example.test", 25, every_address=True)], SHORT, 2,
                         key_types=("rsa", "ecdsa"), resolver=resolver_table({}))
    assert [(r.endpoint.key_type, r.error_code, r.peer_address) for r in results] == [
        ("rsa", "connect_failed", None), ("ecdsa", "connect_failed", None)]
    assert "cannot resolve gone.example.test" in results[0].error_message


@pytest.mark.parametrize("every_address", [False, True])
def test_a_name_lookup_that_never_answers_ends_at_the_deadline(every_address):
    stalled = threading.Event()

    def silent(host: str, port: int) -> list:  # a resolver whose DNS server drops every query
        stalled.wait(30)
        return []

    try:
        results = probe_many([Endpoint("slow.example.test", 25, every_address=every_address)], SHORT, 1,
                             resolver=silent)
    finally:
        stalled.set()
    [result] = results
    assert (result.error_code, result.peer_address) == ("connect_timeout", None)
    assert "the name lookup of slow.example.test did not finish within the 0.6 s deadline" in result.error_message
    assert result.seconds < SHORT + MARGIN


def test_the_address_that_answered_is_kept_when_the_dialogue_fails(ipv6):
    with HostileServer(None, Behaviour("smtp", starttls="rejected"), ipv6) as server:
        result = probe(Endpoint(NAME, server.port, "smtp"), TIMEOUT, resolver=resolver_table({NAME: [ipv6]}))
    assert (result.error_code, result.peer_address) == ("starttls_rejected", ipv6)


def test_an_address_that_refuses_answers_nothing():
    result = probe(Endpoint("127.0.0.1", free_port(), "smtp"), SHORT)
    assert (result.error_code, result.peer_address) == ("connect_refused", None)


def test_reports_say_which_address_of_a_name_answered(dual, ipv6):
    port, _servers = dual
    judgement = Judgement()  # no trust anchor: a finding, so the endpoint is also listed below the matrix
    results = probe_many([Endpoint(NAME, port, "smtp", label="mx")], TIMEOUT, 1,
                         resolver=resolver_table({NAME: [ipv6, "127.0.0.1"]}))
    host = {"name": "mx", "address": NAME, "result": endpoint_results(compare([judge(r, judgement) for r in results]))}
    document = build_report([host])
    assert report_schema.errors(document, report_schema.load_schema()) == []
    [endpoint] = document["hosts"][0]["endpoints"]
    assert (endpoint["address"], endpoint["peer_address"]) == (NAME, ipv6)
    page = html_page(document)
    assert f'<div class="small">{NAME} @ {ipv6}</div>' in page  # its cell of the matrix
    assert f'<span class="mono">{NAME}:{port} via {ipv6}</span>' in page  # its findings
    merged = build_report(hosts_from_reports([("slice.json", json.loads(json.dumps(document)))]))
    assert merged["hosts"][0]["endpoints"][0]["peer_address"] == ipv6


@pytest.mark.parametrize("every_address", [False, True])
def test_an_ip_address_with_an_unknown_zone_is_connect_failed(every_address):
    [result] = probe_many([Endpoint("fe80::1%no-such-interface", 25, every_address=every_address)], SHORT, 1)
    assert (result.error_code, result.peer_address) == ("connect_failed", None)
    assert "cannot resolve fe80::1%no-such-interface" in result.error_message
