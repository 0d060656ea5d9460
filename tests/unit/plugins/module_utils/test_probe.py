# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for probe.py: real probes of real loopback servers, healthy and hostile, with both handshake backends."""
from __future__ import annotations

import contextlib
import re
import shutil
import ssl
import subprocess
import tempfile
import time

import pki
import pytest

# tests/ is on sys.path (tests/conftest.py's folder), so tests/unit/hostile_server.py is unit.hostile_server.
from unit.hostile_server import Behaviour, HostileServer, free_port, full_backlog, has_ipv6_loopback, server_context

from ansible_collections.mailops.tls.plugins.module_utils import probe as probe_module
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, probe, probe_many

TIMEOUT = 5.0  # for probes that should succeed: generous, they take milliseconds
HOSTILE_TIMEOUT = 0.6  # for probes that should fail: every second here is a second of test time
MARGIN = 0.5  # what a failing probe may take beyond its deadline


def deadline_for(code: str) -> float:
    """Short deadlines where the test waits them out; elsewhere room for a slow openssl start on a busy machine."""
    return HOSTILE_TIMEOUT if code in ("timeout", "connect_timeout") else TIMEOUT


def with_backend(backend: str, *values):
    """A pytest.param of backend and values, skipped where this machine lacks that backend."""
    missing = {"ssl": not probe_module.CHAIN_CAPTURE, "openssl": shutil.which("openssl") is None}[backend]
    return pytest.param(backend, *values, id=backend,
                        marks=pytest.mark.skipif(missing, reason=f"no {backend} handshake backend here"))


BACKENDS = [with_backend("ssl"), with_backend("openssl")]

HEALTHY = {
    "smtp": Behaviour("smtp"), "lmtp": Behaviour("lmtp"), "imap": Behaviour("imap"),
    "imap-greeting-capabilities": Behaviour("imap", capabilities_in_greeting=True), "pop3": Behaviour("pop3"),
    "sieve": Behaviour("sieve"), "implicit-tls": Behaviour("tls"),
}

# id: (behaviour, the server's TLS context, error code, words in the message)
HOSTILE = {
    "never-answers": (Behaviour("smtp", greeting="silent"), "good", "timeout", "waiting for the SMTP greeting"),
    "never-answers-implicit": (Behaviour("tls", greeting="silent"), "good", "timeout", "TLS handshake"),
    "closes-at-once": (Behaviour("smtp", greeting="close"), "good", "protocol_error", "closed the connection"),
    "closes-at-once-implicit": (Behaviour("tls", greeting="close"), "good", "tls_handshake_failed",
                                "connection ended during the TLS handshake"),
    "endless-greeting": (Behaviour("smtp", greeting="endless"), "good", "protocol_error", "more than 200 lines"),
    # A byte every 0.2 s never trips a per-read timeout of 0.6 s: only a deadline ends these two.
    "drips-greeting": (Behaviour("smtp", greeting="drip", drip_interval=0.2), "good", "timeout",
                       "waiting for the SMTP greeting"),
    "refuses-starttls": (Behaviour("smtp", starttls="rejected"), "good", "starttls_rejected", "454 4.7.0"),
    "no-starttls": (Behaviour("imap", starttls="not_offered"), "good", "starttls_not_offered",
                    "does not offer STARTTLS"),
    "plaintext-after-starttls": (Behaviour("smtp", starttls="plaintext"), "good", "tls_handshake_failed",
                                 "answer is not TLS"),
    "garbage-starttls-reply": (Behaviour("pop3", starttls="garbage_reply"), "good", "protocol_error",
                               "no TLS today"),
    "tls-alert": (Behaviour("smtp"), "alert", "tls_handshake_failed", "ALERT_HANDSHAKE_FAILURE"),
    "drips-handshake": (Behaviour("tls", handshake="drip", drip_interval=0.2), "good", "timeout", "TLS handshake"),
    "wants-proxy-header": (Behaviour("smtp", proxy="v1"), "good", "timeout", "waiting for the SMTP greeting"),
}
# The cases that reach the handshake, where the backends differ.
HANDSHAKE_CASES = ("never-answers-implicit", "closes-at-once-implicit", "plaintext-after-starttls", "tls-alert",
                   "drips-handshake")


@pytest.fixture(scope="module")
def ecdsa_pki():
    return pki.hierarchy(depth=2)


@pytest.fixture(scope="module")
def rsa_pki():
    return pki.hierarchy(key_type="rsa")


