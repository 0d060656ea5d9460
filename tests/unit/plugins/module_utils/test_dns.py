# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for dns.py: answers built here byte by byte (RFC 1035 wire format) and served from loopback sockets over
UDP and TCP; the lab's Unbound is the real resolver in tests/integration/test_dane_lab.py."""
from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from ansible_collections.mailops.tls.plugins.module_utils import dns
from ansible_collections.mailops.tls.plugins.module_utils.tlsa import TlsaRecord

AD, TC, RA, QR, RD = 0x0020, 0x0200, 0x0080, 0x8000, 0x0100


def wire_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".") if label) + b"\0"


def rr(owner: bytes, rtype: int, rdata: bytes, ttl: int = 300) -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def reply_to(query: bytes, answers: list, flags: int = QR | RD | RA | AD, rcode: int = 0) -> bytes:
    """A reply echoing the query's id and question, with answers (each made by rr; b'\\xc0\\x0c' points at the
    question's name)."""
    question_end = 12 + query[12:].index(b"\0") + 1 + 4
    header = query[:2] + struct.pack("!HHHHH", flags | rcode, 1, len(answers), 0, 0)
    return header + query[12:question_end] + b"".join(answers)


QNAME = b"\xc0\x0c"


class Server:
    """A one-question DNS server on loopback, UDP and TCP on one port: answer(query, over_tcp) -> reply bytes."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.udp, self.tcp = self._bind_pair()
        self.port = self.udp.getsockname()[1]
        self.tcp.listen()
        self.queries: list = []
        for target in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=target, daemon=True).start()

    @staticmethod
    def _bind_pair() -> tuple:
        """A UDP and a TCP socket on one free port (the UDP port's TCP twin may be taken on a busy machine)."""
        for _attempt in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket()
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            return udp, tcp
        raise OSError("no port free for both UDP and TCP on 127.0.0.1")

    def _serve_udp(self) -> None:
        while True:
            try:
                query, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            self.queries.append(query)
            reply = self.answer(query, False)
            if reply is not None:
                self.udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        while True:
            try:
                conn, _peer = self.tcp.accept()
            except OSError:
                return
            with conn:
                length = struct.unpack("!H", conn.recv(2))[0]
                query = conn.recv(length)
                reply = self.answer(query, True)
                conn.sendall(struct.pack("!H", len(reply)) + reply)

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()

    @property
    def resolver(self) -> dns.Resolver:
        return dns.Resolver("127.0.0.1", self.port, 2.0)


@pytest.fixture
def serve():
    servers = []

    def start(answer) -> Server:
        servers.append(Server(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_the_query_asks_for_dnssec_and_the_ad_bit(serve):
    server = serve(lambda q, tcp: reply_to(q, []))
    dns.query(server.resolver, "Example.ORG.", "MX")
    query = server.queries[0]
    flags = struct.unpack("!H", query[2:4])[0]
    assert flags & RD and flags & AD
    assert query[12:12 + len(wire_name("example.org"))] == wire_name("example.org")
    opt = query[-11:]  # root name, type OPT, payload size, extended rcode and flags (DO), no options
    assert opt[0] == 0 and struct.unpack("!HHIH", opt[1:]) == (41, dns.UDP_PAYLOAD, 0x8000, 0)


def test_records_of_every_type_are_read_and_the_ad_bit_is_the_verdict(serve):
    tlsa = bytes([3, 1, 1]) + bytes(range(32))
    answers = {
        # the second exchange is compressed: "mx2" then a pointer to the question's name
        "MX": [rr(QNAME, 15, b"\x00\x0a" + wire_name("mx1.example.org")),
               rr(QNAME, 15, b"\x00\x14" + b"\x03mx2\xc0\x0c")],
        "TXT": [rr(QNAME, 16, b"\x07v=STSv1\x07; id=42")],
        "TLSA": [rr(QNAME, 52, tlsa, 3000), rr(QNAME, 46, struct.pack("!HBBI", 52, 13, 2, 3600) + b"\0" * 20, 3000)],
        "A": [rr(QNAME, 1, bytes([192, 0, 2, 1]))],
        "AAAA": [rr(QNAME, 28, bytes(15) + b"\x01")],
    }
    server = serve(lambda q, tcp: reply_to(q, answers[dns.TYPE_NAMES[struct.unpack("!H", q[-15:-13])[0]]]))
    assert dns.query(server.resolver, "example.org", "MX").values == [(10, "mx1.example.org"), (20, "mx2.example.org")]
    assert dns.query(server.resolver, "_mta-sts.example.org", "TXT").values == ["v=STSv1; id=42"]
    answer = dns.query(server.resolver, "_25._tcp.mx1.example.org", "TLSA")
    assert answer.secure and answer.values == [TlsaRecord(3, 1, 1, bytes(range(32)).hex())]
    assert answer.original_ttl == 3600  # the zone's TTL from the signature, not the cache's 3000
    assert dns.query(server.resolver, "mx1.example.org", "A").values == ["192.0.2.1"]
    assert dns.query(server.resolver, "mx1.example.org", "AAAA").values == ["::1"]


def test_without_the_ad_bit_the_answer_is_insecure_and_rcodes_are_named(serve):
    server = serve(lambda q, tcp: reply_to(q, [], flags=QR | RD | RA, rcode=2))
    answer = dns.query(server.resolver, "_25._tcp.mx1.example.org", "TLSA")
    assert not answer.secure and answer.rcode == "SERVFAIL" and answer.records == ()


def test_cnames_are_followed_to_the_records(serve):
    alias = wire_name("mx.provider.example")
    answers = [rr(QNAME, 5, alias), rr(alias, 52, bytes([3, 1, 1]) + b"\xaa" * 32),
               rr(wire_name("elsewhere.example"), 52, bytes([3, 1, 1]) + b"\xbb" * 32)]
    server = serve(lambda q, tcp: reply_to(q, answers))
    answer = dns.query(server.resolver, "_25._tcp.mx1.example.org", "TLSA")
    assert answer.canonical == "mx.provider.example" and answer.values == [TlsaRecord(3, 1, 1, "aa" * 32)]


def test_a_truncated_udp_answer_is_asked_again_over_tcp(serve):
    big = [rr(QNAME, 16, b"\xff" + b"x" * 255)] * 8
    server = serve(lambda q, tcp: reply_to(q, big) if tcp else reply_to(q, [], flags=QR | RD | RA | TC))
    assert dns.query(server.resolver, "example.org", "TXT").values == ["x" * 255] * 8


@pytest.mark.parametrize("damage, reason", [
    (lambda reply: reply[:-3], "malformed"),
    (lambda reply: reply[:12] + b"\xc0\x0c" + reply[14:], "malformed"),  # a name pointing at itself: a loop
    (lambda reply: bytes([reply[0] ^ 0xFF]) + reply[1:], "within the timeout"),  # another question's id: ignored
])
def test_damaged_or_foreign_answers_give_a_clear_error(serve, damage, reason):
    server = serve(lambda q, tcp: damage(reply_to(q, [rr(QNAME, 1, bytes([192, 0, 2, 1]))])))
    resolver = dns.Resolver("127.0.0.1", server.port, 0.5)
    with pytest.raises(dns.DnsError, match=reason):
        dns.query(resolver, "mx1.example.org", "A")


def test_a_silent_resolver_times_out_within_the_deadline(serve):
    server = serve(lambda q, tcp: None)
    started = time.monotonic()
    with pytest.raises(dns.DnsError, match=r"no answer for A mx1.example.org at resolver 127.0.0.1:\d+"):
        dns.query(dns.Resolver("127.0.0.1", server.port, 0.4), "mx1.example.org", "A")
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("name, reason", [("a" * 64 + ".example.org", "longer than 63"),
                                          (".".join(["abcdefgh"] * 30), "longer than 253")])
def test_names_that_cannot_be_asked_are_refused(name, reason):
    with pytest.raises(dns.DnsError, match=reason):
        dns.encode_name(name)


@pytest.mark.parametrize("text, expected", [
    ("# comment\nsearch example.org\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n", "192.0.2.53"),
    ("nameserver fe80::1%eth0\n", "fe80::1"),
])
def test_the_system_resolver_is_the_first_nameserver(tmp_path, text, expected):
    path = tmp_path / "resolv.conf"
    path.write_text(text)
    assert dns.system_resolver(3.0, str(path)) == dns.Resolver(expected, 53, 3.0)


def test_no_nameserver_and_bad_addresses_are_explained(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text("options edns0\n")
    with pytest.raises(dns.DnsError, match="names no nameserver"):
        dns.system_resolver(path=str(path))
    with pytest.raises(dns.DnsError, match="is not an IP address"):
        dns.resolver_from("resolver.example.org")
