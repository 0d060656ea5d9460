# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Live probes: connect, optional PROXY header, STARTTLS dialogue, TLS handshake, and the chain exactly as sent.

Data in, data out: an Endpoint goes in, a ProbeResult comes out, and network trouble is a typed error code
in the result, never an exception. One deadline per probe bounds connect, dialogue and handshake together.
"""
from __future__ import annotations

import contextlib
import functools
import ipaddress
import math
import os
import re
import selectors
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Optional, Union

from ansible_collections.mailops.tls.plugins.module_utils import der
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.findings import PROBE_ERROR_CODES
from ansible_collections.mailops.tls.plugins.module_utils.starttls import (
    PROTOCOLS,
    Deadline,
    ProbeError,
    default_protocol,
    negotiate,
    send,
)

ERROR_CODES = PROBE_ERROR_CODES
BACKENDS = ("auto", "ssl", "openssl")
# Why TLS 1.2 and cipher suites: in TLS 1.3 the suite says nothing about the certificate, the server picks it
# from the signature_algorithms extension, which Python's ssl module cannot set. In TLS 1.2 an aRSA or aECDSA
# suite can only be served with a certificate of that key type, so offering only those suites forces the choice.
KEY_TYPE_CIPHERS = {"rsa": "aRSA", "ecdsa": "aECDSA"}
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

# Python 3.10 added get_unverified_chain() to the private _ssl socket object, 3.13 made it public on SSLSocket;
# 3.9 has no way to read the certificates after the leaf, so it needs the openssl command instead.
CHAIN_CAPTURE = hasattr(getattr(ssl._ssl, "_SSLSocket", None), "get_unverified_chain")


@dataclass(frozen=True)
class Endpoint:
    """One TLS service to probe: where to connect, how TLS starts there, and which name to ask for."""

    address: str  # host name, IPv4 or IPv6 address to connect to
    port: int
    protocol: Optional[str] = None  # one of starttls.PROTOCOLS; None picks the port's usual one
    server_name: Optional[str] = None  # sent as SNI; None means the address when that is a name
    label: Optional[str] = None  # shown in messages, e.g. "backend mx2"
    send_sni: bool = True
    proxy_protocol: Optional[str] = None  # 'v1' or 'v2': send a HAProxy PROXY header first
    key_type: Optional[str] = None  # 'rsa' or 'ecdsa': ask for that certificate (TLS 1.2 only, see KEY_TYPE_CIPHERS)
    every_address: bool = False  # probe_many: one probe per address of the name (A and AAAA) instead of the first

    def __post_init__(self) -> None:
        _check_choice(self, "protocol", self.protocol, PROTOCOLS)
        _check_choice(self, "proxy_protocol", self.proxy_protocol, ("v1", "v2"))
        _check_choice(self, "key_type", self.key_type, tuple(KEY_TYPE_CIPHERS))
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise InputError(f"endpoint {self}: port must be a number from 1 to 65535")

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}" + (f" ({self.label})" if self.label else "")

    @property
    def dialect(self) -> str:
        """The protocol actually spoken: the given one, else the port's usual one."""
        return self.protocol or default_protocol(self.port)

    @property
    def sni(self) -> Optional[str]:
        """The name sent as SNI, or None when none is sent (IP addresses are never sent as SNI)."""
        if not self.send_sni:
            return None
        return self.server_name or (None if _is_ip(self.address) else self.address)


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw; error_code is None exactly when ok is true."""

    endpoint: Endpoint
    ok: bool
    chain_der: tuple[bytes, ...] = ()  # the certificates exactly as the server sent them, in its order
    tls_version: Optional[str] = None  # e.g. 'TLSv1.3'
    cipher: Optional[str] = None  # OpenSSL's name, e.g. 'TLS_AES_256_GCM_SHA384'
    error_code: Optional[str] = None  # one of ERROR_CODES
    error_message: Optional[str] = None  # names the endpoint and says what happened
    seconds: float = 0.0  # from the start of connect to the end of the handshake or the failure
    key_type: Optional[str] = None  # of the leaf as served: rsa, ecdsa, ed25519, ed448, dsa
    peer_address: Optional[str] = None  # the IP address that accepted the connection; None when none did
    sample: int = 0  # this probe's number among the probes of a sampled endpoint (see Sampling); 0 when not sampled


def _check_choice(endpoint: Endpoint, field: str, value: Optional[str], choices: Sequence[str]) -> None:
    if value is not None and value not in choices:
        raise InputError(f"endpoint {endpoint.address}:{endpoint.port}: {field} {value!r} is not one of "
                         f"{', '.join(choices)}")


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return True


# Connecting

Resolver = Callable[[str, int], Sequence[tuple]]
"""Name lookup as socket.getaddrinfo(host, port, type=SOCK_STREAM) answers it: (family, type, proto, canonical
name, socket address) tuples. The seam tests point at their own answers, as DNS layers point at a lab resolver."""


def system_resolver(host: str, port: int) -> Sequence[tuple]:
    """The host's own resolver (/etc/hosts, DNS, ... as nsswitch.conf says)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _numeric(host: str, port: int) -> Sequence[tuple]:
    """An IP address as getaddrinfo answers it, without asking any resolver."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)


def _resolve(endpoint: Endpoint, deadline: Deadline, resolver: Resolver) -> list[tuple]:
    """The endpoint's addresses, each once, in the resolver's order, looked up within the deadline."""
    answer: list = []
    if _is_ip(endpoint.address):  # no lookup: nothing can stall
        _lookup(_numeric, endpoint, answer)
    else:
        # getaddrinfo has no timeout: it runs in a thread of its own that the probe stops waiting for at the
        # deadline; the thread ends by itself when the resolver gives up.
        lookup = threading.Thread(target=_lookup, args=(resolver, endpoint, answer), daemon=True,
                                  name="mailops-resolve")
        lookup.start()
        lookup.join(max(deadline.remaining(), 0))
    if not answer:
        raise ProbeError("connect_timeout", f"the name lookup of {endpoint.address} did not finish within the "
                                            f"{deadline.seconds:g} s deadline (a slow or unreachable DNS resolver?)")
    if isinstance(answer[0], Exception):
        raise ProbeError("connect_failed", f"cannot resolve {endpoint.address}: {answer[0]}")
    return list({entry[4][:2]: entry for entry in answer[0]}.values())


def _lookup(resolver: Resolver, endpoint: Endpoint, answer: list) -> None:
    try:
        answer.append(resolver(endpoint.address, endpoint.port))
    except (OSError, UnicodeError) as exc:
        answer.append(exc)


def _connect(endpoint: Endpoint, deadline: Deadline, resolver: Resolver) -> socket.socket:
    """Like socket.create_connection: the endpoint's addresses in turn until one accepts, but the lookup and
    every address get only the time left of the one deadline."""
    addresses = _resolve(endpoint, deadline, resolver)
    error = ProbeError("connect_timeout", f"no time left to connect within the {deadline.seconds:g} s deadline")
    for family, kind, proto, _canonical_name, sockaddr in addresses:
        left = deadline.remaining()
        if left <= 0:
            break
        sock = socket.socket(family, kind, proto)
        sock.settimeout(left)
        try:
            sock.connect(sockaddr)
            return sock
        except socket.timeout:
            error = ProbeError("connect_timeout", f"no TCP answer from {sockaddr[0]} within the "
                                                  f"{deadline.seconds:g} s deadline (a firewall dropping packets?)")
        except ConnectionRefusedError:
            error = ProbeError("connect_refused", f"{sockaddr[0]} refused the connection to port {endpoint.port} "
                                                  "(is the service listening there?)")
        except OSError as exc:
            error = ProbeError("connect_failed", f"cannot connect to {sockaddr[0]}: {exc}")
        sock.close()
    raise error


def _proxy_header(version: str, sock: socket.socket) -> bytes:
    """HAProxy PROXY header for this connection: our own address as the source, the server's as destination."""
    source, source_port = sock.getsockname()[:2]
    target, target_port = sock.getpeername()[:2]
    source, target = source.split("%")[0], target.split("%")[0]
    family = socket.AF_INET6 if sock.family == socket.AF_INET6 else socket.AF_INET
    if version == "v1":
        name = "TCP6" if family == socket.AF_INET6 else "TCP4"
        return f"PROXY {name} {source} {target} {source_port} {target_port}\r\n".encode("ascii")
    body = (socket.inet_pton(family, source) + socket.inet_pton(family, target)
            + struct.pack("!HH", source_port, target_port))
    # 0x21: version 2, command PROXY; 0x11 / 0x21: TCP over IPv4 / IPv6.
    transport = 0x21 if family == socket.AF_INET6 else 0x11
    return PROXY_V2_SIGNATURE + bytes((0x21, transport)) + struct.pack("!H", len(body)) + body


