# SPDX-License-Identifier: GPL-3.0-or-later
"""A real mail lab on loopback: HAProxy (TCP mode) in front of N backends of real Postfix and Dovecot.

Front on 127.0.0.10, backends on 127.0.0.11, .12, ... (another base address can be given). Each backend
serves SMTP (25 STARTTLS, 587 STARTTLS, 465 implicit TLS) from its own Postfix instance and IMAP (143, 993),
POP3 (110, 995), ManageSieve (4190) and LMTP (24, STARTTLS) from its own Dovecot instance, each with its own
copy of the TLS files so one backend's chain can be swapped (``Lab.set_chain``). The front forwards every
port round-robin to all backends without terminating TLS.

Module use::

    lab = Lab("build/lab")
    lab.up(backends=3)
    lab.set_chain(0, chain_pem, key_pem)   # backend mx1 only
    lab.down()

CLI: ``python tests/lab/lab.py up|down|status|serve --dir build/lab ...`` (``--help`` for details).
Run as root: it adds addresses to ``lo`` and starts daemons. Daemons only ever listen on 127.0.0.0/8.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
DEFAULT_BASE = "127.0.0.10"
DOMAIN = "example.test"
SERVICE_NAMES = ("mail.example.test", "imap.example.test", "smtp.example.test")
MAX_BACKENDS = 9

#: service -> TCP port, the same on the front and on every backend.
PORTS = {"smtp": 25, "submission": 587, "smtps": 465, "imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995,
         "sieve": 4190, "lmtp": 24}
#: service -> (protocol, "starttls" or "implicit").
TLS_MODES = {"smtp": ("smtp", "starttls"), "submission": ("smtp", "starttls"), "smtps": ("smtp", "implicit"),
             "imap": ("imap", "starttls"), "imaps": ("imap", "implicit"), "pop3": ("pop3", "starttls"),
             "pop3s": ("pop3", "implicit"), "sieve": ("sieve", "starttls"), "lmtp": ("lmtp", "starttls")}

POSTFIX_QUEUE_DIRS = {  # name -> (owner, group, mode), as in /etc/postfix/postfix-files
    "": ("root", None, 0o755), "pid": ("root", None, 0o755),
    "maildrop": ("postfix", "postdrop", 0o730), "public": ("postfix", "postdrop", 0o710),
    **{d: ("postfix", None, 0o700)
       for d in ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private",
                 "saved", "trace")},
}
DAEMON_NAMES = {"postfix": "master", "dovecot": "dovecot", "haproxy": "haproxy"}
UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes; Dovecot puts sockets some levels below base_dir


class LabError(RuntimeError):
    """The lab could not be brought up, changed or torn down; the message names the log to read."""


# --------------------------------------------------------------------------------------------------------------
# Test PKI


def test_module(name: str, path: Path):
    """Import a file of the test tree as module name (the one already imported, if any)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pki_module():
    """tests/pki.py as module ``pki``."""
    return test_module("pki", HERE.parent / "pki.py")


distros = test_module("distro", HERE / "distro.py")


def load_issued(cert_pem: bytes, key_pem: Optional[bytes] = None):
    """Rebuild a ``pki.Issued`` from PEM files so a stored lab PKI can issue more certificates."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, None) if key_pem else None
    return pki_module().Issued(x509.load_pem_x509_certificate(cert_pem), key)


@dataclass
class LabPki:
    """The lab's default PKI: root -> intermediate -> leaf, as ``pki.Issued`` objects and PEM bytes."""

    root: object
    intermediate: object
    leaf: object

    PEM_FILES = ("root.pem", "root-key.pem", "intermediate.pem", "intermediate-key.pem", "leaf.pem", "key.pem")

    @classmethod
    def generate(cls, backends: int) -> LabPki:
        """A new PKI whose leaf names the service names and mx1..mxN.example.test."""
        names = (*SERVICE_NAMES, *(backend_hostname(n) for n in range(1, backends + 1)))
        hierarchy = pki_module().hierarchy(*names)
        return cls(hierarchy.root, hierarchy.intermediates[0], hierarchy.leaf)

    @classmethod
    def load(cls, directory: Path) -> LabPki:
        """Read the PKI written by ``write`` (raises OSError or ValueError when absent or broken)."""
        read = {name: (directory / name).read_bytes() for name in cls.PEM_FILES}
        return cls(load_issued(read["root.pem"], read["root-key.pem"]),
                   load_issued(read["intermediate.pem"], read["intermediate-key.pem"]),
                   load_issued(read["leaf.pem"], read["key.pem"]))

    def write(self, directory: Path) -> None:
        """Write root/intermediate/leaf PEMs, their keys, fullchain.pem and postfix-chain.pem (key+chain)."""
        files = {"root.pem": self.root.pem, "root-key.pem": self.root.key_pem(),
                 "intermediate.pem": self.intermediate.pem, "intermediate-key.pem": self.intermediate.key_pem(),
                 "leaf.pem": self.leaf.pem, "key.pem": self.leaf.key_pem(), "fullchain.pem": self.fullchain_pem,
                 "postfix-chain.pem": self.key_pem + self.fullchain_pem}
        for file_name, data in files.items():
            write_file(directory / file_name, data, 0o600 if "key" in file_name or "postfix" in file_name else 0o644)

    def covers(self, backends: int) -> bool:
        """True when the leaf names every mxN of ``backends`` backends and is valid for another week."""
        import datetime

        from cryptography import x509

        try:
            san = self.leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        wanted = {*SERVICE_NAMES, *(backend_hostname(n) for n in range(1, backends + 1))}
        expires = getattr(self.leaf.cert, "not_valid_after_utc", None) or \
            self.leaf.cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)  # cryptography < 42
        soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
        return wanted <= set(san.get_values_for_type(x509.DNSName)) and expires > soon

    @property
    def root_pem(self) -> bytes:
        return self.root.pem

    @property
    def intermediate_pem(self) -> bytes:
        return self.intermediate.pem

    @property
    def leaf_pem(self) -> bytes:
        return self.leaf.pem

    @property
    def key_pem(self) -> bytes:
        return self.leaf.key_pem()

    @property
    def fullchain_pem(self) -> bytes:
        """What every backend serves by default: leaf then intermediate, root excluded."""
        return self.leaf.pem + self.intermediate.pem


