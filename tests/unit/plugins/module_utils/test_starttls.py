# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for starttls.py: each dialogue against a real loopback server, healthy and hostile, up to TLS's start."""
from __future__ import annotations

import re
import socket
import time

import pki
import pytest

# tests/ is on sys.path (tests/conftest.py's folder), so tests/unit/hostile_server.py is unit.hostile_server.
from unit.hostile_server import Behaviour, HostileServer, server_context

from ansible_collections.mailops.tls.plugins.module_utils import starttls
from ansible_collections.mailops.tls.plugins.module_utils.starttls import Deadline, ProbeError, negotiate

DIALECTS = ("smtp", "lmtp", "imap", "pop3", "sieve")


@pytest.fixture(scope="module")
def context():
    return server_context(pki.hierarchy().served_chain)


def run_dialogue(context, behaviour: Behaviour, protocol: str = "", timeout: float = 3.0) -> float:
    """Negotiate protocol (default: the server's) with a server behaving so; return the seconds it took."""
    with HostileServer(context, behaviour) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout) as sock:
        deadline = Deadline(timeout)
        negotiate(protocol or behaviour.protocol, sock, deadline)
        return deadline.elapsed()


@pytest.mark.parametrize(("port", "protocol"), [
    (25, "smtp"), (587, "smtp"), (465, "smtps"), (143, "imap"), (993, "imaps"), (110, "pop3"), (995, "pop3s"),
    (4190, "sieve"), (24, "lmtp"), (443, "tls"), (10025, "tls"),
])
def test_default_protocol_by_port(port, protocol):
    assert starttls.default_protocol(port) == protocol


@pytest.mark.parametrize("behaviour", [
    Behaviour("smtp"), Behaviour("lmtp"), Behaviour("imap"), Behaviour("imap", capabilities_in_greeting=True),
    Behaviour("pop3"), Behaviour("sieve"), Behaviour("tls"),
], ids=["smtp", "lmtp", "imap", "imap-greeting-capabilities", "pop3", "sieve", "implicit-tls"])
def test_dialogue_reaches_the_go_ahead(context, behaviour):
    assert run_dialogue(context, behaviour) < 1


@pytest.mark.parametrize("protocol", DIALECTS)
@pytest.mark.parametrize(("starttls_mode", "code", "words"), [
    ("not_offered", "starttls_not_offered", "does not offer STARTTLS"),
    ("rejected", "starttls_rejected", "refused STARTTLS"),
    ("garbage_reply", "protocol_error", "no TLS today"),
    ("extra_data", "protocol_error", "sent data after agreeing to start TLS"),
])
def test_starttls_answers(context, protocol, starttls_mode, code, words):
    with pytest.raises(ProbeError, match=words) as caught:
        run_dialogue(context, Behaviour(protocol, starttls=starttls_mode))
    assert caught.value.code == code


@pytest.mark.parametrize(("protocol", "refusal", "code", "words"), [
    ("smtp", "greeting", "protocol_error", "greeted with 554 '5.3.2 mail.example.test no SMTP service here' instead "
                                           "of 220"),
    ("lmtp", "greeting", "protocol_error", "the LMTP server greeted with 554"),
    ("smtp", "hello", "protocol_error", "the SMTP server answered EHLO with 502 '5.5.2 Error: command not"),
    ("lmtp", "hello", "protocol_error", "the LMTP server answered LHLO with 502"),
    ("imap", "greeting", "protocol_error", "unexpected IMAP greeting: '* BYE Too many connections"),
    ("imap", "preauth", "starttls_not_offered", "greets with PREAUTH, and STARTTLS is only allowed before"),
    ("imap", "bye", "protocol_error", "the IMAP server ended the session: '* BYE Server shutting down.'"),
    ("pop3", "greeting", "protocol_error", "unexpected POP3 greeting: '-ERR [SYS/TEMP] Service unavailable'"),
    ("pop3", "capa", "starttls_not_offered", "does not support CAPA (RFC 2449), so it cannot announce STLS"),
    ("sieve", "greeting", "protocol_error", "the ManageSieve server refused the session: 'NO \"Service unavailable"),
    ("sieve", "bye", "protocol_error", "the ManageSieve server refused the session: 'BYE \"Too many connections"),
    ("sieve", "starttls_bye", "starttls_rejected", "refused STARTTLS: 'BYE \"Server shutting down\"'"),
])
def test_every_refusal_before_tls_has_its_code_and_quotes_the_server(context, protocol, refusal, code, words):
    with pytest.raises(ProbeError) as caught:
        run_dialogue(context, Behaviour(protocol, refusal=refusal))
    assert caught.value.code == code
    assert words in str(caught.value)


def test_smtp_refusal_quotes_the_reply(context):
    with pytest.raises(ProbeError, match=re.escape("454 4.7.0 TLS not available")):
        run_dialogue(context, Behaviour("smtp", starttls="rejected"))


@pytest.mark.parametrize("protocol", ["smtp", "sieve"])
@pytest.mark.parametrize(("greeting", "words"), [
    ("endless", f"more than {starttls.MAX_LINES} lines"),
    ("endless_line", f"longer than {starttls.MAX_LINE} bytes"),
])
def test_endless_greeting_fails_at_the_bound_not_the_deadline(context, protocol, greeting, words):
    started = time.monotonic()
    with pytest.raises(ProbeError, match=words) as caught:
        run_dialogue(context, Behaviour(protocol, greeting=greeting), timeout=10)
    assert caught.value.code == "protocol_error"
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("protocol", DIALECTS)
def test_server_closing_at_once_is_a_protocol_error(context, protocol):
    with pytest.raises(ProbeError, match="closed the connection") as caught:
        run_dialogue(context, Behaviour(protocol, greeting="close"))
    assert caught.value.code == "protocol_error"


def test_silent_server_times_out_at_the_deadline(context):
    started = time.monotonic()
    with pytest.raises(ProbeError, match=re.escape("0.5 s deadline waiting for the SMTP greeting")) as caught:
        run_dialogue(context, Behaviour("smtp", greeting="silent"), timeout=0.5)
    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(("server", "client"), [("smtp", "imap"), ("imap", "smtp"), ("pop3", "sieve"),
                                                ("sieve", "pop3"), ("imap", "pop3")])
def test_wrong_protocol_is_a_protocol_error(context, server, client):
    with pytest.raises(ProbeError, match="set the endpoint's protocol") as caught:
        run_dialogue(context, Behaviour(server), protocol=client)
    assert caught.value.code == "protocol_error"


def test_deadline_that_has_passed_raises_before_blocking():
    deadline = Deadline(0.01)
    time.sleep(0.02)
    with socket.socket() as sock, pytest.raises(ProbeError, match=re.escape("0.01 s deadline")) as caught:
        deadline.arm(sock, "before anything")
    assert caught.value.code == "timeout"