# The handshake with Python's ssl

@functools.cache
def _context(key_type: Optional[str]) -> ssl.SSLContext:
    """One client context per key type, shared by every probe and thread: making one costs about 0.4 ms of CPU,
    a tenth of a whole probe."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Report the chain as sent, trusted or not: judging it is the analysis's job, and it needs the chain to do so.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if key_type:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(KEY_TYPE_CIPHERS[key_type])
    return context


def _handshake_failure(reason: str, detail: str) -> ProbeError:
    """The error for a failed handshake; reason is OpenSSL's reason code (WRONG_VERSION_NUMBER), or empty."""
    if not reason or reason == "UNEXPECTED_EOF_WHILE_READING":
        what = f"the connection ended during the TLS handshake ({detail})"
    elif "ALERT" in reason:
        what = f"the server answered with the TLS alert {reason}"
    elif reason == "WRONG_VERSION_NUMBER":
        what = "the server's answer is not TLS (WRONG_VERSION_NUMBER): it still speaks plaintext"
    else:
        what = f"the TLS handshake failed: {reason}"
    return ProbeError("tls_handshake_failed", what)


def _unverified_chain(tls: ssl.SSLSocket) -> tuple[bytes, ...]:
    """Every certificate the server sent, leaf first, in its order: verified or not."""
    public = getattr(tls, "get_unverified_chain", None)
    if public is not None:
        return tuple(public())
    return tuple(cert.public_bytes(ssl._ssl.ENCODING_DER) for cert in tls._sslobj.get_unverified_chain() or ())


