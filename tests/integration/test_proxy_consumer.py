# SPDX-License-Identifier: GPL-3.0-or-later
"""The probe's PROXY protocol headers (v1 and v2) read by a real consumer: HAProxy with accept-proxy in front of a
TLS server. HAProxy must accept each header, pass the connection on (the probe sees the chain) and log the client
and destination addresses the header carries. Listens on 127.0.70.1 only."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pki
import pytest
from unit.hostile_server import Behaviour, HostileServer, server_context

from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, probe

HAPROXY = shutil.which("haproxy")
pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (tests/lab/install.sh installs it)")
FRONT = "127.0.70.1"
NAME = "mail.example.test"
CONFIG = """
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    timeout connect 3s
    timeout client 5s
    timeout server 5s
frontend proxied
    bind {front}:{port} accept-proxy
    log-format "proxied client=%ci:%cp destination=%fi:%fp"
    default_backend tls
backend tls
    server backend 127.0.0.1:{backend}
"""


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def company() -> pki.Hierarchy:
    return pki.hierarchy(NAME, depth=1)


@pytest.fixture()
def haproxy(tmp_path: Path, company):
    """HAProxy accepting PROXY headers on FRONT, in front of a healthy implicit-TLS server; yields (port, log)."""
    with HostileServer(server_context(company.served_chain), Behaviour("tls")) as backend:
        port = _free_port(FRONT)
        config = tmp_path / "haproxy.cfg"
        config.write_text(CONFIG.format(front=FRONT, port=port, backend=backend.port))
        log = tmp_path / "haproxy.log"
        with log.open("w") as output:
            process = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_listening(FRONT, port, process)
            yield port, log
        finally:
            process.terminate()
            process.wait(10)


def _wait_listening(host: str, port: int, process: subprocess.Popen) -> None:
    for _attempt in range(100):
        if process.poll() is not None:
            raise AssertionError(f"haproxy exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("haproxy did not listen within 5 s")


def _logged(log: Path, count: int) -> list:
    for _attempt in range(100):
        lines = [line for line in log.read_text().splitlines() if line.startswith("proxied ")]
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    return lines


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_haproxy_accepts_the_header_and_reads_its_addresses(haproxy, company, version):
    port, log = haproxy
    result = probe(Endpoint(FRONT, port, "tls", server_name=NAME, proxy_protocol=version), 5.0)
    assert result.ok, result.error_message
    assert list(result.chain_der) == [issued.der for issued in company.served_chain]
    [line] = _logged(log, 1)
    client, destination = (part.split("=", 1)[1] for part in line.split()[1:3])
    assert destination == f"{FRONT}:{port}"
    address, _colon, source_port = client.rpartition(":")
    assert address.startswith("127.") and 0 < int(source_port) < 65536


def test_haproxy_drops_a_connection_without_a_header(haproxy):
    port, log = haproxy
    result = probe(Endpoint(FRONT, port, "tls", server_name=NAME), 5.0)
    assert not result.ok and result.error_code == "tls_handshake_failed", result
    assert _logged(log, 1) == []