def key_matches(chain_pem: bytes, key_pem: bytes) -> bool:
    """True when key_pem is the private key of the first certificate in chain_pem."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(chain_pem)
    key = serialization.load_pem_private_key(key_pem, None)
    encoding, fmt = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(encoding, fmt) == key.public_key().public_bytes(encoding, fmt)


def chain_ders(chain_pem: bytes) -> list:
    """DER of every certificate in a PEM chain, in order."""
    end_marker = b"-----END CERTIFICATE-----"
    ders, position = [], 0
    while (start := chain_pem.find(b"-----BEGIN CERTIFICATE-----", position)) >= 0:
        position = chain_pem.index(end_marker, start) + len(end_marker)
        ders.append(ssl.PEM_cert_to_DER_cert(chain_pem[start:position].decode("ascii")))
    return ders


# --------------------------------------------------------------------------------------------------------------
# Small helpers


def write_file(path: Path, data, mode: int = 0o644, *, backdate: bool = False) -> None:
    """Write atomically (temporary file then rename) with the given mode.

    backdate: set the modification time a few seconds back. Postfix re-reads main.cf every 0.3 s for as long
    as its mtime is not in the past, so a just-written main.cf slows every postfix command by up to 2 s.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, mode)
    if backdate:
        past = time.time() - 5
        os.utime(tmp, (past, past))
    os.replace(tmp, path)


def backend_hostname(number: int) -> str:
    """mx1.example.test for backend number 1."""
    return f"mx{number}.{DOMAIN}"


def run(argv: Sequence[str], *, what: str, log: Optional[Path] = None, timeout: float = 30) -> str:
    """Run a command; on failure raise LabError with its output and the log file to read."""
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what}: timed out after {timeout}s: {' '.join(argv)}" + see_log(log)) from exc
    output = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise LabError(f"{what} failed (exit {done.returncode}): {' '.join(argv)}\n{output.strip()}" + see_log(log))
    return output


def run_logged(argv: Sequence[str], *, what: str, log: Path, timeout: float = 30) -> None:
    """Run a daemon launcher with stdout and stderr appended to log: daemons that keep stderr open (Dovecot)
    would otherwise hold our pipe open forever."""
    with open(log, "ab") as handle:
        try:
            code = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=handle, stderr=handle, timeout=timeout,
                                  check=False).returncode
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{what}: timed out after {timeout}s" + see_log(log)) from exc
    if code != 0:
        raise LabError(f"{what} failed (exit {code}): {' '.join(argv)}" + see_log(log))


def run_on_tty(argv: Sequence[str], *, what: str, log: Optional[Path] = None, timeout: float = 30) -> str:
    """Run a command under ``script`` so programs that print errors only to a terminal (postfix) show them."""
    command = " ".join(shlex.quote(str(a)) for a in argv)
    return run(["script", "-qec", command, "/dev/null"], what=what, log=log, timeout=timeout)


def see_log(log: Optional[Path]) -> str:
    """A hint naming a log file, with its last lines."""
    if log is None:
        return ""
    try:
        tail = log.read_text(errors="replace").splitlines()[-15:]
    except OSError:
        return f"\n(see {log}: not written)"
    return f"\n--- last lines of {log} ---\n" + "\n".join(tail)


def read_pid(pidfile: Path) -> Optional[int]:
    """The pid in pidfile, or None."""
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def proc_stat(pid: int) -> Optional[tuple]:
    """(command name, session id) of a live process, or None (zombies count as gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return comm, int(fields[3])


def session_members(session_ids: set) -> list:
    """Pids of live processes whose session id is in session_ids (a daemon and every child it forked)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[1] in session_ids:
                members.append(int(entry))
    return members


def can_connect(address: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to address:port succeeds."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def listeners(addresses: Sequence[str]) -> list:
    """'address:port' of TCP listeners on any of addresses, from ``ss -ltnH``."""
    output = run(["ss", "-ltnH"], what="ss")
    found = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            local = parts[3]
            host = local.rsplit(":", 1)[0]
            if host in addresses:
                found.append(local)
    return found


# --------------------------------------------------------------------------------------------------------------
# TLS probing (loopback only)


def client_context(cafile: Optional[Path] = None) -> ssl.SSLContext:
    """A verifying context for cafile, or a non-verifying one when cafile is None (to read what is served)."""
    if cafile is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=str(cafile))


def check_loopback(address: str) -> None:
    """Refuse any target outside 127.0.0.0/8: the lab never talks to anything else."""
    if not ipaddress.ip_address(address).is_loopback:
        raise LabError(f"refusing to connect to {address}: the lab only talks to 127.0.0.0/8")


def _read_line(sock, buffer: bytearray) -> bytes:
    while b"\n" not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise LabError("connection closed before the server answered")
        buffer += chunk
    line, _newline, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.rstrip(b"\r")


def _smtp_reply(sock, buffer: bytearray) -> bytes:
    """Read one (possibly multi-line) SMTP/LMTP reply; return its last line."""
    while True:
        line = _read_line(sock, buffer)
        if len(line) < 4 or line[3:4] != b"-":
            return line


