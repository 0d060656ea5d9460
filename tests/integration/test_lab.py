# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab itself, tested with stdlib clients: every port speaks TLS with the lab chain, the front spreads
connections over every backend, one backend's chain can be swapped alone, and down() leaves nothing behind."""
from __future__ import annotations

import imaplib
import json
import poplib
import re
import smtplib
import ssl
import subprocess
import sys
from pathlib import Path

import lab as lablib
import pytest

NAME = "mail.example.test"
SERVICES = list(lablib.PORTS)
LAB_PY = Path(lablib.__file__)


class PinnedNameContext(ssl.SSLContext):
    """A verifying context that checks every server against NAME, whatever address the client dialled
    (smtplib, imaplib and poplib pass the address they connected to as server_hostname)."""

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):
        return super().wrap_socket(sock, *args, server_hostname=NAME, **kwargs)


@pytest.fixture(scope="module")
def context(lab) -> ssl.SSLContext:
    """Trusts the lab root only: the intermediate must come from the server."""
    verifying = PinnedNameContext(ssl.PROTOCOL_TLS_CLIENT)
    verifying.load_verify_locations(cafile=str(lab.root_file))
    return verifying


def tls_peer(address: str, service: str, context: ssl.SSLContext) -> tuple:
    """Complete TLS on a lab service with the stdlib client for its protocol; return (greeting, peer cert dict)."""
    port = lablib.PORTS[service]
    if service in ("smtp", "submission", "smtps"):
        client = (smtplib.SMTP(timeout=10) if service != "smtps"
                  else smtplib.SMTP_SSL(timeout=10, context=context))
        with client:
            _code, greeting = client.connect(address, port)
            if service != "smtps":
                client.starttls(context=context)
            return greeting, client.sock.getpeercert()
    if service == "lmtp":
        client = smtplib.LMTP(address, port, timeout=10)
        try:
            client.starttls(context=context)
            return b"", client.sock.getpeercert()
        finally:
            client.close()
    if service in ("imap", "imaps"):
        client = (imaplib.IMAP4(address, port, timeout=10) if service == "imap"
                  else imaplib.IMAP4_SSL(address, port, ssl_context=context, timeout=10))
        try:
            if service == "imap":
                client.starttls(ssl_context=context)
            return client.welcome, client.sock.getpeercert()
        finally:
            client.logout()
    if service in ("pop3", "pop3s"):
        client = (poplib.POP3(address, port, timeout=10) if service == "pop3"
                  else poplib.POP3_SSL(address, port, context=context, timeout=10))
        try:
            if service == "pop3":
                client.stls(context=context)
            return client.getwelcome(), client.sock.getpeercert()
        finally:
            client.quit()
    with lablib.tls_connect(address, service, context=context, server_hostname=NAME) as sock:  # ManageSieve
        return b"", sock.getpeercert()


def smtp_banner(address: str, port: int = 25) -> str:
    """The SMTP greeting line (names the backend host)."""
    with smtplib.SMTP(timeout=10) as client:
        _code, banner = client.connect(address, port)
        return banner.decode()


def banner_host(text) -> str:
    """mxN.example.test from a greeting."""
    found = re.search(rb"mx\d+\.example\.test", text if isinstance(text, bytes) else text.encode())
    return found.group(0).decode() if found else ""


def served_leaves(address: str, service: str, count: int) -> set:
    """Distinct leaf certificates (DER) seen over count connections."""
    return {lablib.served_leaf(address, service) for _connection in range(count)}


# ---------------------------------------------------------------------------------------------------------------
# Every service, every backend and the front


@pytest.mark.parametrize("service", SERVICES)
def test_backends_complete_tls_with_lab_chain(lab, context, service):
    for backend in lab.backends:
        _greeting, cert = tls_peer(backend.address, service, context)
        assert ("DNS", NAME) in cert["subjectAltName"], (backend.name, service)


@pytest.mark.parametrize("service", SERVICES)
def test_front_completes_tls_with_lab_chain(lab, context, service):
    for _turn in range(len(lab.backends)):
        _greeting, cert = tls_peer(lab.front_address, service, context)
        assert ("DNS", NAME) in cert["subjectAltName"], service


@pytest.mark.parametrize("service", ["smtps", "imap", "lmtp"])
def test_backends_serve_leaf_and_intermediate_without_root(lab, service):
    expected = [ssl.PEM_cert_to_DER_cert(p.decode()) for p in (lab.pki.leaf_pem, lab.pki.intermediate_pem)]
    for backend in lab.backends:
        assert lablib.served_chain(backend.address, service) == expected, backend.name


def test_backends_greet_with_their_own_host_name(lab, context):
    for backend in lab.backends:
        assert banner_host(smtp_banner(backend.address)) == backend.hostname
        assert banner_host(tls_peer(backend.address, "imaps", context)[0]) == backend.hostname
        assert banner_host(tls_peer(backend.address, "pop3", context)[0]) == backend.hostname


