# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for mtasts.py: TXT records, policies and mx patterns as RFC 8461 defines them; policies fetched from a real
HTTPS server on loopback."""
from __future__ import annotations

import http.server
import ssl
import tempfile
import threading

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils import mtasts

POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmx: *.backup.example.org\r\nmax_age: 604800\r\n"


@pytest.mark.parametrize("values, expected", [
    (["v=STSv1; id=20261203T1200"], "20261203T1200"),
    (["v=spf1 -all", "v=STSv1;id=abc;"], "abc"),
    (["v=spf1 -all"], None),
    ([], None),
])
def test_the_txt_record_gives_the_policy_id(values, expected):
    assert mtasts.policy_id(values, "_mta-sts.example.org") == expected


@pytest.mark.parametrize("values, reason", [
    (["v=STSv1; id=1", "v=STSv1; id=2"], "2 TXT records"),
    (["v=STSv1"], "needs 'v=STSv1; id="),
    (["v=STSv1; id=has-dash"], "needs 'v=STSv1; id="),
])
def test_bad_txt_records_are_refused(values, reason):
    with pytest.raises(mtasts.MtaStsError, match=reason):
        mtasts.policy_id(values, "_mta-sts.example.org")


def test_a_policy_is_parsed():
    policy = mtasts.parse_policy(POLICY, "the policy")
    assert policy == mtasts.Policy("enforce", ("mx1.example.org", "*.backup.example.org"), 604800)


@pytest.mark.parametrize("text, reason", [
    (POLICY.replace("STSv1", "STSv2"), "version: STSv1"),
    (POLICY.replace("enforce", "strict"), "mode 'strict'"),
    (POLICY.replace("604800", "forever"), "max_age"),
    (POLICY.replace("604800", "99999999"), "max_age"),
    ("version: STSv1\nmode: testing\nmax_age: 60\n", "at least one 'mx:'"),
    ("<html>not a policy</html>", "not 'key: value'"),
])
def test_bad_policies_are_refused_with_the_reason(text, reason):
    with pytest.raises(mtasts.MtaStsError, match=reason):
        mtasts.parse_policy(text, "the policy")


@pytest.mark.parametrize("host, pattern", [
    ("mx1.example.org", "mx1.example.org"), ("MX1.Example.Org.", "mx1.example.org"),
    ("a.backup.example.org", "*.backup.example.org"), ("a.b.backup.example.org", None),
    ("backup.example.org", None), ("mx2.example.org", None),
])
def test_mx_patterns_cover_exact_names_and_one_wildcard_label(host, pattern):
    assert mtasts.matching_pattern(host, ("mx1.example.org", "*.backup.example.org")) == pattern


@pytest.mark.parametrize("values, expected", [
    (["v=TLSRPTv1; rua=mailto:tls@example.org"], "v=TLSRPTv1; rua=mailto:tls@example.org"),
    (["v=TLSRPTv1"], None), (["something else"], None),
])
def test_tls_rpt_records_are_recognised(values, expected):
    assert mtasts.tls_rpt(values) == expected


@pytest.fixture(scope="module")
def ca():
    return pki.hierarchy("mta-sts.example.org")


def https_server(ca, status: int = 200, body: bytes = POLICY.encode()):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Location", "https://elsewhere.example/")
            self.end_headers()
            self.wfile.write(body if self.path == mtasts.POLICY_PATH else b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    chain = pki.pem_bundle(ca.leaf, *ca.intermediates)
    key = ca.leaf.key_pem()
    with tempfile.NamedTemporaryFile() as chain_file, tempfile.NamedTemporaryFile() as key_file:
        chain_file.write(chain)
        key_file.write(key)
        chain_file.flush()
        key_file.flush()
        context.load_cert_chain(chain_file.name, key_file.name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def client_context(ca) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca.root.pem.decode())
    return context


def fetch(server, context, domain="example.org"):
    return mtasts.fetch_policy(domain, "127.0.0.1", context, 5.0, port=server.server_address[1])


def test_a_policy_is_fetched_over_verified_https(ca):
    server = https_server(ca)
    try:
        assert fetch(server, client_context(ca)) == POLICY
    finally:
        server.shutdown()


@pytest.mark.parametrize("status, domain, trusted, reason", [
    (200, "example.net", True, "does not verify under Web PKI rules"),  # the certificate is for another name
    (200, "example.org", False, "does not verify under Web PKI rules"),  # an unknown root
    (301, "example.org", True, "HTTP 301; senders need 200"),  # redirects are not followed
    (404, "example.org", True, "HTTP 404"),
])
def test_policies_senders_would_not_accept_are_refused(ca, status, domain, trusted, reason):
    server = https_server(ca, status)
    try:
        context = client_context(ca) if trusted else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with pytest.raises(mtasts.MtaStsError, match=reason):
            fetch(server, context, domain)
    finally:
        server.shutdown()