def _sieve_reply(sock, buffer: bytearray) -> bytes:
    """Read ManageSieve lines up to the final OK/NO/BYE."""
    while True:
        line = _read_line(sock, buffer)
        if line[:2].upper() in (b"OK", b"NO") or line[:3].upper() == b"BYE":
            return line


def negotiate_starttls(sock: socket.socket, protocol: str) -> bytes:
    """Speak protocol up to the point where TLS starts; return the server greeting line."""
    buffer = bytearray()
    if protocol in ("smtp", "lmtp"):
        greeting = _smtp_reply(sock, buffer)
        sock.sendall(b"EHLO probe.example.test\r\n" if protocol == "smtp" else b"LHLO probe.example.test\r\n")
        _smtp_reply(sock, buffer)
        sock.sendall(b"STARTTLS\r\n")
        answer = _smtp_reply(sock, buffer)
        ok = answer.startswith(b"220")
    elif protocol == "imap":
        greeting = _read_line(sock, buffer)
        sock.sendall(b"a STARTTLS\r\n")
        answer = _read_line(sock, buffer)
        ok = answer.upper().startswith(b"A OK")
    elif protocol == "pop3":
        greeting = _read_line(sock, buffer)
        sock.sendall(b"STLS\r\n")
        answer = _read_line(sock, buffer)
        ok = answer.startswith(b"+OK")
    elif protocol == "sieve":
        greeting = _sieve_reply(sock, buffer)
        sock.sendall(b"STARTTLS\r\n")
        answer = _sieve_reply(sock, buffer)
        ok = answer.upper().startswith(b"OK")
    else:
        raise ValueError(f"unknown protocol {protocol}")
    if not ok:
        raise LabError(f"{protocol} STARTTLS refused: {answer.decode(errors='replace')}")
    return greeting


def tls_connect(address: str, service: str, *, port: Optional[int] = None, context: Optional[ssl.SSLContext] = None,
                server_hostname: str = "mail.example.test", timeout: float = 5) -> ssl.SSLSocket:
    """Connect to a lab service and complete its TLS handshake (implicit or STARTTLS); caller closes."""
    check_loopback(address)
    protocol, mode = TLS_MODES[service]
    sock = socket.create_connection((address, port or PORTS[service]), timeout=timeout)
    try:
        if mode == "starttls":
            negotiate_starttls(sock, protocol)
        return (context or client_context()).wrap_socket(sock, server_hostname=server_hostname)
    except BaseException:
        sock.close()
        raise


def served_chain(address: str, service: str, *, port: Optional[int] = None, timeout: float = 5) -> list:
    """DER certificates a lab service sends (leaf first), read without verifying."""
    with tls_connect(address, service, port=port, timeout=timeout) as tls:
        getter = getattr(tls, "get_unverified_chain", None) or getattr(tls._sslobj, "get_unverified_chain", None)
        if getter is None:  # very old Python: the leaf is all we can see
            return [tls.getpeercert(binary_form=True)]
        return [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in getter()]


def served_leaf(address: str, service: str, *, port: Optional[int] = None, timeout: float = 5) -> bytes:
    """DER of the leaf a lab service presents."""
    with tls_connect(address, service, port=port, timeout=timeout) as tls:
        return tls.getpeercert(binary_form=True)


# --------------------------------------------------------------------------------------------------------------
# One backend: Postfix + Dovecot