@pytest.fixture(scope="module")
def contexts(ecdsa_pki):
    return {"good": server_context(ecdsa_pki.served_chain), "alert": server_context(ecdsa_pki.served_chain, alert=True)}


@pytest.fixture
def serve():
    """Start servers that stop when the test ends: serve(context, behaviour, host) -> HostileServer."""
    with contextlib.ExitStack() as stack:
        yield lambda context, behaviour, host="127.0.0.1": stack.enter_context(HostileServer(context, behaviour, host))


@pytest.fixture(scope="module")
def ipv6():
    """::1, or a skip on a machine without it."""
    if not has_ipv6_loopback():
        pytest.skip("this machine has no ::1")
    return "::1"


def ders(hierarchy) -> tuple:
    return tuple(issued.der for issued in hierarchy.served_chain)


def assert_failed(result, code: str, words: str, timeout: float) -> None:
    assert code in probe_module.ERROR_CODES
    assert (result.ok, result.error_code) == (False, code), result.error_message
    assert result.error_message.startswith(f"{result.endpoint}: "), result.error_message
    assert words in result.error_message
    assert result.chain_der == () and result.tls_version is None
    assert result.seconds < timeout + MARGIN


# Healthy servers

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("behaviour", HEALTHY.values(), ids=HEALTHY.keys())
def test_every_dialect_returns_the_chain_exactly_as_sent(serve, contexts, ecdsa_pki, behaviour, backend):
    server = serve(contexts["good"], behaviour)
    result = probe(Endpoint("127.0.0.1", server.port, behaviour.protocol), TIMEOUT, backend=backend)
    assert result.ok, result.error_message
    assert result.chain_der == ders(ecdsa_pki)  # leaf, intermediate 2, intermediate 1: order included
    assert (result.error_code, result.error_message) == (None, None)
    assert result.tls_version == "TLSv1.3" and result.cipher.startswith("TLS_")
    assert result.key_type == "ecdsa"
    assert 0 < result.seconds < TIMEOUT


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_chain_of_100_certificates_comes_back_whole(serve, backend):
    long = pki.hierarchy(depth=99)
    server = serve(server_context(long.served_chain), Behaviour("smtp"))
    result = probe(Endpoint("127.0.0.1", server.port, "smtp"), TIMEOUT, backend=backend)
    assert result.ok, result.error_message
    assert len(result.chain_der) == 100 and result.chain_der == ders(long)


def test_slow_greeting_like_postscreen_still_succeeds(serve, contexts, ecdsa_pki):
    server = serve(contexts["good"], Behaviour("smtp", greeting="slow"))
    result = probe(Endpoint("127.0.0.1", server.port, "smtp"), TIMEOUT)
    assert result.ok, result.error_message
    assert result.chain_der == ders(ecdsa_pki)
    assert result.seconds >= 2


def test_protocol_defaults_to_the_ports_usual_one():
    assert [Endpoint("mx", port).dialect for port in (25, 465, 993, 4190, 8443)] == [
        "smtp", "smtps", "imaps", "sieve", "tls"]
    assert Endpoint("mx", 25, "tls").dialect == "tls"


# Hostile servers

@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_server_yields_its_error_code_within_the_deadline(serve, contexts, case):
    behaviour, context, code, words = case
    server = serve(contexts[context], behaviour)
    started = time.monotonic()
    result = probe(Endpoint("127.0.0.1", server.port, behaviour.protocol, label="hostile"), deadline_for(code))
    assert time.monotonic() - started < deadline_for(code) + MARGIN
    assert_failed(result, code, words, deadline_for(code))
    assert result.error_message.startswith(f"127.0.0.1:{server.port} (hostile): ")


@pytest.mark.parametrize("case", [HOSTILE[name] for name in HANDSHAKE_CASES], ids=HANDSHAKE_CASES)
def test_hostile_handshake_through_openssl_yields_the_same_code(serve, contexts, case):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    behaviour, context, code, words = case
    server = serve(contexts[context], behaviour)
    result = probe(Endpoint("127.0.0.1", server.port, behaviour.protocol), deadline_for(code), backend="openssl")
    assert_failed(result, code, words, deadline_for(code))


S_CLIENT_EOF = ("40A7CB06BC7F0000:error:0A000126:SSL routines:ssl3_read_n:unexpected eof while reading:"
                "../ssl/record/rec_layer_s3.c:318:\n")


