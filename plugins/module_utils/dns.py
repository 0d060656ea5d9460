# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""A small DNS stub resolver: asks one configured (validating) resolver, reads its DNSSEC verdict (the AD bit).

Managed hosts rarely have a DNS library, and DANE needs only what a stub resolver sees: the records of a few types
and whether the resolver validated them. Queries go over UDP with EDNS0 and the DO bit, and over TCP when the
answer is truncated (RFC 1035, 6891, 6840 section 5.7: a query with the AD bit asks for the AD bit back).
"""
from __future__ import annotations

import ipaddress
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.tlsa import TlsaRecord

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "RRSIG": 46, "TLSA": 52}
TYPE_NAMES = {number: name for name, number in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
CLASS_IN = 1
FLAG_QR, FLAG_TC, FLAG_RD, FLAG_AD = 0x8000, 0x0200, 0x0100, 0x0020
EDNS_DO = 0x8000
UDP_PAYLOAD = 1232  # the DNS flag day 2020 size: no fragmentation on ordinary paths
MAX_CNAMES = 8
RESOLV_CONF = "/etc/resolv.conf"


class DnsError(MailTlsError):
    """The resolver gave no usable answer (timeout, refusal, garbage); the message names resolver and query."""


@dataclass(frozen=True)
class Resolver:
    """The resolver to ask: a validating one (Unbound, BIND, a provider's) sets the AD bit on validated answers."""

    address: str
    port: int = 53
    timeout: float = 5.0

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def system_resolver(timeout: float = 5.0, path: str = RESOLV_CONF) -> Resolver:
    """The first nameserver of resolv.conf; DnsError when there is none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    return Resolver(fields[1].split("%")[0], 53, timeout)
    except OSError as exc:
        raise DnsError(f"cannot read {path} ({exc.strerror}): give the resolver's address") from None
    raise DnsError(f"{path} names no nameserver: give the resolver's address")


@dataclass(frozen=True)
class Record:
    """One resource record of an answer; value is a str (A, AAAA, CNAME, NS, TXT), (preference, host) for MX, a
    TlsaRecord for TLSA, and the covered type's name and original TTL for RRSIG."""

    name: str
    type: str
    ttl: int
    value: object


@dataclass(frozen=True)
class Answer:
    """The resolver's answer to one question, after following CNAMEs."""

    name: str  # as asked, lowercase, without the final dot
    type: str
    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, ...
    secure: bool  # the resolver set the AD bit: every record (or the denial) was DNSSEC-validated
    records: tuple[Record, ...]  # of the asked type only
    canonical: str  # the name the records are at, after CNAMEs
    rrsigs: tuple[Record, ...] = ()

    @property
    def values(self) -> list:
        return [record.value for record in self.records]

    @property
    def original_ttl(self) -> Optional[int]:
        """The TTL the zone gives the records (from their signature), else the remaining TTL the resolver gave."""
        signed = [record.value[1] for record in self.rrsigs if record.value[0] == self.type]
        if signed:
            return max(signed)
        return max((record.ttl for record in self.records), default=None)


def query(resolver: Resolver, name: str, rtype: str) -> Answer:
    """Ask the resolver for name's records of rtype (a key of TYPES); DnsError when no usable answer comes."""
    name = name.rstrip(".").lower()
    ident = secrets.randbelow(65536)
    message = _question(ident, name, TYPES[rtype])
    what = f"{rtype} {name} at resolver {resolver}"
    deadline = time.monotonic() + resolver.timeout
    reply = _ask_udp(resolver, message, deadline, what)
    flags = struct.unpack("!H", reply[2:4])[0]
    if flags & FLAG_TC:
        reply = _ask_tcp(resolver, message, deadline, what)
    return _answer(reply, ident, name, rtype, what)


def _question(ident: int, name: str, rtype: int) -> bytes:
    header = struct.pack("!HHHHHH", ident, FLAG_RD | FLAG_AD, 1, 0, 0, 1)
    opt = b"\x00" + struct.pack("!HHIH", 41, UDP_PAYLOAD, EDNS_DO, 0)
    return header + encode_name(name) + struct.pack("!HH", rtype, CLASS_IN) + opt


def encode_name(name: str) -> bytes:
    """A domain name in wire format; DnsError for labels that do not fit."""
    out = b""
    for label in filter(None, name.split(".")):
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if len(raw) > 63:
            raise DnsError(f"the DNS name {name!r} has a label longer than 63 octets")
        out += bytes([len(raw)]) + raw
    if len(out) > 254:
        raise DnsError(f"the DNS name {name!r} is longer than 253 characters")
    return out + b"\x00"


def _timed_out(what: str) -> DnsError:
    return DnsError(f"no answer for {what} within the timeout: check that the resolver runs and is reachable")


def _remaining(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out(what)
    return left


def _family(address: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def _ask_udp(resolver: Resolver, message: bytes, deadline: float, what: str) -> bytes:
    with socket.socket(_family(resolver.address), socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((resolver.address, resolver.port))
            sock.send(message)
            while True:
                sock.settimeout(_remaining(deadline, what))
                reply = sock.recv(65535)
                # Only the reply to this question counts: a late answer to an earlier one is dropped.
                if len(reply) >= 12 and reply[:2] == message[:2] and reply[2] & 0x80:
                    return reply
        except socket.timeout:
            raise _timed_out(what) from None
        except OSError as exc:
            raise DnsError(f"asking for {what} failed: {exc.strerror or exc}") from None


def _ask_tcp(resolver: Resolver, message: bytes, deadline: float, what: str) -> bytes:
    try:
        with socket.create_connection((resolver.address, resolver.port), _remaining(deadline, what)) as sock:
            sock.sendall(struct.pack("!H", len(message)) + message)
            length = struct.unpack("!H", _read_exactly(sock, 2, deadline, what))[0]
            return _read_exactly(sock, length, deadline, what)
    except socket.timeout:
        raise _timed_out(what) from None
    except OSError as exc:
        raise DnsError(f"asking for {what} over TCP failed: {exc.strerror or exc}") from None


def _read_exactly(sock: socket.socket, count: int, deadline: float, what: str) -> bytes:
    data = b""
    while len(data) < count:
        sock.settimeout(_remaining(deadline, what))
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise DnsError(f"the resolver closed the TCP connection in the middle of the answer for {what}")
        data += chunk
    return data


def _answer(reply: bytes, ident: int, name: str, rtype: str, what: str) -> Answer:
    try:
        return _parse_answer(reply, ident, name, rtype, what)
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as exc:
        raise DnsError(f"the resolver's answer for {what} is malformed ({exc or type(exc).__name__})") from None


def _parse_answer(reply: bytes, ident: int, name: str, rtype: str, what: str) -> Answer:
    reply_id, flags, qdcount, ancount = struct.unpack("!HHHH", reply[:8])
    if reply_id != ident or not flags & FLAG_QR:
        raise DnsError(f"the resolver's answer for {what} does not belong to the question")
    offset = 12
    for _question_number in range(qdcount):
        offset = read_name(reply, offset)[1] + 4
    records = []
    for _record_number in range(ancount):
        record, offset = _read_record(reply, offset)
        if record is not None:
            records.append(record)
    rcode = RCODES.get(flags & 0x000F, f"RCODE{flags & 0x000F}")
    canonical = _follow_cnames(name, records)
    wanted = tuple(r for r in records if r.type == rtype and r.name == canonical)
    signatures = tuple(r for r in records if r.type == "RRSIG" and r.name == canonical)
    return Answer(name, rtype, rcode, bool(flags & FLAG_AD), wanted, canonical, signatures)


def _follow_cnames(name: str, records: list[Record]) -> str:
    aliases = {record.name: record.value for record in records if record.type == "CNAME"}
    for _step in range(MAX_CNAMES):
        if name not in aliases:
            break
        name = aliases[name]
    return name


def read_name(message: bytes, offset: int) -> tuple[str, int]:
    """The (possibly compressed) name at offset, and the offset after it; ValueError for loops and overruns."""
    labels: list[str] = []
    end = None
    jumps = 0
    while True:
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if jumps > 32:
                raise ValueError("a name's compression pointers loop")
            end = offset + 2 if end is None else end
            offset = ((length & 0x3F) << 8) | message[offset + 1]
            jumps += 1
            continue
        if length & 0xC0:
            raise ValueError(f"unknown label type {length:#x}")
        if length == 0:
            return ".".join(labels).lower(), (offset + 1 if end is None else end)
        label = message[offset + 1:offset + 1 + length]
        if len(label) < length:
            raise ValueError("a name runs past the end of the message")
        labels.append(label.decode("ascii", errors="backslashreplace"))
        offset += 1 + length


def _read_record(message: bytes, offset: int) -> tuple[Optional[Record], int]:
    owner, offset = read_name(message, offset)
    rtype, rclass, ttl, length = struct.unpack("!HHIH", message[offset:offset + 10])
    start, end = offset + 10, offset + 10 + length
    if end > len(message):
        raise ValueError("a record runs past the end of the message")
    name = TYPE_NAMES.get(rtype)
    if rclass != CLASS_IN or name is None or name == "SOA":
        return None, end
    return Record(owner, name, ttl, _rdata(message, name, start, end)), end


def _rdata(message: bytes, rtype: str, start: int, end: int) -> object:
    data = message[start:end]
    if rtype == "A":
        return str(ipaddress.IPv4Address(data))
    if rtype == "AAAA":
        return str(ipaddress.IPv6Address(data))
    if rtype in ("CNAME", "NS"):
        return read_name(message, start)[0]
    if rtype == "MX":
        return struct.unpack("!H", data[:2])[0], read_name(message, start + 2)[0]
    if rtype == "TXT":
        return _character_strings(data)
    if rtype == "TLSA":
        if len(data) < 3:
            raise ValueError("a TLSA record is shorter than its three fixed octets")
        return TlsaRecord(data[0], data[1], data[2], data[3:].hex())
    # RRSIG: the type covered and the original TTL, which says how long resolvers may keep the records
    covered, _algorithm, _labels, original_ttl = struct.unpack("!HBBI", data[:8])
    return TYPE_NAMES.get(covered, str(covered)), original_ttl


def _character_strings(data: bytes) -> str:
    """A TXT record's strings joined into one value, as RFC 7208 and RFC 8461 read them."""
    parts, offset = [], 0
    while offset < len(data):
        length = data[offset]
        parts.append(data[offset + 1:offset + 1 + length])
        offset += 1 + length
    return b"".join(parts).decode("utf-8", errors="replace")


def resolver_from(address: Optional[str], port: int = 53, timeout: float = 5.0) -> Resolver:
    """The resolver named by options: the given address, else the system's first nameserver."""
    if address:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise DnsError(f"the resolver address {address!r} is not an IP address: give the resolver's IPv4 or "
                           "IPv6 address") from None
        return Resolver(address, port, timeout)
    return Resolver(system_resolver().address, port, timeout)