@dataclass
class Backend:
    """One backend (number 1 = mx1 on base+1) with its own Postfix and Dovecot and its own TLS files."""

    number: int
    address: str
    root: Path
    ports: dict = field(default_factory=lambda: dict(PORTS))
    distro: object = distros.HOST  # distro.Distro: where its Postfix and Dovecot come from

    @property
    def hostname(self) -> str:
        return backend_hostname(self.number)

    @property
    def name(self) -> str:
        return f"mx{self.number}"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def cert_file(self) -> Path:
        """Leaf + intermediate served by Dovecot (and the chain part of Postfix's file)."""
        return self.tls_dir / "fullchain.pem"

    @property
    def key_file(self) -> Path:
        return self.tls_dir / "key.pem"

    @property
    def chain_key_file(self) -> Path:
        """Key then chain in one file, for Postfix's smtpd_tls_chain_files (atomic swap)."""
        return self.tls_dir / "postfix-chain.pem"

    @property
    def postfix_dir(self) -> Path:
        return self.root / "postfix"

    @property
    def postfix_queue(self) -> Path:
        return self.root / "postfix-queue"

    @property
    def postfix_data(self) -> Path:
        return self.root / "postfix-data"

    @property
    def postfix_log(self) -> Path:
        return self.root / "postfix.log"

    @property
    def postfix_pidfile(self) -> Path:
        return self.postfix_queue / "pid" / "master.pid"

    @property
    def dovecot_conf(self) -> Path:
        return self.root / "dovecot" / "dovecot.conf"

    @property
    def dovecot_base(self) -> Path:
        return self.root / "dovecot-run"

    @property
    def dovecot_state(self) -> Path:
        return self.root / "dovecot-state"

    @property
    def dovecot_log(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def dovecot_pidfile(self) -> Path:
        return self.dovecot_base / "master.pid"

    @property
    def mail_dir(self) -> Path:
        return self.root / "mail"

    def log_for(self, service: str) -> Path:
        """The log file that explains a problem with service."""
        return self.postfix_log if TLS_MODES[service][0] == "smtp" else self.dovecot_log

    # ---- files

    def write_tls(self, chain_pem: bytes, key_pem: bytes) -> None:
        """Write this backend's served chain and key (Dovecot files and Postfix's key+chain file)."""
        write_file(self.key_file, key_pem, 0o600)
        write_file(self.cert_file, chain_pem, 0o644)
        write_file(self.chain_key_file, key_pem.rstrip(b"\n") + b"\n" + chain_pem, 0o600)

    def serves_files(self, chain_pem: bytes, key_pem: bytes) -> bool:
        """True when this backend's TLS files hold chain_pem and key_pem."""
        try:
            return self.cert_file.read_bytes() == chain_pem and self.key_file.read_bytes() == key_pem
        except OSError:
            return False

    def write_config(self, lab_dir: Path) -> None:
        """Write Postfix main.cf/master.cf, Dovecot's config, and the directories they need."""
        for directory in (self.postfix_dir, self.dovecot_conf.parent, self.dovecot_state, self.mail_dir):
            directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.mail_dir, 0o1777)
        for log in (self.postfix_log, self.dovecot_log):
            if log.exists():
                os.replace(log, log.with_name(log.name + ".prev"))  # this run's log starts empty
        write_file(self.postfix_dir / "main.cf", postfix_main_cf(self, lab_dir), backdate=True)
        write_file(self.postfix_dir / "master.cf", postfix_master_cf(self), backdate=True)
        write_file(self.dovecot_conf, dovecot_conf(self, dovecot_version(self.distro)))
        self.make_postfix_dirs()
        if len(str(self.dovecot_base)) > UNIX_SOCKET_MAX - 40:
            raise LabError(f"lab directory path too long for Dovecot's unix sockets: {self.dovecot_base}")

    def make_postfix_dirs(self) -> None:
        """Create the queue and data directories as postfix-files wants them (no slow `postfix check`)."""
        for sub, (owner, group, mode) in POSTFIX_QUEUE_DIRS.items():
            path = self.postfix_queue / sub if sub else self.postfix_queue
            path.mkdir(parents=True, exist_ok=True)
            gid = self.distro.group_id(group) if group else -1
            os.chown(path, self.distro.user_id(owner), gid)
            os.chmod(path, mode)
        self.postfix_data.mkdir(parents=True, exist_ok=True)
        os.chown(self.postfix_data, self.distro.user_id("postfix"), -1)
        os.chmod(self.postfix_data, 0o700)
        (self.postfix_queue / "quick-start").touch()  # skip postfix-script's slow checks on start

    # ---- daemons

    def start_postfix(self) -> None:
        """Start this backend's Postfix master (errors captured through a pseudo-terminal)."""
        (self.postfix_queue / "quick-start").touch()
        run_on_tty(self.distro.command(["postfix", "-c", str(self.postfix_dir), "start"]),
                   what=f"{self.name}: postfix start", log=self.postfix_log)

    def start_dovecot(self) -> None:
        """Start this backend's Dovecot (it daemonizes) with its output appended to dovecot.log."""
        run_logged(self.distro.command(["dovecot", "-c", str(self.dovecot_conf)]), what=f"{self.name}: dovecot start",
                   log=self.dovecot_log)

    def reload(self) -> None:
        """Make Postfix and Dovecot reread their configuration and TLS files."""
        run_on_tty(self.distro.command(["postfix", "-c", str(self.postfix_dir), "reload"]),
                   what=f"{self.name}: postfix reload", log=self.postfix_log)
        run(self.distro.command(["doveadm", "-c", str(self.dovecot_conf), "reload"]),
            what=f"{self.name}: doveadm reload", log=self.dovecot_log)

    def pidfiles(self) -> dict:
        return {"postfix": self.postfix_pidfile, "dovecot": self.dovecot_pidfile}


def postfix_main_cf(backend: Backend, lab_dir: Path) -> str:
    """main.cf of one lab Postfix instance: bound to the backend address, TLS from its own key+chain file."""
    return f"""\
# Generated by tests/lab/lab.py for lab backend {backend.name}
compatibility_level = 3.6
queue_directory = {backend.postfix_queue}
data_directory = {backend.postfix_data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-lab-{backend.name}
maillog_file = {backend.postfix_log}
maillog_file_prefixes = {lab_dir}
inet_interfaces = {backend.address}
inet_protocols = ipv4
myhostname = {backend.hostname}
mydomain = {DOMAIN}
myorigin = $myhostname
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_banner = $myhostname ESMTP mailops lab
smtpd_tls_chain_files = {backend.chain_key_file}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtp_tls_security_level = none
"""


def postfix_master_cf(backend: Backend) -> str:
    """master.cf of one lab Postfix instance: smtp/submission/smtps on the backend address, chroot off."""
    address = backend.address
    services = [
        f"{address}:25 inet n - n - - smtpd",
        f"{address}:587 inet n - n - - smtpd\n  -o syslog_name=postfix-lab-{backend.name}/submission"
        "\n  -o smtpd_tls_security_level=encrypt",
        f"{address}:465 inet n - n - - smtpd\n  -o syslog_name=postfix-lab-{backend.name}/smtps"
        "\n  -o smtpd_tls_wrappermode=yes",
        "pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
        "tlsmgr unix - - n 1000? 1 tlsmgr", "rewrite unix - - n - - trivial-rewrite",
        "bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce",
        "verify unix - - n - 1 verify", "flush unix n - n 1000? 0 flush", "proxymap unix - - n - - proxymap",
        "proxywrite unix - - n - 1 proxymap", "smtp unix - - n - - smtp", "relay unix - - n - - smtp",
        "showq unix n - n - - showq", "error unix - - n - - error", "retry unix - - n - - error",
        "discard unix - - n - - discard", "local unix - n n - - local", "virtual unix - n n - - virtual",
        "lmtp unix - - n - - lmtp", "anvil unix - - n - 1 anvil", "scache unix - - n - 1 scache",
        "postlog unix-dgram n - n - 1 postlogd",
    ]
    return f"# Generated by tests/lab/lab.py for lab backend {backend.name}\n" + "\n".join(services) + "\n"