@pytest.mark.parametrize(("ends", "code", "words"), [
    ("at the deadline", "timeout", "during the TLS handshake (openssl s_client)"),
    ("before the deadline", "tls_handshake_failed", "connection ended during the TLS handshake"),
], ids=["at-deadline", "before-deadline"])
def test_openssl_eof_is_a_timeout_only_when_the_deadline_ended_it(serve, contexts, monkeypatch, ends, code, words):
    """The relay closes at the deadline and s_client, seeing EOF, often exits before its own timeout does.

    Which one comes first is a race (it once made drips-handshake flaky); here s_client's EOF exit is faked
    on either side of the deadline, so both outcomes are tested every time.
    """
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")

    def s_client_sees_eof(command, *, timeout, **_kwargs):
        if ends == "at the deadline":
            time.sleep(timeout)
        return subprocess.CompletedProcess(command, 1, "CONNECTED(00000003)\n", S_CLIENT_EOF)

    server = serve(contexts["good"], Behaviour("tls", greeting="silent"))
    monkeypatch.setattr(probe_module.subprocess, "run", s_client_sees_eof)
    result = probe(Endpoint("127.0.0.1", server.port, "tls"), HOSTILE_TIMEOUT, backend="openssl")
    assert_failed(result, code, words, HOSTILE_TIMEOUT)


@pytest.mark.skipif(not probe_module.CHAIN_CAPTURE, reason="no ssl handshake backend here")
@pytest.mark.parametrize("error", [ssl.SSLWantReadError, ssl.SSLWantWriteError])
def test_ssl_want_read_or_write_is_the_deadline(serve, contexts, monkeypatch, error):
    """CPython's do_handshake raises SSLWant*Error, not a timeout, when exactly no time is left."""
    def out_of_time(_tls, *_args):
        raise error("The operation did not complete")

    server = serve(contexts["good"], Behaviour("tls", greeting="silent"))
    monkeypatch.setattr(ssl.SSLSocket, "do_handshake", out_of_time)
    result = probe(Endpoint("127.0.0.1", server.port, "tls"), HOSTILE_TIMEOUT, backend="ssl")
    assert_failed(result, "timeout", "during the TLS handshake", HOSTILE_TIMEOUT)


def test_nothing_listening_is_connect_refused():
    port = free_port()
    result = probe(Endpoint("127.0.0.1", port, "smtp", label="mx9"), HOSTILE_TIMEOUT)
    assert_failed(result, "connect_refused", f"127.0.0.1:{port} (mx9): 127.0.0.1 refused the connection",
                  HOSTILE_TIMEOUT)


def test_unanswered_connect_is_connect_timeout():
    with full_backlog() as port:
        result = probe(Endpoint("127.0.0.1", port, "smtp"), HOSTILE_TIMEOUT)
    assert_failed(result, "connect_timeout", "no TCP answer", HOSTILE_TIMEOUT)


def test_unresolvable_name_is_connect_failed():
    """A name with a 64-character label: Python refuses to encode it for the resolver, so no resolver is asked
    (a real one, offline or slow, made this test depend on the machine)."""
    name = "x" * 64 + ".example.test"
    result = probe(Endpoint(name, 25), HOSTILE_TIMEOUT)
    assert_failed(result, "connect_failed", f"cannot resolve {name}", HOSTILE_TIMEOUT)


# Many endpoints at once

@pytest.mark.parametrize(("backend", "cases", "timeout"), [
    with_backend("ssl", tuple(HOSTILE), 1.5),
    # Each openssl s_client costs about 60 ms of CPU: two cores start a few dozen at once only slowly.
    with_backend("openssl", HANDSHAKE_CASES, 2.5),
])
def test_probe_many_mixing_hostile_and_healthy_takes_one_deadline(
        serve, contexts, ecdsa_pki, backend, cases, timeout):
    endpoints, expected = [], []
    for name in cases:
        behaviour, context, code, _words = HOSTILE[name]
        hostile = serve(contexts[context], behaviour)
        healthy = serve(contexts["good"], Behaviour(behaviour.protocol))
        endpoints += [Endpoint("127.0.0.1", hostile.port, behaviour.protocol, label=name),
                      Endpoint("127.0.0.1", healthy.port, behaviour.protocol, label=f"healthy after {name}")]
        expected += [code, None]
    with full_backlog() as port:
        endpoints.append(Endpoint("127.0.0.1", port, "smtp", label="backlog full"))
        expected.append("connect_timeout")
        started = time.monotonic()
        results = probe_many(endpoints, timeout, concurrency=len(endpoints), backend=backend)
        elapsed = time.monotonic() - started
    assert elapsed < timeout + 1  # one deadline, not the sum (several deadlines)
    assert [result.endpoint for result in results] == endpoints
    assert [result.error_code for result in results] == expected
    assert all(result.chain_der == ders(ecdsa_pki) for result in results if result.ok)