def _ssl_handshake(sock: socket.socket, endpoint: Endpoint, deadline: Deadline) -> tuple:
    """TLS handshake on sock with Python's ssl: (chain, version, cipher)."""
    # CPython's do_handshake counts its socket timeout as a deadline for the whole handshake, so a server that
    # drips its ServerHello cannot stretch it.
    context = _context(endpoint.key_type)
    deadline.arm(sock, "before the TLS handshake")
    try:
        with context.wrap_socket(sock, server_hostname=endpoint.sni, do_handshake_on_connect=False) as tls:
            tls.do_handshake()
            return _unverified_chain(tls), tls.version(), tls.cipher()[0]
    except (socket.timeout, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        # CPython treats a time left of exactly 0 as a non-blocking socket and raises SSLWant*Error instead of a
        # timeout: with a socket timeout set, either means the deadline ended the handshake.
        raise deadline.expired("during the TLS handshake") from None
    except OSError as exc:
        raise _handshake_failure(getattr(exc, "reason", None) or "", str(exc)) from None


# The handshake with the openssl command, for Pythons that cannot read the chain

class _Relay:
    """A private Unix socket that openssl s_client connects to, relayed to our socket after our own dialogue.

    This way the connect, the PROXY header and the STARTTLS dialogue are the same code, with the same error
    codes, whichever way the handshake is done; only the handshake itself is left to openssl.
    """

    def __init__(self, upstream: socket.socket, deadline: Deadline) -> None:
        self._upstream, self._deadline = upstream, deadline
        self._directory = tempfile.mkdtemp(prefix="mailops-probe-")  # mode 0700: no other user can connect
        self.path = os.path.join(self._directory, "s")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(self.path)
            self._listener.listen(1)
        except OSError as exc:  # e.g. a TMPDIR too long for a Unix socket's path
            self._listener.close()
            shutil.rmtree(self._directory, ignore_errors=True)
            raise ProbeError("probe_unsupported", f"cannot make a socket for openssl s_client at {self.path}: {exc} "
                                                  "(set TMPDIR to a short path)") from None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        with contextlib.suppress(OSError):  # shutdown wakes an accept() still waiting when openssl never came
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(max(self._deadline.remaining(), 0) + 1)
        shutil.rmtree(self._directory, ignore_errors=True)

    def _run(self) -> None:
        try:
            self._deadline.arm(self._listener, "waiting for openssl")
            client = self._listener.accept()[0]
        except (OSError, ProbeError):
            return
        with client:
            self._pump(client)

    def _pump(self, client: socket.socket) -> None:
        """Copy bytes both ways until one side closes or the deadline passes."""
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, self._upstream)
            selector.register(self._upstream, selectors.EVENT_READ, client)
            while self._deadline.remaining() > 0:
                for key, _events in selector.select(self._deadline.remaining()):
                    try:
                        self._deadline.arm(key.fileobj, "relaying")
                        self._deadline.arm(key.data, "relaying")
                        data = key.fileobj.recv(65536)
                        if not data:
                            return
                        key.data.sendall(data)
                    except (OSError, ProbeError):
                        return


