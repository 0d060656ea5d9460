# SPDX-License-Identifier: GPL-3.0-or-later
"""Dual-stack names against the lab's real Postfix and Dovecot: an IPv6 address ([::1], relayed to one backend)
and an IPv4 backend under one name, probed address by address (every_address) or first-that-answers.

Names resolve through a table (the probe's resolver seam): no resolver on this machine knows a name with ::1 and a
lab address. The relay only forwards bytes; every dialogue and handshake is the real server's."""
from __future__ import annotations

import contextlib
import socket
import threading

import pytest
from test_endpoints_lab import BROKEN, NAME, TIMEOUT, lab_judgement, serving
from unit.hostile_server import has_ipv6_loopback, resolver_table

from ansible_collections.mailops.tls.plugins.module_utils.endpoints import compare, judge
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, probe_many

DUAL = "dual.example.test"


@contextlib.contextmanager
def relay(port: int, target: tuple):
    """[::1]:port forwards every connection to target (address, port) until the block ends."""
    try:
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("::1", port))
    except OSError as exc:
        pytest.fail(f"cannot listen on [::1]:{port} for the relay: {exc}")
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _peer = listener.accept()
            except socket.timeout:
                continue
            upstream = socket.create_connection(target, timeout=TIMEOUT)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(source, sink), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        listener.close()


@pytest.fixture(scope="module")
def ipv6():
    if not has_ipv6_loopback():
        pytest.skip("this machine has no ::1")


def test_every_address_of_a_dual_stack_name_is_probed_and_compared(lab, ipv6):
    port = lab.ports["imaps"]
    good, broken = lab.backends[0], lab.backends[BROKEN]
    with serving(lab, BROKEN, [lab.pki.leaf], lab.pki.leaf), relay(port, (broken.address, port)):
        results = probe_many([Endpoint(DUAL, port, "imaps", server_name=NAME, every_address=True)], TIMEOUT, 4,
                             resolver=resolver_table({DUAL: ["::1", good.address]}))
        reports = compare([judge(result, lab_judgement(lab)) for result in results])
    assert [(r.probe.endpoint.address, r.probe.peer_address, r.probe.endpoint.sni) for r in reports] == [
        ("::1", "::1", NAME), (good.address, good.address, NAME)]
    v6, v4 = (sorted(f.code for f in report.findings) for report in reports)
    assert v4 == [] and v6 == ["backend_mismatch", "missing_intermediate"]  # the IPv6 path reaches the broken one


def test_a_dual_stack_name_falls_back_from_ipv6_to_ipv4_on_real_postfix(lab, ipv6):
    port = lab.ports["submission"]  # nothing listens on [::1] at this port
    backend = lab.backends[0]
    [result] = probe_many([Endpoint(DUAL, port, "smtp", server_name=NAME)], TIMEOUT, 1,
                          resolver=resolver_table({DUAL: ["::1", backend.address]}))
    assert result.ok, result.error_message
    assert result.peer_address == backend.address
    assert judge(result, lab_judgement(lab)).findings == ()
