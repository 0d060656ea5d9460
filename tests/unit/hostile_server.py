# SPDX-License-Identifier: GPL-3.0-or-later
"""A small threaded loopback server for probe tests, healthy or hostile as each test asks.

It speaks SMTP, LMTP, IMAP, POP3 or ManageSieve up to STARTTLS (or nothing, for implicit TLS), then a real TLS
handshake with chains from tests/pki.py. Behaviour says how it misbehaves: a silent, closing, endless, dripping
or slow greeting; STARTTLS not offered, refused, or answered with garbage or plaintext; a dripping handshake;
a required PROXY header. Nothing here is part of the collection.
"""
from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Optional

import pki

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
LIFETIME = 10  # seconds a connection may live: no test waits longer, and a stuck handler must end by itself


@dataclass(frozen=True)
class Behaviour:
    """How the server behaves; the defaults are a healthy server."""

    protocol: str = "smtp"  # smtp, lmtp, imap, pop3, sieve, or tls for implicit TLS
    greeting: str = "normal"  # normal, silent, close, endless, endless_line, drip, slow (SMTP: postscreen-like)
    starttls: str = "ok"  # ok, not_offered, rejected, garbage_reply, plaintext, extra_data
    capabilities_in_greeting: bool = False  # IMAP only: [CAPABILITY ...] in the greeting
    handshake: str = "ok"  # ok, or drip: a TLS record header, then one byte every drip_interval
    drip_interval: float = 1.0  # seconds between the bytes of a dripping greeting or handshake
    proxy: Optional[str] = None  # v1 or v2: require that PROXY header, checked against the real addresses
    # A refusal before STARTTLS, as REFUSALS lists per protocol: greeting, hello, bye, preauth, capa, starttls_bye
    refusal: str = ""


# protocol -> refusal -> (the line sent instead of the healthy one, what the healthy line was)
REFUSALS = {
    "smtp": {"greeting": b"554 5.3.2 mail.example.test no SMTP service here\r\n",
             "hello": b"502 5.5.2 Error: command not recognized\r\n"},
    "imap": {"greeting": b"* BYE Too many connections from your IP\r\n",
             "preauth": b"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] Logged in as mailuser\r\n",
             "bye": b"* BYE Server shutting down.\r\n"},
    "pop3": {"greeting": b"-ERR [SYS/TEMP] Service unavailable\r\n", "capa": b"-ERR Unknown command.\r\n"},
    "sieve": {"greeting": b'NO "Service unavailable"\r\n', "bye": b'BYE "Too many connections"\r\n',
              "starttls_bye": b'BYE "Server shutting down"\r\n'},
}


def server_context(*chains: list, by_name: Optional[dict] = None, alert: bool = False) -> ssl.SSLContext:
    """A TLS server context serving each chain (leaf first); by_name maps SNI names to other chains.

    alert: refuse every handshake with a handshake_failure alert, as a server with a broken TLS setup does.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for chain in chains:
        _load(context, chain)
    names_seen = []
    contexts = {name: server_context(chain) for name, chain in (by_name or {}).items()}

    def choose(tls, server_name, _context):
        names_seen.append(server_name)
        if alert:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        if server_name in contexts:
            tls.context = contexts[server_name]
        return None

    context.sni_callback = choose
    context.names_seen = names_seen  # SNI of every handshake, None where none was sent
    return context


def _load(context: ssl.SSLContext, chain: list) -> None:
    """Load a chain of pki.Issued (leaf first) and the leaf's key: ssl wants files for both."""
    with tempfile.TemporaryDirectory() as directory:
        certfile, keyfile = os.path.join(directory, "chain.pem"), os.path.join(directory, "key.pem")
        with open(certfile, "wb") as handle:
            handle.write(pki.pem_bundle(*chain))
        with open(keyfile, "wb") as handle:
            handle.write(chain[0].key_pem())
        context.load_cert_chain(certfile, keyfile)