def test_probe_many_never_runs_more_than_concurrency_probes_at_once(serve, contexts):
    server = serve(contexts["good"], Behaviour("smtp", greeting="silent"))
    started = time.monotonic()
    results = probe_many([Endpoint("127.0.0.1", server.port, "smtp")] * 4, 0.5, concurrency=2)
    assert 1.0 <= time.monotonic() - started < 1.9  # two waves of two, not one of four (0.5 s) nor four of one (2 s)
    assert [result.error_code for result in results] == ["timeout"] * 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_key_types_select_the_rsa_and_the_ecdsa_chain(serve, ecdsa_pki, rsa_pki, backend):
    both = server_context(rsa_pki.served_chain, ecdsa_pki.served_chain)
    smtp, implicit = serve(both, Behaviour("smtp")), serve(both, Behaviour("tls"))
    endpoints = [Endpoint("127.0.0.1", smtp.port, "smtp"), Endpoint("127.0.0.1", implicit.port, "tls")]
    results = probe_many(endpoints, TIMEOUT, concurrency=4, key_types=("rsa", "ecdsa"), backend=backend)
    assert [(r.endpoint.port, r.endpoint.key_type, r.key_type) for r in results] == [
        (smtp.port, "rsa", "rsa"), (smtp.port, "ecdsa", "ecdsa"),
        (implicit.port, "rsa", "rsa"), (implicit.port, "ecdsa", "ecdsa")]
    assert [r.chain_der for r in results] == [ders(rsa_pki), ders(ecdsa_pki)] * 2
    assert {r.tls_version for r in results} == {"TLSv1.2"}
    assert ["-RSA-" in r.cipher for r in results] == [True, False, True, False]


def test_key_type_the_server_does_not_have_fails_the_handshake(serve, contexts):
    server = serve(contexts["good"], Behaviour("tls"))
    result = probe(Endpoint("127.0.0.1", server.port, "tls", key_type="rsa"), TIMEOUT)
    assert_failed(result, "tls_handshake_failed", "ALERT_HANDSHAKE_FAILURE", TIMEOUT)


# SNI

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("address", "server_name", "send_sni", "sni_seen", "chain"), [
    ("127.0.0.1", "mail.example.test", True, "mail.example.test", "by_name"),
    ("127.0.0.1", "mail.example.test", False, None, "default"),
    ("127.0.0.1", None, True, None, "default"),
    ("localhost", None, True, "localhost", "default"),
], ids=["name-sent", "name-not-sent", "address-only", "address-is-a-name"])
def test_sni_is_sent_as_asked(serve, ecdsa_pki, rsa_pki, address, server_name, send_sni, sni_seen, chain, backend):
    context = server_context(rsa_pki.served_chain, by_name={"mail.example.test": ecdsa_pki.served_chain})
    server = serve(context, Behaviour("tls"))
    endpoint = Endpoint(address, server.port, "tls", server_name=server_name, send_sni=send_sni)
    result = probe(endpoint, TIMEOUT, backend=backend)
    assert result.ok, result.error_message
    assert context.names_seen == [sni_seen]
    assert result.chain_der == ders(ecdsa_pki if chain == "by_name" else rsa_pki)


# PROXY protocol

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", ["smtp", "tls"])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_header_is_sent_first_with_the_real_addresses(serve, contexts, ecdsa_pki, version, protocol, backend):
    server = serve(contexts["good"], Behaviour(protocol, proxy=version))
    result = probe(Endpoint("127.0.0.1", server.port, protocol, proxy_protocol=version), TIMEOUT, backend=backend)
    assert result.ok, result.error_message
    assert result.chain_der == ders(ecdsa_pki)
    assert server.proxy_headers_ok == [True]