_S_CLIENT_SESSION = re.compile(r"^New, (\S+), Cipher is (\S+)", re.MULTILINE)
# OpenSSL 1.1.1 and 3.x error lines: ...:error:<code>:<library>:<function>:<reason text>:<file>:<line>:...
_S_CLIENT_REASON = re.compile(r":error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+):")
_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _s_client_command(openssl: str, path: str, endpoint: Endpoint) -> list[str]:
    command = [openssl, "s_client", "-unix", path, "-showcerts"]
    command += ["-servername", endpoint.sni] if endpoint.sni else ["-noservername"]
    if endpoint.key_type:
        command += ["-tls1_2", "-cipher", KEY_TYPE_CIPHERS[endpoint.key_type]]
    return command


def _openssl_handshake(openssl: str, sock: socket.socket, endpoint: Endpoint, deadline: Deadline) -> tuple:
    """TLS handshake through `openssl s_client -showcerts`: (chain, version, cipher)."""
    with _Relay(sock, deadline) as relay:
        left = deadline.remaining()
        if left <= 0:
            raise deadline.expired("before the TLS handshake")
        try:
            done = subprocess.run(_s_client_command(openssl, relay.path, endpoint), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, errors="replace", timeout=left, check=False)
        except subprocess.TimeoutExpired:
            raise deadline.expired("during the TLS handshake (openssl s_client)") from None
        except OSError as exc:
            raise ProbeError("probe_unsupported", f"cannot run {openssl}: {exc}") from None
    session = _S_CLIENT_SESSION.search(done.stdout)
    chain = tuple(ssl.PEM_cert_to_DER_cert(pem) for pem in _PEM_CERTIFICATE.findall(done.stdout))
    if chain and session and session.group(1) != "(NONE)":
        return chain, session.group(1), session.group(2)
    if deadline.remaining() <= 0:  # the relay ends at the deadline, and openssl may notice before its timeout
        raise deadline.expired("during the TLS handshake (openssl s_client)")
    raise _s_client_failure(done.stderr)