class HostileServer:
    """Listens on host (a free port unless port is given); serves each connection per behaviour until stopped
    (use as a context). The same port on several 127/8 addresses makes backends of one service."""

    def __init__(self, context: Optional[ssl.SSLContext], behaviour: Behaviour = Behaviour(),
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.context, self.behaviour, self.host = context, behaviour, host
        self.proxy_headers_ok: list = []  # one bool per PROXY header received
        self._stop = threading.Event()
        self._threads: list = []
        self._connections: list = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((host, port))
        except OSError:
            self._listener.close()
            raise
        self.port = self._listener.getsockname()[1]

    def __enter__(self) -> HostileServer:
        self._listener.listen(16)
        self._listener.settimeout(0.5)  # so the accept loop sees a stop request even if shutdown did not wake it
        self._start(self._accept_loop)
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):  # wakes the accept loop at once
            self._listener.shutdown(socket.SHUT_RDWR)
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:  # handlers see the stop at once; LIFETIME bounds any that do not
            thread.join(0.5)
        self._listener.close()

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                connection = self._listener.accept()[0]
            except OSError:  # a timeout, or the shutdown of a stop
                continue
            self._connections.append(connection)
            self._start(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(LIFETIME)
            try:
                if self.behaviour.proxy and not self._proxy_header_ok(connection):
                    return
                if DIALOGUES[self.behaviour.protocol](self, connection):
                    self._tls(connection)
            except (OSError, ValueError):
                pass  # the client gave up or closed: nothing to serve any more

    # Before the dialogue

    def _proxy_header_ok(self, connection: socket.socket) -> bool:
        client, server = connection.getpeername(), connection.getsockname()
        if self.behaviour.proxy == "v1":
            kind = "TCP6" if connection.family == socket.AF_INET6 else "TCP4"
            expected = f"PROXY {kind} {client[0]} {server[0]} {client[1]} {server[1]}".encode()
            received = _readline(connection)
        else:
            family = connection.family
            body = (socket.inet_pton(family, client[0]) + socket.inet_pton(family, server[0])
                    + struct.pack("!HH", client[1], server[1]))
            transport = 0x21 if family == socket.AF_INET6 else 0x11
            expected = PROXY_V2_SIGNATURE + bytes((0x21, transport)) + struct.pack("!H", len(body)) + body
            received = _receive_exactly(connection, len(expected))
        self.proxy_headers_ok.append(received == expected)
        return received == expected

    def _greet(self, connection: socket.socket, greeting: bytes, endless_line: bytes = b"") -> bool:
        """Send the greeting the way behaviour.greeting says; False when the dialogue should not go on."""
        mode = self.behaviour.greeting
        if mode == "silent":
            self._stop.wait(LIFETIME)
        elif mode == "endless":
            for _line in range(100_000):
                connection.sendall(endless_line)
        elif mode == "endless_line":
            for _kilobyte in range(100_000):
                connection.sendall(b"x" * 1000)
        elif mode == "drip":
            for byte in greeting:
                connection.sendall(bytes((byte,)))
                if self._stop.wait(self.behaviour.drip_interval):
                    break
        elif mode == "slow":  # postscreen: the first line of a multi-line greeting, a pause, then the rest
            first = greeting.split(b"\r\n")[0]
            connection.sendall(first.replace(b" ", b"-", 1) + b"\r\n")
            self._stop.wait(2)
            connection.sendall(greeting)
        elif mode == "normal":
            connection.sendall(greeting)
        return mode in ("normal", "slow")

    def _answer_starttls(self, connection: socket.socket, go_ahead: bytes, refusal: bytes) -> bool:
        """Answer the client's STARTTLS; True when TLS should start."""
        mode = self.behaviour.starttls
        if mode == "rejected":
            connection.sendall(refusal)
        elif mode == "garbage_reply":
            connection.sendall(b"hello there, no TLS today\r\n")
        elif mode == "plaintext":
            connection.sendall(go_ahead)
            connection.recv(4096)  # the ClientHello
            connection.sendall(b"this is plaintext, not a ServerHello\r\n")
        elif mode == "extra_data":
            connection.sendall(go_ahead + b"injected\r\n")
        else:
            connection.sendall(go_ahead)
            return True
        _drain(connection)
        return False

    # The dialogues: each returns True when TLS should start

    def _refuse(self, connection: socket.socket, step: str) -> bool:
        """Send the refusal behaviour.refusal names when it is for this step of the dialogue; True if sent."""
        if self.behaviour.refusal != step:
            return False
        connection.sendall(REFUSALS[self.behaviour.protocol.replace("lmtp", "smtp")][step])
        _drain(connection)
        return True

    def _smtp(self, connection: socket.socket, hello: bytes = b"EHLO") -> bool:
        if self._refuse(connection, "greeting") or not self._greet(
                connection, b"220 mail.example.test ESMTP test\r\n", b"220-spam and more spam\r\n"):
            return False
        if not _readline(connection).upper().startswith(hello + b" ") or self._refuse(connection, "hello"):
            return False
        starttls = [] if self.behaviour.starttls == "not_offered" else [b"STARTTLS"]
        lines = [b"mail.example.test", b"PIPELINING", b"SIZE 10240000", *starttls, b"8BITMIME"]
        connection.sendall(b"".join(b"250-" + line + b"\r\n" for line in lines[:-1]) + b"250 " + lines[-1] + b"\r\n")
        if _readline(connection).upper() != b"STARTTLS":
            return False
        return self._answer_starttls(connection, b"220 2.0.0 Ready to start TLS\r\n",
                                     b"454 4.7.0 TLS not available due to local problem\r\n")

    def _lmtp(self, connection: socket.socket) -> bool:
        return self._smtp(connection, b"LHLO")

    def _imap(self, connection: socket.socket) -> bool:
        capabilities = b"IMAP4rev1 LITERAL+" + (b" STARTTLS" if self.behaviour.starttls != "not_offered" else b"")
        code = b"[CAPABILITY " + capabilities + b"] " if self.behaviour.capabilities_in_greeting else b""
        if self._refuse(connection, "greeting") or self._refuse(connection, "preauth") or not self._greet(
                connection, b"* OK " + code + b"Dovecot ready.\r\n"):
            return False
        tag, _space, command = _readline(connection).partition(b" ")
        if command.upper() == b"CAPABILITY" and self._refuse(connection, "bye"):
            return False
        if command.upper() == b"CAPABILITY":
            connection.sendall(b"* CAPABILITY " + capabilities + b"\r\n" + tag + b" OK done\r\n")
            tag, _space, command = _readline(connection).partition(b" ")
        if command.upper() != b"STARTTLS":
            return False
        return self._answer_starttls(connection, tag + b" OK Begin TLS negotiation now.\r\n",
                                     tag + b" NO [UNAVAILABLE] STARTTLS unavailable\r\n")

    def _pop3(self, connection: socket.socket) -> bool:
        if self._refuse(connection, "greeting") or not self._greet(connection, b"+OK Dovecot ready.\r\n"):
            return False
        if _readline(connection).upper() != b"CAPA" or self._refuse(connection, "capa"):
            return False
        stls = b"STLS\r\n" if self.behaviour.starttls != "not_offered" else b""
        connection.sendall(b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\n" + stls + b"USER\r\n.\r\n")
        if _readline(connection).upper() != b"STLS":
            return False
        return self._answer_starttls(connection, b"+OK Begin TLS negotiation now.\r\n", b"-ERR TLS not available\r\n")

    def _sieve(self, connection: socket.socket) -> bool:
        starttls = b'"STARTTLS"\r\n' if self.behaviour.starttls != "not_offered" else b""
        greeting = (b'"IMPLEMENTATION" "Dovecot Pigeonhole"\r\n"SIEVE" "fileinto reject envelope"\r\n' + starttls
                    + b'"VERSION" "1.0"\r\nOK "Dovecot ready."\r\n')
        if self.behaviour.refusal in ("greeting", "bye"):  # the capabilities, then NO or BYE instead of OK
            greeting = greeting.rsplit(b"OK", 1)[0]
            connection.sendall(greeting)
            return not self._refuse(connection, self.behaviour.refusal)
        if not self._greet(connection, greeting, b'"SPAM" "more"\r\n'):
            return False
        if _readline(connection).upper() != b"STARTTLS" or self._refuse(connection, "starttls_bye"):
            return False
        return self._answer_starttls(connection, b'OK "Begin TLS negotiation now."\r\n', b'NO "TLS unavailable"\r\n')

    def _implicit(self, connection: socket.socket) -> bool:
        if self.behaviour.greeting == "silent":
            self._stop.wait(LIFETIME)
        return self.behaviour.greeting not in ("silent", "close")

    # After the dialogue

    def _tls(self, connection: socket.socket) -> None:
        if self.behaviour.handshake == "drip":
            connection.recv(4096)  # the ClientHello
            connection.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record of 16 KiB, never finished
            while not self._stop.wait(self.behaviour.drip_interval):
                connection.sendall(b"\x02")
            return
        with self.context.wrap_socket(connection, server_side=True) as tls:
            _drain(tls)


DIALOGUES = {"smtp": HostileServer._smtp, "lmtp": HostileServer._lmtp, "imap": HostileServer._imap,
             "pop3": HostileServer._pop3, "sieve": HostileServer._sieve, "tls": HostileServer._implicit}


def _readline(connection: socket.socket) -> bytes:
    """One line without CRLF, byte by byte so nothing after it is consumed (TLS may follow)."""
    line = b""
    while not line.endswith(b"\n"):
        byte = connection.recv(1)
        if not byte or len(line) > 10_000:
            raise ValueError("client closed the connection or sent an endless line")
        line += byte
    return line.rstrip(b"\r\n")


def _receive_exactly(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _drain(connection: socket.socket) -> None:
    """Read until the client closes, so the server never closes first (which would look like a failure)."""
    while connection.recv(4096):
        pass


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def full_backlog():
    """A port whose accept queue is full, so a new SYN gets no answer: a connect timeout without leaving loopback."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        for _filler in range(3):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(listener.getsockname())
        time.sleep(0.1)
        yield listener.getsockname()[1]


def resolver_table(entries: dict):
    """A resolver for probe's resolver seam that answers from entries (name -> addresses, in order) as getaddrinfo
    would: no resolver of a test machine knows a name with both ::1 and a 127/8 address."""
    def resolve(host: str, port: int) -> list:
        if host not in entries:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [answer for address in entries[host] for answer in
                socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)]
    return resolve


def has_ipv6_loopback() -> bool:
    """Whether this machine has ::1 (containers may not)."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