@pytest.mark.parametrize(("protocol", "code"), [("smtp", "protocol_error"), ("tls", "tls_handshake_failed")])
def test_wrong_proxy_header_version_is_refused(serve, contexts, protocol, code):
    server = serve(contexts["good"], Behaviour(protocol, proxy="v2"))
    result = probe(Endpoint("127.0.0.1", server.port, protocol, proxy_protocol="v1"), TIMEOUT)
    assert_failed(result, code, "", TIMEOUT)
    assert server.proxy_headers_ok == [False]


# IPv6

@pytest.mark.parametrize("proxy_protocol", [None, "v1", "v2"])
@pytest.mark.parametrize("protocol", ["smtp", "imap", "tls"])
def test_ipv6_loopback_works(serve, contexts, ecdsa_pki, ipv6, protocol, proxy_protocol):
    server = serve(contexts["good"], Behaviour(protocol, proxy=proxy_protocol), host=ipv6)
    result = probe(Endpoint(ipv6, server.port, protocol, proxy_protocol=proxy_protocol), TIMEOUT)
    assert result.ok, result.error_message
    assert result.chain_der == ders(ecdsa_pki)


def test_ipv6_endpoint_is_named_with_brackets(ipv6):
    port = free_port()
    result = probe(Endpoint(ipv6, port, "smtp", label="v6"), HOSTILE_TIMEOUT)
    assert result.error_code == "connect_refused"
    assert result.error_message.startswith(f"[::1]:{port} (v6): ")


# Where the chain cannot be read with Python's ssl

def test_without_chain_capture_auto_falls_back_to_openssl(serve, contexts, ecdsa_pki, monkeypatch):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    monkeypatch.setattr(probe_module, "CHAIN_CAPTURE", False)  # what Python 3.9 has
    server = serve(contexts["good"], Behaviour("imap"))
    result = probe(Endpoint("127.0.0.1", server.port, "imap"), TIMEOUT)
    assert result.ok, result.error_message
    assert result.chain_der == ders(ecdsa_pki)


@pytest.mark.parametrize(("chain_capture", "backend", "words"), [
    (False, "ssl", "(3.10 or newer can)"),
    (False, "auto", "delegate_to: localhost"),
    (True, "openssl", "delegate_to: localhost"),
])
def test_no_way_to_read_the_chain_is_probe_unsupported(monkeypatch, tmp_path, chain_capture, backend, words):
    monkeypatch.setattr(probe_module, "CHAIN_CAPTURE", chain_capture)
    monkeypatch.setenv("PATH", str(tmp_path))  # no openssl command
    result = probe(Endpoint("127.0.0.1", free_port(), "smtp"), HOSTILE_TIMEOUT, backend=backend)
    assert_failed(result, "probe_unsupported", words, HOSTILE_TIMEOUT)


def test_openssl_backend_without_a_usable_socket_path_is_probe_unsupported(serve, contexts, monkeypatch, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    too_long = tmp_path / ("d" * 120)  # a Unix socket path has at most 107 bytes
    too_long.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(too_long))
    server = serve(contexts["good"], Behaviour("tls"))
    result = probe(Endpoint("127.0.0.1", server.port, "tls"), HOSTILE_TIMEOUT, backend="openssl")
    assert_failed(result, "probe_unsupported", "set TMPDIR to a short path", HOSTILE_TIMEOUT)
    assert list(too_long.iterdir()) == []  # nothing left behind


# Input errors are raised, not reported

@pytest.mark.parametrize("fields", [
    {"protocol": "smtpx"}, {"proxy_protocol": "v3"}, {"key_type": "dsa"}, {"port": 0}, {"port": 65536},
    {"port": "25"},
])
def test_invalid_endpoint_is_an_input_error(fields):
    with pytest.raises(InputError, match=re.escape("endpoint mx.example.test:")):
        Endpoint(**{"address": "mx.example.test", "port": 25, **fields})


@pytest.mark.parametrize("call", [
    lambda: probe(Endpoint("mx", 25), 0),
    lambda: probe(Endpoint("mx", 25), 5, backend="gnutls"),
    lambda: probe_many([Endpoint("mx", 25)], 5, concurrency=0),
    lambda: probe_many([Endpoint("mx", 25)], 5, concurrency=2, key_types=("dsa",)),
], ids=["timeout", "backend", "concurrency", "key-type"])
def test_invalid_call_is_an_input_error(call):
    with pytest.raises(InputError):
        call()


def test_probe_many_of_nothing_is_nothing():
    assert probe_many([], TIMEOUT, concurrency=4) == []