def _s_client_failure(stderr: str) -> ProbeError:
    """The same error as Python's ssl gives, from s_client's error lines (reason text to reason code)."""
    reasons = _S_CLIENT_REASON.findall(stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    reason = reasons[-1].upper().replace(" ", "_") if reasons else ""
    return _handshake_failure(reason, f"openssl s_client: {lines[-1] if lines else 'no certificate'}")


def _handshaker(backend: str) -> Callable[[socket.socket, Endpoint, Deadline], tuple]:
    """The handshake function for backend, or ProbeError probe_unsupported when this host has none."""
    if backend == "ssl" or (backend == "auto" and CHAIN_CAPTURE):
        if not CHAIN_CAPTURE:
            raise ProbeError("probe_unsupported", f"Python {sys.version_info[0]}.{sys.version_info[1]} cannot read "
                                                  "the certificate chain a server sends (3.10 or newer can)")
        return _ssl_handshake
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ProbeError("probe_unsupported", f"Python {sys.version_info[0]}.{sys.version_info[1]} on this host "
                                              "cannot read the certificate chain a server sends and there is no "
                                              "openssl command: run the probe on the controller "
                                              "(delegate_to: localhost) or install openssl")
    return functools.partial(_openssl_handshake, openssl)


# The leaf's key type, from its DER (stdlib only: probes run where cryptography may be missing)

# The same names as certs.key_description; an RSASSA-PSS-only key is still an RSA key.
_KEY_ALGORITHMS = {"1.2.840.113549.1.1.1": "rsa", "1.2.840.113549.1.1.10": "rsa", "1.2.840.10045.2.1": "ecdsa",
                   "1.3.101.112": "ed25519", "1.3.101.113": "ed448", "1.2.840.10040.4.1": "dsa"}


def _leaf_key_type(leaf: bytes) -> Optional[str]:
    """Key type of a DER certificate's public key, None if unknown or unreadable."""
    try:
        spki = der.parse_certificate(leaf).spki
        algorithm = der.read_tlv(spki, 0)[1]  # SubjectPublicKeyInfo starts with the AlgorithmIdentifier
        oid = der.read_tlv(spki, algorithm)[1]  # which starts with the algorithm's OID
        _tag, start, end = der.read_tlv(spki, oid)
        return _KEY_ALGORITHMS.get(der.decode_oid(spki[start:end]))
    except der.DerError:
        return None


# The public API

def _check_call(timeout: float, backend: str) -> None:
    if not timeout > 0:
        raise InputError(f"probe timeout must be a positive number of seconds, not {timeout!r}")
    if backend not in BACKENDS:
        raise InputError(f"probe backend {backend!r} is not one of {', '.join(BACKENDS)}")


def _exchange(sock: socket.socket, endpoint: Endpoint, deadline: Deadline, handshake: Callable) -> tuple:
    """PROXY header, dialogue, handshake on a connected socket: (chain, version, cipher) or ProbeError."""
    if endpoint.proxy_protocol:
        send(sock, deadline, _proxy_header(endpoint.proxy_protocol, sock), "the PROXY header")
    negotiate(endpoint.dialect, sock, deadline)
    return handshake(sock, endpoint, deadline)


def _failed(endpoint: Endpoint, deadline: Deadline, error: ProbeError, peer: Optional[str]) -> ProbeResult:
    return ProbeResult(endpoint, False, error_code=error.code, error_message=f"{endpoint}: {error}",
                       seconds=deadline.elapsed(), peer_address=peer)


def probe(endpoint: Endpoint, timeout: float, *, backend: str = "auto",
          resolver: Resolver = system_resolver) -> ProbeResult:
    """Probe one endpoint within timeout seconds in total, name lookup included; network trouble is reported,
    never raised. A name is tried address by address until one accepts the connection.

    backend: 'ssl' (Python 3.10+), 'openssl' (the openssl command), or 'auto' (ssl where it can read chains).
    """
    _check_call(timeout, backend)
    deadline = Deadline(timeout)
    peer = None
    try:
        handshake = _handshaker(backend)  # before connecting: a probe that cannot read chains connects nowhere
        with _connect(endpoint, deadline, resolver) as sock:
            peer = sock.getpeername()[0]
            chain, version, cipher = _exchange(sock, endpoint, deadline, handshake)
    except OSError as exc:  # a network error between the steps, e.g. the peer vanished right after connecting
        return _failed(endpoint, deadline, ProbeError("protocol_error", f"the connection failed: {exc}"), peer)
    except ProbeError as exc:
        return _failed(endpoint, deadline, exc, peer)
    return ProbeResult(endpoint, True, chain, version, cipher, seconds=deadline.elapsed(),
                       key_type=_leaf_key_type(chain[0]) if chain else None, peer_address=peer)


def _every_address(endpoint: Endpoint, timeout: float, resolver: Resolver) -> Union[list[Endpoint], ProbeResult]:
    """An endpoint with every_address as one endpoint per address of its name (the name stays the server name,
    so SNI and the identity check are unchanged), or the failed result of the lookup."""
    if not endpoint.every_address:
        return [endpoint]
    deadline = Deadline(timeout)
    try:
        addresses = _resolve(endpoint, deadline, resolver)
    except ProbeError as exc:
        return _failed(endpoint, deadline, exc, None)
    name = endpoint.server_name or (None if _is_ip(endpoint.address) else endpoint.address)
    return [replace(endpoint, address=entry[4][0], server_name=name, every_address=False) for entry in addresses]


def probe_many(endpoints: Sequence[Endpoint], timeout: float, concurrency: int, key_types: Sequence[str] = (),
               *, backend: str = "auto", resolver: Resolver = system_resolver) -> list[ProbeResult]:
    """Probe endpoints in a pool of concurrency threads; results in input order, each endpoint once per key type,
    and an endpoint with every_address once per address of its name (in the resolver's order).

    Every probe has its own deadline of timeout seconds, so one hostile endpoint holds one thread for at most
    that long and never delays the others beyond it; the lookups of every_address endpoints come first, each
    within a deadline of its own.
    """
    groups = probe_sampled([(endpoint, ONCE) for endpoint in endpoints], timeout, concurrency, key_types,
                           backend=backend, resolver=resolver)
    return [result for group in groups for result in group]


@dataclass(frozen=True)
class Sampling:
    """How often to probe an endpoint that may hand each connection to another server (a load balancer)."""

    backends: int  # servers behind it: sampling stops once that many different chains were seen
    probes: int  # the bound: at most this many probes, one at a time

    def __post_init__(self) -> None:
        for field, value in (("backends", self.backends), ("probes", self.probes)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"load balancer sampling: {field} must be a whole number of at least 1, "
                                 f"not {value!r}")


ONCE = Sampling(backends=1, probes=1)


def default_probes(backends: int) -> int:
    """Probes that reach every one of backends servers chosen at random with 99% certainty (n * ln(100 n),
    the union bound of the coupon collector); a round-robin balancer needs only n."""
    return max(1, math.ceil(backends * math.log(100 * backends)))


def sample(endpoint: Endpoint, sampling: Sampling, timeout: float, *, backend: str = "auto",
           resolver: Resolver = system_resolver) -> tuple[ProbeResult, ...]:
    """Probe endpoint one connection at a time until sampling.backends different chains answered (every server
    behind it has then been seen) or sampling.probes probes were made. Sampled results carry their number."""
    results: list[ProbeResult] = []
    chains: set = set()
    for number in range(1, sampling.probes + 1):
        result = probe(endpoint, timeout, backend=backend, resolver=resolver)
        if sampling != ONCE:
            result = replace(result, sample=number)
        results.append(result)
        if result.ok:
            chains.add(result.chain_der)
        if len(chains) >= sampling.backends:
            break
    return tuple(results)


def probe_sampled(jobs: Sequence[tuple[Endpoint, Sampling]], timeout: float, concurrency: int,
                  key_types: Sequence[str] = (), *, backend: str = "auto", resolver: Resolver = system_resolver
                  ) -> list[tuple[ProbeResult, ...]]:
    """Sample each endpoint (once per key type, and an every_address endpoint once per address of its name) in a
    pool of concurrency threads; results in input order.

    The probes of one endpoint run one after another (a round-robin balancer then hands each to the next
    server); different endpoints run side by side, each probe within its own deadline of timeout seconds; the
    lookups of every_address endpoints come first, each within a deadline of its own."""
    _check_call(timeout, backend)
    if not isinstance(concurrency, int) or concurrency < 1:
        raise InputError(f"probe concurrency must be a whole number of at least 1, not {concurrency!r}")
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mailops-probe") as pool:
        expanded = list(pool.map(lambda job: _every_address(job[0], timeout, resolver), jobs))
        # (endpoint, sampling) to sample, or the failed lookup of an every_address endpoint as its result
        work: list = []
        for (_endpoint, sampling), each in zip(jobs, expanded):
            work += [(address, sampling) for address in each] if isinstance(each, list) else [each]
        if key_types:
            work = [(replace(item[0], key_type=key_type), item[1]) if isinstance(item, tuple)
                    else replace(item, endpoint=replace(item.endpoint, key_type=key_type))
                    for item in work for key_type in key_types]
        sampled = iter(pool.map(lambda item: sample(item[0], item[1], timeout, backend=backend, resolver=resolver),
                                [item for item in work if isinstance(item, tuple)]))
        return [next(sampled) if isinstance(item, tuple) else (item,) for item in work]
