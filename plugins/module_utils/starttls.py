# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The plaintext dialogues that come before TLS: one small function per protocol, all bounded by one deadline.

Each dialogue reads whole replies (SMTP's ``250-`` continuation lines, IMAP's untagged lines, POP3's
dot-terminated CAPA list, ManageSieve's capability lines), checks that STARTTLS is offered before asking
for it, and returns once the server has agreed: the caller then starts the TLS handshake on the socket.
Failures raise ProbeError with a stable code; the caller adds which endpoint it was.
"""
from __future__ import annotations

import re
import socket
import time
from typing import Callable, Optional

from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError

# RFC 5321 caps a reply line at 512 octets; IMAP capability lines can be longer, so allow some room.
MAX_LINE = 4096
# A real EHLO or CAPABILITY reply has a few dozen lines; an endless one must fail now, not at the deadline.
MAX_LINES = 200

IMPLICIT_TLS = ("tls", "smtps", "imaps", "pop3s")
DEFAULT_PROTOCOL_BY_PORT = {25: "smtp", 587: "smtp", 465: "smtps", 143: "imap", 993: "imaps", 110: "pop3",
                            995: "pop3s", 4190: "sieve", 24: "lmtp"}


class ProbeError(MailTlsError):
    """One probe step failed: code is the stable error code, the message says what happened."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Deadline:
    """One point in time that bounds every blocking step of one probe, however many steps there are."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    def remaining(self) -> float:
        return self.start + self.seconds - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def expired(self, what: str) -> ProbeError:
        return ProbeError("timeout", f"no progress within the {self.seconds:g} s deadline {what}")

    def arm(self, sock: socket.socket, what: str) -> None:
        """Give sock's next blocking call only the time that is left (per-call timeouts would let a drip go on)."""
        left = self.remaining()
        if left <= 0:
            raise self.expired(what)
        sock.settimeout(left)


def send(sock: socket.socket, deadline: Deadline, data: bytes, what: str) -> None:
    """Send data within the deadline; what names it in errors."""
    deadline.arm(sock, f"while sending {what}")
    try:
        sock.sendall(data)
    except socket.timeout:
        raise deadline.expired(f"while sending {what}") from None
    except OSError as exc:
        raise ProbeError("protocol_error", f"connection lost while sending {what}: {exc}") from None


def _shown(line: str) -> str:
    """A server's line as quoted in a message: short, and with control characters visible."""
    return repr(line[:100] + ("..." if len(line) > 100 else ""))


class _Lines:
    """Reads CRLF lines of one dialogue within the deadline, the line length bound and the line count bound."""

    def __init__(self, sock: socket.socket, deadline: Deadline, protocol: str) -> None:
        self._sock = sock
        self._deadline = deadline
        self._protocol = protocol
        self._buffer = b""
        self._budget = MAX_LINES

    def read(self, what: str) -> str:
        """Return the next line without its line ending; what names the awaited reply in errors."""
        if self._budget == 0:
            raise ProbeError("protocol_error", f"the {self._protocol} server sent more than {MAX_LINES} lines "
                                               f"without completing the {what}")
        self._budget -= 1
        while b"\n" not in self._buffer and len(self._buffer) <= MAX_LINE:
            self._buffer += self._recv(what)
        line, found, rest = self._buffer.partition(b"\n")
        if not found or len(line) > MAX_LINE + 1:
            raise ProbeError("protocol_error", f"the {self._protocol} {what} has a line longer than {MAX_LINE} bytes")
        self._buffer = rest
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def send(self, command: str) -> None:
        send(self._sock, self._deadline, command.encode("ascii") + b"\r\n", command.split(" ")[0])

    def finish(self) -> None:
        """Bytes after the go-ahead and before our ClientHello are a broken server or an injection attempt."""
        if self._buffer:
            raise ProbeError("protocol_error", f"the {self._protocol} server sent data after agreeing to start TLS: "
                                               f"{_shown(self._buffer.decode('utf-8', 'replace'))}")

    def _recv(self, what: str) -> bytes:
        waiting = f"waiting for the {self._protocol} {what}"
        self._deadline.arm(self._sock, waiting)
        try:
            data = self._sock.recv(4096)
        except socket.timeout:
            raise self._deadline.expired(waiting) from None
        except OSError as exc:
            raise ProbeError("protocol_error", f"connection lost {waiting}: {exc}") from None
        if not data:
            raise ProbeError("protocol_error", f"the server closed the connection while {waiting}")
        return data


def _not_offered(protocol: str, where: str, offered: set) -> ProbeError:
    listed = ", ".join(sorted(offered)) or "nothing"
    return ProbeError("starttls_not_offered", f"the {protocol} server does not offer STARTTLS in its {where} "
                                              f"(it offers {listed}): enable TLS on this service")


def _rejected(protocol: str, line: str) -> ProbeError:
    return ProbeError("starttls_rejected", f"the {protocol} server refused STARTTLS: {_shown(line)} "
                                           "(a server whose key or certificate files are unusable answers so)")


def _unexpected(protocol: str, what: str, line: str) -> ProbeError:
    return ProbeError("protocol_error", f"unexpected {protocol} {what}: {_shown(line)} (is this port speaking "
                                        f"{protocol}? set the endpoint's protocol)")


# SMTP and LMTP (RFC 5321, RFC 2033, RFC 3207)

def _smtp_reply(lines: _Lines, protocol: str, what: str) -> tuple[int, list[str]]:
    """Read one possibly multi-line reply: its code and the text of each line."""
    texts = []
    while True:
        line = lines.read(what)
        code, separator = line[:3], line[3:4]
        if not code.isdigit() or separator not in ("", " ", "-"):
            raise _unexpected(protocol, what, line)
        texts.append(line[4:])
        if separator != "-":
            return int(code), texts


def _address_literal(sock: socket.socket) -> str:
    """Our own address as an RFC 5321 address literal: the right EHLO argument for a client without a name."""
    address = sock.getsockname()[0].split("%")[0]
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def _smtp_like(sock: socket.socket, deadline: Deadline, protocol: str, hello: str) -> None:
    lines = _Lines(sock, deadline, protocol)
    code, texts = _smtp_reply(lines, protocol, "greeting")
    if code != 220:
        raise ProbeError("protocol_error", f"the {protocol} server greeted with {code} {_shown(texts[-1])} "
                                           "instead of 220")
    lines.send(f"{hello} {_address_literal(sock)}")
    code, texts = _smtp_reply(lines, protocol, f"{hello} reply")
    if code != 250:
        raise ProbeError("protocol_error", f"the {protocol} server answered {hello} with {code} {_shown(texts[-1])}")
    keywords = {text.split(" ")[0].upper() for text in texts[1:] if text}
    if "STARTTLS" not in keywords:
        raise _not_offered(protocol, f"{hello} reply", keywords)
    lines.send("STARTTLS")
    code, texts = _smtp_reply(lines, protocol, "STARTTLS reply")
    if code == 220:
        lines.finish()
        return
    if 400 <= code < 600:
        raise _rejected(protocol, f"{code} {texts[-1]}")
    raise _unexpected(protocol, "STARTTLS reply", f"{code} {texts[-1]}")


def smtp(sock: socket.socket, deadline: Deadline) -> None:
    """SMTP: greeting 220 (slow or multi-line), EHLO, STARTTLS advertised, STARTTLS, 220."""
    _smtp_like(sock, deadline, "SMTP", "EHLO")


def lmtp(sock: socket.socket, deadline: Deadline) -> None:
    """LMTP: SMTP's dialogue with LHLO."""
    _smtp_like(sock, deadline, "LMTP", "LHLO")


# IMAP (RFC 9051, RFC 3501)

_IMAP_GREETING_CAPABILITY = re.compile(r"\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)


def _imap_tagged(lines: _Lines, tag: str, what: str) -> tuple[list[str], str]:
    """Read untagged lines up to the tagged completion: (untagged lines, completion status word)."""
    untagged = []
    while True:
        line = lines.read(what)
        if line.startswith("* "):
            if line[2:5].upper() == "BYE":
                raise ProbeError("protocol_error", f"the IMAP server ended the session: {_shown(line)}")
            untagged.append(line[2:])
        elif line.startswith(tag + " "):
            return untagged, line[len(tag) + 1:]
        else:
            raise _unexpected("IMAP", what, line)


def _imap_capabilities(lines: _Lines, greeting: str) -> set:
    """Capabilities from the greeting's response code when present (saves a round trip), else from CAPABILITY."""
    match = _IMAP_GREETING_CAPABILITY.search(greeting)
    if match:
        return set(match.group(1).upper().split())
    lines.send("a0 CAPABILITY")
    untagged, status = _imap_tagged(lines, "a0", "CAPABILITY reply")
    if not status.upper().startswith("OK"):
        raise _unexpected("IMAP", "CAPABILITY reply", status)
    words = set()
    for line in untagged:
        if line.upper().startswith("CAPABILITY "):
            words.update(line.upper().split()[1:])
    return words


def imap(sock: socket.socket, deadline: Deadline) -> None:
    """IMAP: greeting * OK, STARTTLS among the capabilities, a1 STARTTLS, tagged OK."""
    lines = _Lines(sock, deadline, "IMAP")
    greeting = lines.read("greeting")
    if greeting.upper().startswith("* PREAUTH"):
        raise ProbeError("starttls_not_offered", "the IMAP server greets with PREAUTH, and STARTTLS is only "
                                                 "allowed before authentication")
    if not greeting.upper().startswith("* OK"):
        raise _unexpected("IMAP", "greeting", greeting)
    capabilities = _imap_capabilities(lines, greeting)
    if "STARTTLS" not in capabilities:
        raise _not_offered("IMAP", "capabilities", capabilities)
    lines.send("a1 STARTTLS")
    status = _imap_tagged(lines, "a1", "STARTTLS reply")[1]
    word = status.split(" ")[0].upper()
    if word == "OK":
        lines.finish()
        return
    if word in ("NO", "BAD"):
        raise _rejected("IMAP", status)
    raise _unexpected("IMAP", "STARTTLS reply", status)


# POP3 (RFC 1939, RFC 2449, RFC 2595)

def pop3(sock: socket.socket, deadline: Deadline) -> None:
    """POP3: greeting +OK, CAPA list ending with '.', STLS in it, STLS, +OK."""
    lines = _Lines(sock, deadline, "POP3")
    greeting = lines.read("greeting")
    if not greeting.startswith("+OK"):
        raise _unexpected("POP3", "greeting", greeting)
    lines.send("CAPA")
    status = lines.read("CAPA reply")
    if status.startswith("-ERR"):
        raise ProbeError("starttls_not_offered", "the POP3 server does not support CAPA (RFC 2449), so it cannot "
                                                 "announce STLS: enable TLS on this service")
    if not status.startswith("+OK"):
        raise _unexpected("POP3", "CAPA reply", status)
    capabilities = set()
    for line in iter(lambda: lines.read("CAPA list"), "."):
        capabilities.add(line.split(" ")[0].upper())
    if "STLS" not in capabilities:
        raise _not_offered("POP3", "CAPA list", capabilities)
    lines.send("STLS")
    reply = lines.read("STLS reply")
    if reply.startswith("+OK"):
        lines.finish()
        return
    if reply.startswith("-ERR"):
        raise _rejected("POP3", reply)
    raise _unexpected("POP3", "STLS reply", reply)


# ManageSieve (RFC 5804)

def _sieve_capabilities(lines: _Lines) -> set:
    """The greeting: one quoted capability name per line (values follow it), ended by OK."""
    capabilities = set()
    while True:
        line = lines.read("capability greeting")
        if line.startswith('"'):
            capabilities.add(line[1:].split('"', 1)[0].upper())
            continue
        word = line.split(" ")[0].upper()
        if word == "OK":
            return capabilities
        if word in ("NO", "BYE"):
            raise ProbeError("protocol_error", f"the ManageSieve server refused the session: {_shown(line)}")
        raise _unexpected("ManageSieve", "capability greeting", line)


def sieve(sock: socket.socket, deadline: Deadline) -> None:
    """ManageSieve: capability lines then OK, "STARTTLS" among them, STARTTLS, OK."""
    lines = _Lines(sock, deadline, "ManageSieve")
    capabilities = _sieve_capabilities(lines)
    if "STARTTLS" not in capabilities:
        raise _not_offered("ManageSieve", "capability greeting", capabilities)
    lines.send("STARTTLS")
    reply = lines.read("STARTTLS reply")
    word = reply.split(" ")[0].upper()
    if word == "OK":
        lines.finish()
        return
    if word in ("NO", "BYE"):
        raise _rejected("ManageSieve", reply)
    raise _unexpected("ManageSieve", "STARTTLS reply", reply)


DIALOGUES: dict[str, Optional[Callable[[socket.socket, Deadline], None]]] = {
    "smtp": smtp, "lmtp": lmtp, "imap": imap, "pop3": pop3, "sieve": sieve,
    **{name: None for name in IMPLICIT_TLS},
}
PROTOCOLS = tuple(DIALOGUES)


def default_protocol(port: int) -> str:
    """The protocol a port speaks by convention; implicit TLS for ports without one."""
    return DEFAULT_PROTOCOL_BY_PORT.get(port, "tls")


def negotiate(protocol: str, sock: socket.socket, deadline: Deadline) -> None:
    """Run protocol's dialogue up to the server's go-ahead for TLS; implicit TLS protocols have none."""
    dialogue = DIALOGUES[protocol]
    if dialogue is not None:
        dialogue(sock, deadline)