#: Dovecot 2.3 setting -> its 2.4 name (2.4 takes a path where 2.3 took <path).
DOVECOT_24_FILE_SETTINGS = {"ssl_cert": "ssl_server_cert_file", "ssl_key": "ssl_server_key_file",
                            "ssl_ca": "ssl_server_ca_file", "ssl_alt_cert": "ssl_server_alt_cert_file",
                            "ssl_alt_key": "ssl_server_alt_key_file"}


def dovecot_version(distro) -> str:
    """'2.3' or '2.4': the configuration dialect of the Dovecot a distribution ships."""
    return ".".join(distro.run(["dovecot", "--version"]).split(".")[:2])


def dovecot_conf(backend: Backend, version: str) -> str:
    """dovecot.conf of one lab instance: own dirs, bound to the backend address, high-performance logins.

    Dovecot 2.4 renamed most settings (ssl_server_cert_file, mail_driver, restart_request_count, named
    passdb/userdb blocks) and wants its config version declared; the services are the same."""
    if version >= "2.4":
        return dovecot_conf_24(backend)
    dh = "ssl_dh = </usr/share/dovecot/dh.pem\n" if Path("/usr/share/dovecot/dh.pem").exists() else ""
    return f"""\
# Generated by tests/lab/lab.py for lab backend {backend.name} (Dovecot 2.3)
{dovecot_instance(backend)}ssl_cert = <{backend.cert_file}
ssl_key = <{backend.key_file}
{dh}ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{backend.mail_dir}/%u
passdb {{
  driver = static
  args = password=lab
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={backend.mail_dir}/%u
}}
protocol lmtp {{
  postmaster_address = postmaster@{DOMAIN}
}}
{dovecot_services("service_count = 0")}"""


def dovecot_conf_24(backend: Backend) -> str:
    """dovecot.conf of one lab instance for Dovecot 2.4: the same instance as dovecot_conf in 2.4's names."""
    return f"""\
# Generated by tests/lab/lab.py for lab backend {backend.name} (Dovecot 2.4)
dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
{dovecot_instance(backend)}ssl_server_cert_file = {backend.cert_file}
ssl_server_key_file = {backend.key_file}
ssl_min_protocol = TLSv1.2
auth_allow_cleartext = no
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
mail_driver = maildir
mail_path = {backend.mail_dir}/%{{user}}
passdb static {{
  password = lab
}}
userdb static {{
  fields {{
    uid = nobody
    gid = nogroup
    home = {backend.mail_dir}/%{{user}}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{DOMAIN}
}}
{dovecot_services("restart_request_count = unlimited")}"""


def dovecot_instance(backend: Backend) -> str:
    """The settings every Dovecot version names alike: the instance's own directories, address and greeting."""
    return f"""\
instance_name = mailops-lab-{backend.name}
base_dir = {backend.dovecot_base}
state_dir = {backend.dovecot_state}
listen = {backend.address}
protocols = imap pop3 lmtp sieve
log_path = {backend.dovecot_log}
hostname = {backend.hostname}
login_greeting = {backend.hostname} mailops lab ready.
ssl = yes
"""


def dovecot_services(reuse_logins: str) -> str:
    """The lab's Dovecot listeners; reuse_logins keeps login processes for many connections (2.3 and 2.4
    spell it differently), which makes TLS handshakes about eight times faster."""
    logins = {"imap": ("imap", "imaps"), "pop3": ("pop3", "pop3s"), "managesieve": ("sieve",)}
    blocks = []
    for login, listeners in logins.items():
        lines = [f"service {login}-login {{", f"  {reuse_logins}", "  process_min_avail = 1"]
        for listener in listeners:
            lines += [f"  inet_listener {listener} {{", f"    port = {PORTS[listener]}"]
            lines += ["    ssl = yes"] if TLS_MODES[listener][1] == "implicit" else []
            lines += ["  }"]
        blocks.append("\n".join([*lines, "}"]))
    blocks.append(f"service lmtp {{\n  inet_listener lmtp {{\n    port = {PORTS['lmtp']}\n  }}\n}}")
    return "\n".join(blocks) + "\n"


def haproxy_cfg(front: str, backends: Sequence[Backend], pidfile: Path) -> str:
    """HAProxy in TCP mode: every lab port on the front, round-robin to every backend, TLS untouched."""
    lines = [
        "# Generated by tests/lab/lab.py",
        "global",
        f"    pidfile {pidfile}",
        "    maxconn 4000",
        "defaults",
        "    mode tcp",
        "    balance roundrobin",
        "    timeout connect 3s",
        "    timeout client 5m",
        "    timeout server 5m",
    ]
    for service, port in PORTS.items():
        lines += ["", f"listen {service}", f"    bind {front}:{port}"]
        lines += [f"    server {b.name} {b.address}:{port}" for b in backends]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------------
# The lab