@pytest.mark.parametrize("service", ["smtp", "submission", "smtps", "imap", "imaps", "pop3", "pop3s"])
def test_front_round_robins_over_every_backend(lab, context, service):
    hosts = set()
    for _turn in range(2 * len(lab.backends)):
        if service in ("smtp", "submission"):
            hosts.add(banner_host(smtp_banner(lab.front_address, lab.ports[service])))
        else:
            hosts.add(banner_host(tls_peer(lab.front_address, service, context)[0]))
    assert hosts == {b.hostname for b in lab.backends}


def test_lab_listens_on_loopback_lab_addresses_only(lab):
    lab_pids = set(lab.processes())
    sockets = set()
    output = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if pids & lab_pids:
            sockets.add(line.split()[3])
    expected = {f"{address}:{port}" for address in lab.addresses for port in lab.ports.values()}
    assert sockets == expected


# ---------------------------------------------------------------------------------------------------------------
# Swapping one backend's chain


@pytest.fixture
def other_leaf(lab):
    """A second leaf for mail.example.test from the lab intermediate (so it verifies), with its chain."""
    leaf = lab.pki.intermediate.leaf(NAME, "swapped.example.test")
    yield leaf, leaf.pem + lab.pki.intermediate_pem
    lab.reset_chains()


def test_set_chain_changes_only_that_backend(lab, context, other_leaf):
    leaf, chain = other_leaf
    target = lab.backends[1]
    lab.set_chain(1, chain, leaf.key_pem())
    for backend in lab.backends:
        expected = leaf.der if backend is target else lab.pki.leaf.der
        for service in ("smtp", "smtps", "imap", "imaps", "pop3s", "sieve", "lmtp"):
            assert lablib.served_leaf(backend.address, service) == expected, (backend.name, service)
        _greeting, cert = tls_peer(backend.address, "submission", context)
        assert ("DNS", NAME) in cert["subjectAltName"]
    assert served_leaves(lab.front_address, "imaps", 2 * len(lab.backends)) == {leaf.der, lab.pki.leaf.der}
    lab.reset_chain(1)
    assert served_leaves(lab.front_address, "smtps", 2 * len(lab.backends)) == {lab.pki.leaf.der}


def test_set_chain_refuses_a_key_that_does_not_match(lab, other_leaf):
    _leaf, chain = other_leaf
    with pytest.raises(lablib.LabError, match="does not match"):
        lab.set_chain(0, chain, lab.pki.intermediate.key_pem())
    assert lablib.served_leaf(lab.backends[0].address, "smtps") == lab.pki.leaf.der


def test_cli_status_and_serve(lab, other_leaf, tmp_path):
    leaf, chain = other_leaf
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(leaf.key_pem())
    status = subprocess.run([sys.executable, str(LAB_PY), "status", "--dir", str(lab.dir)], capture_output=True,
                            text=True, check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["state"] == "up"
    serve = [sys.executable, str(LAB_PY), "serve", "--dir", str(lab.dir), "--backend", "3"]
    subprocess.run([*serve, "--chain", str(tmp_path / "chain.pem"), "--key", str(tmp_path / "key.pem")], check=True,
                   capture_output=True)
    assert lablib.served_leaf(lab.backends[2].address, "imaps") == leaf.der
    subprocess.run([*serve, "--reset"], check=True, capture_output=True)
    assert lablib.served_leaf(lab.backends[2].address, "imaps") == lab.pki.leaf.der


# ---------------------------------------------------------------------------------------------------------------
# A lab of its own for restart and teardown


def lo_addresses() -> str:
    return subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True,
                          check=True).stdout


def test_up_twice_restarts_and_down_leaves_nothing(lab, claim_lab_base):
    small = lablib.Lab(lab.dir / "small-lab", base=claim_lab_base(2))
    try:
        small.up(backends=2)
        root = small.root_file.read_bytes()
        before = set(small.processes())
        small.up(backends=2)  # already up: clean restart, same PKI
        assert small.root_file.read_bytes() == root
        assert not before & set(small.processes())
        assert lablib.served_leaf(small.front_address, "imaps") == small.pki.leaf.der
        pids = set(small.processes())
        assert len(pids) > 10
    finally:
        small.down()
    assert not [p for p in pids if lablib.proc_stat(p)]
    assert lablib.listeners(small.addresses) == []
    for address in small.addresses:
        assert not lablib.can_connect(address, 25)
        assert f" {address}/32 " not in lo_addresses()
    assert lablib.served_leaf(lab.front_address, "smtps") == lab.pki.leaf.der  # the session lab is untouched


def test_up_next_to_a_running_lab_fails_clearly_and_leaves_it_alone(lab):
    intruder = lablib.Lab(lab.dir / "intruder-lab", base=lab.front_address)
    with pytest.raises(lablib.LabError, match="already listening"):
        intruder.up(backends=1)
    intruder.down()
    assert f" {lab.front_address}/32 " in lo_addresses()
    assert lablib.served_leaf(lab.front_address, "pop3s") == lab.pki.leaf.der