class Lab:
    """The whole lab in one directory: PKI files, backend dirs, HAProxy config, pidfiles and logs."""

    STATE = "lab.json"

    def __init__(self, directory, base: Optional[str] = None, distro: Optional[str] = None):
        self.dir = Path(directory).resolve()
        state = self._read_state()
        self.base = ipaddress.ip_address(base or state.get("base") or DEFAULT_BASE)
        if not self.base.is_loopback or self.base.version != 4:
            raise LabError(f"base address {self.base} is not in 127.0.0.0/8")
        try:
            self.distro = distros.distro(distro or state.get("distro") or distros.HOST.name)
        except distros.DistroError as exc:
            raise LabError(str(exc)) from None
        self.backends = self._make_backends(state.get("backends", 0))
        self._pki: Optional[LabPki] = None
        self._dovecot_version: Optional[str] = None

    # ---- layout

    @property
    def front_address(self) -> str:
        return str(self.base)

    @property
    def ports(self) -> dict:
        """service -> port, the same on the front and on every backend."""
        return dict(PORTS)

    @property
    def addresses(self) -> list:
        """The front address then every backend address."""
        return [self.front_address, *(b.address for b in self.backends)]

    @property
    def dovecot_version(self) -> str:
        """'2.3' or '2.4': the configuration dialect of this lab's Dovecot."""
        if self._dovecot_version is None:
            self._dovecot_version = dovecot_version(self.distro)
        return self._dovecot_version

    def dovecot_file_setting(self, setting: str, path) -> str:
        """A Dovecot line naming a PEM file, in this lab's dialect: setting is the 2.3 name (ssl_cert, ssl_key,
        ssl_ca, ssl_alt_cert, ssl_alt_key)."""
        if self.dovecot_version >= "2.4":
            return f"{DOVECOT_24_FILE_SETTINGS[setting]} = {path}"
        return f"{setting} = <{path}"

    @property
    def haproxy_cfg(self) -> Path:
        return self.dir / "haproxy" / "haproxy.cfg"

    @property
    def haproxy_pidfile(self) -> Path:
        return self.dir / "haproxy" / "haproxy.pid"

    @property
    def haproxy_log(self) -> Path:
        return self.dir / "haproxy" / "haproxy.log"

    @property
    def root_file(self) -> Path:
        """The lab root CA: the trust anchor clients use."""
        return self.dir / "root.pem"

    @property
    def pki(self) -> LabPki:
        """The lab's default PKI (loaded from the lab dir when another process made it)."""
        if self._pki is None:
            self._pki = LabPki.load(self.dir)
        return self._pki

    def _make_backends(self, count: int) -> list:
        if not 0 <= count <= MAX_BACKENDS:
            raise LabError(f"backends must be between 1 and {MAX_BACKENDS}, not {count}")
        return [Backend(n, str(self.base + n), self.dir / f"mx{n}", distro=self.distro) for n in range(1, count + 1)]

    def backend(self, which) -> Backend:
        """A Backend from itself, its index in .backends (0 = mx1) or its name ('mx1')."""
        if isinstance(which, Backend):
            return which
        if isinstance(which, str):
            return next(b for b in self.backends if b.name == which)
        return self.backends[which]

    # ---- state

    def _read_state(self) -> dict:
        try:
            return json.loads((self.dir / self.STATE).read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, running: bool) -> None:
        state = {"base": self.front_address, "backends": len(self.backends), "distro": self.distro.name,
                 "running": running,
                 "front": self.front_address, "ports": PORTS,
                 "backend_addresses": [b.address for b in self.backends]}
        write_file(self.dir / self.STATE, json.dumps(state, indent=2) + "\n")

    # ---- up

    def up(self, backends: int = 3, *, timeout: float = 30) -> Lab:
        """Bring the lab up (restarting it cleanly if it runs); wait until every port accepts TLS clients."""
        require_root(self.distro)
        if self.processes():
            Lab(self.dir).down()  # as recorded: it may have run on another base address
        self.backends = self._make_backends(backends)
        if not self.backends:
            raise LabError("a lab needs at least one backend")
        if not self.distro.shares(self.dir):
            raise LabError(f"a {self.distro.name} lab's directory must be under /tmp, which its root shares with this "
                           f"machine: {self.dir} is not")
        self.dir.mkdir(parents=True, exist_ok=True)
        check_traversable(self.dir)
        self._check_free()
        self._prepare_pki()
        for backend in self.backends:
            backend.write_tls(self.pki.fullchain_pem, self.pki.key_pem)
            backend.write_config(self.dir)
        write_file(self.haproxy_cfg, haproxy_cfg(self.front_address, self.backends, self.haproxy_pidfile))
        self.haproxy_log.unlink(missing_ok=True)
        self._write_state(running=True)
        try:
            self._add_addresses()
            self._start_daemons()
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.down(check=False)
            raise
        return self

    def _check_free(self) -> None:
        """Fail early when something else (another lab?) already listens on the lab addresses."""
        busy = listeners(self.addresses)
        if busy:
            raise LabError(f"already listening on lab addresses: {', '.join(busy)} (another lab? "
                           f"`python {Path(__file__)} down --dir DIR` it, or use --base)")

    def _prepare_pki(self) -> None:
        """Reuse the PKI in the lab dir when it still fits, else generate and write a new one."""
        try:
            existing = LabPki.load(self.dir)
        except (OSError, ValueError):
            existing = None
        if existing is not None and existing.covers(len(self.backends)):
            self._pki = existing
            return
        self._pki = LabPki.generate(len(self.backends))
        self._pki.write(self.dir)

    def _add_addresses(self) -> None:
        for address in self.addresses:
            run(["ip", "addr", "replace", f"{address}/32", "dev", "lo"], what=f"add {address} to lo")

    def _remove_addresses(self, addresses: Sequence[str]) -> None:
        present = run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], what="list lo addresses")
        for address in addresses:
            if f" {address}/32 " in present:
                run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], what=f"remove {address} from lo")

    def _start_daemons(self) -> None:
        """Start every Postfix, Dovecot and HAProxy at once; raise LabError naming the log of any failure."""
        run(self.distro.command(["haproxy", "-c", "-q", "-f", str(self.haproxy_cfg)]), what="haproxy config check",
            log=self.haproxy_log)
        starters = [b.start_postfix for b in self.backends] + [b.start_dovecot for b in self.backends]
        with ThreadPoolExecutor(max_workers=len(starters) + 1) as pool:
            futures = [pool.submit(start) for start in [*starters, self._start_haproxy]]
        errors = [str(f.exception()) for f in futures if f.exception() is not None]
        if errors:
            raise LabError("\n".join(errors))

    def _start_haproxy(self) -> None:
        """Start HAProxy as a daemon (it returns once it listens), output appended to haproxy.log."""
        run_logged(self.distro.command(["haproxy", "-D", "-f", str(self.haproxy_cfg)]), what="haproxy start",
                   log=self.haproxy_log)

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until every port of every backend and of the front accepts connections and backends speak TLS."""
        deadline = time.monotonic() + timeout
        targets = [(b.address, s, b.log_for(s)) for b in self.backends for s in PORTS]
        targets += [(self.front_address, s, self.haproxy_log) for s in PORTS]
        for address, service, log in targets:
            while not can_connect(address, PORTS[service]):
                if time.monotonic() > deadline:
                    raise LabError(f"{service} port {address}:{PORTS[service]} not accepting after {timeout}s"
                                   + see_log(log))
                time.sleep(0.05)
        for backend in self.backends:
            self.wait_serving(backend, chain_ders(self.pki.fullchain_pem), deadline=deadline, streak=1)

    # ---- chains

    def set_chain(self, which, chain_pem: bytes, key_pem: bytes, *, timeout: float = 15,
                  check_key: bool = True) -> None:
        """Serve chain_pem (leaf first, PEM) with key_pem on one backend only; return once it is served.

        which: index in .backends (0 = mx1), name or Backend. With check_key=False a key that does not match
        the leaf is written anyway (both daemons then fail TLS handshakes) and no wait happens.
        """
        backend = self.backend(which)
        matches = key_matches(chain_pem, key_pem)
        if check_key and not matches:
            raise LabError(f"{backend.name}: key does not match the first certificate of the chain")
        backend.write_tls(chain_pem, key_pem)
        backend.reload()
        if matches:
            self.wait_serving(backend, chain_ders(chain_pem), deadline=time.monotonic() + timeout)

    def reset_chain(self, which, *, timeout: float = 15) -> None:
        """Serve the lab's default chain again on one backend."""
        self.set_chain(which, self.pki.fullchain_pem, self.pki.key_pem, timeout=timeout)

    def reset_chains(self, *, timeout: float = 15) -> list:
        """Serve the default chain again on every backend whose files differ from it; return those backends."""
        changed = [b for b in self.backends if not b.serves_files(self.pki.fullchain_pem, self.pki.key_pem)]
        for backend in changed:
            self.reset_chain(backend, timeout=timeout)
        return changed

    def wait_serving(self, backend: Backend, chain: list, *, deadline: float, streak: int = 2) -> None:
        """Poll every TLS service of the backend until each presents chain (DER list, leaf first) `streak`
        handshakes in a row. The whole chain, not the leaf: a reload may change only the intermediates.

        Every service is probed: Postfix's smtpd processes and Dovecot's imap-login, pop3-login,
        managesieve-login and lmtp processes each restart on their own after a reload.
        """
        for service in PORTS:
            seen, last = 0, "nothing"
            while seen < streak:
                try:
                    current = served_chain(backend.address, service, timeout=2)
                    seen, last = (seen + 1, "it") if current == chain else (0, "another chain")
                except (OSError, LabError) as exc:
                    seen, last = 0, f"error: {exc}"
                if seen == 0:
                    if time.monotonic() > deadline:
                        raise LabError(f"{backend.name} {service} ({backend.address}:{PORTS[service]}) does not serve "
                                       f"the expected chain (got {last})" + see_log(backend.log_for(service)))
                    time.sleep(0.05)

    # ---- status and down

    def pidfiles(self) -> dict:
        """'mx1/postfix' etc. -> pidfile, for every backend directory on disk plus HAProxy."""
        found = {"haproxy": self.haproxy_pidfile}
        known = {b.name: b for b in self.backends}
        for path in sorted(self.dir.glob("mx[0-9]*")):
            if path.is_dir():
                backend = known.get(path.name) or Backend(int(path.name[2:]), "", path)
                found.update({f"{path.name}/{k}": v for k, v in backend.pidfiles().items()})
        return found

    def daemons(self) -> dict:
        """'mx1/postfix' etc. -> pid of the live daemon named by its pidfile."""
        alive = {}
        for label, pidfile in self.pidfiles().items():
            pid = read_pid(pidfile)
            stat = proc_stat(pid) if pid else None
            if stat and stat[0] == DAEMON_NAMES[label.rsplit("/", 1)[-1]]:
                alive[label] = pid
        return alive

    def processes(self) -> list:
        """Pids of every live lab process: the daemons and everything in their sessions."""
        daemons = set(self.daemons().values())
        return sorted(set(session_members(daemons)) | daemons) if daemons else []

    def status(self) -> dict:
        """This lab's live daemons, whether all of them run, and which ports accept connections.

        ``state`` is "up" (every daemon of this directory alive and every port accepting), "down" (none alive)
        or "partial". Ports alone prove nothing: another lab may hold the same addresses.
        """
        daemons = self.daemons()
        ports = {address: {s: can_connect(address, p, 0.3) for s, p in PORTS.items()} for address in self.addresses}
        expected = 1 + 2 * len(self.backends)
        all_ports = all(up for by_service in ports.values() for up in by_service.values())
        state = "down" if not daemons else "up" if len(daemons) == expected and all_ports else "partial"
        return {"dir": str(self.dir), "state": state, "front": self.front_address,
                "backends": [b.address for b in self.backends], "daemons": daemons, "ports": ports,
                "processes": len(self.processes())}

    def down(self, *, check: bool = True, timeout: float = 10) -> None:
        """Stop every lab daemon (TERM, then KILL), remove the lab addresses; verify nothing is left.

        A lab that this directory never brought up (no daemons, state not running) is left alone, so a failed
        ``up`` next to another running lab does not take that lab's addresses away.
        """
        daemons = set(self.daemons().values())
        if not daemons and not self._read_state().get("running"):
            return
        members = set(session_members(daemons)) | daemons if daemons else set()
        for pid in daemons:
            signal_pid(pid, signal.SIGTERM)
        wait_gone(members, timeout)
        for pid in session_members(daemons) if daemons else []:
            signal_pid(pid, signal.SIGKILL)
        wait_gone(members, 2)
        self._remove_addresses(self.addresses)
        self._write_state(running=False)
        if check:
            self.verify_down()

    def verify_down(self) -> None:
        """Raise LabError when a lab process or a listener on a lab address remains."""
        left = self.processes()
        if left:
            raise LabError(f"lab processes still running: {left}")
        busy = listeners(self.addresses)
        if busy:
            raise LabError(f"still listening on lab addresses: {', '.join(busy)}")


def signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_gone(pids: set, timeout: float) -> None:
    """Wait until none of pids is alive (zombies count as gone), at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while any(proc_stat(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def check_traversable(directory: Path) -> None:
    """The postfix, dovecot and dovenull users must reach the lab dir: every directory up to it needs o+x."""
    for path in (directory, *directory.parents):
        if not path.stat().st_mode & 0o001:
            raise LabError(f"{path} is not searchable by others (mode {path.stat().st_mode & 0o777:o}); the mail "
                           "daemons' users cannot reach the lab there: chmod o+x it or use another --dir")


def claim_base(backends: int = 3, preferred: Optional[str] = None):
    """Find a free lab base address and lock it for this process; return (base, lock file object).

    For test sessions that share a machine: tries preferred (or 127.0.0.10), then .30, .50, ... and takes the
    first whose addresses nobody listens on and whose lock (/run/lock/mailops-lab-BASE.lock, flock) no other
    live process holds. The lock lasts until the returned file is closed or the process ends.
    """
    import fcntl

    lock_dir = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
    candidates = [preferred] if preferred else []
    candidates += [f"127.0.0.{n}" for n in range(10, 255 - MAX_BACKENDS, 20) if f"127.0.0.{n}" != preferred]
    for base in candidates:
        handle = open(lock_dir / f"mailops-lab-{base}.lock", "w")  # noqa: SIM115 - returned to the caller
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        first = ipaddress.ip_address(base)
        if not listeners([str(first + n) for n in range(backends + 1)]):
            return base, handle
        handle.close()
    raise LabError("no free lab base address in 127.0.0.0/24")


def require_root(distro=distros.HOST) -> None:
    """Root, the host's tools, and the distribution's daemons (a foreign root is built if it is not cached)."""
    if os.geteuid() != 0:
        raise LabError("the lab must run as root (it adds addresses to lo and starts mail daemons)")
    daemons = ("postfix", "dovecot", "doveadm", "haproxy") if not distro.foreign else ()
    missing = [tool for tool in (*daemons, "ip", "script", "ss") if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing {', '.join(missing)}: run tests/lab/install.sh")
    try:
        distro.ensure()
    except distros.DistroError as exc:
        raise LabError(str(exc)) from None


# --------------------------------------------------------------------------------------------------------------
# CLI


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command, text in (("up", "bring the lab up (restart if running)"), ("down", "stop everything"),
                          ("status", "show daemons and ports (exit 0 all up, 3 all down, 1 partly)"),
                          ("serve", "serve another chain on one backend")):
        sub = commands.add_parser(command, help=text)
        sub.add_argument("--dir", default="build/lab", help="lab directory (default build/lab)")
        if command == "up":
            sub.add_argument("--backends", type=int, default=3)
            sub.add_argument("--base", help=f"front address, backends follow it (default {DEFAULT_BASE}); "
                             "'auto': the first free one of 127.0.0.10, .30, .50, ...")
            sub.add_argument("--timeout", type=float, default=30)
            sub.add_argument("--distro", choices=sorted(distros.DISTROS), default=distros.HOST.name,
                             help="where the daemons come from: this machine, or a cached Debian 13 root (trixie)")
        if command == "serve":
            sub.add_argument("--backend", type=int, required=True, help="backend number: 1 = mx1")
            sub.add_argument("--chain", type=Path, help="PEM chain, leaf first")
            sub.add_argument("--key", type=Path, help="PEM private key of the leaf")
            sub.add_argument("--reset", action="store_true", help="serve the lab's default chain again")
            sub.add_argument("--no-check-key", action="store_true", help="write a key that does not match")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2


def cmd_up(args) -> int:
    started = time.monotonic()
    base = claim_base(args.backends)[0] if args.base == "auto" else args.base
    lab = Lab(args.dir, base=base, distro=args.distro).up(args.backends, timeout=args.timeout)
    print(f"lab up in {time.monotonic() - started:.1f}s ({lab.distro.release}): front {lab.front_address}, backends "
          f"{' '.join(b.address for b in lab.backends)}, root CA {lab.root_file}")
    return 0


def cmd_down(args) -> int:
    Lab(args.dir).down()
    print("lab down")
    return 0


def cmd_status(args) -> int:
    status = Lab(args.dir).status()
    print(json.dumps(status, indent=2))
    return {"up": 0, "down": 3}.get(status["state"], 1)


def cmd_serve(args) -> int:
    lab = Lab(args.dir)
    index = args.backend - 1
    if not 0 <= index < len(lab.backends):
        raise LabError(f"no backend {args.backend} (lab has {len(lab.backends)})")
    if args.reset:
        lab.reset_chain(index)
    elif args.chain and args.key:
        lab.set_chain(index, args.chain.read_bytes(), args.key.read_bytes(), check_key=not args.no_check_key)
    else:
        raise LabError("serve needs --chain and --key, or --reset")
    print(f"{lab.backends[index].name} serves the new chain")
    return 0


COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "serve": cmd_serve}

if __name__ == "__main__":
    sys.exit(main())
