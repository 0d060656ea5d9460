# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail clients of the client matrix: how each trusts the lab's root, connects as its users do, and what counts
as accepting the chain it was shown.

Every client runs in its own mount namespace whose /etc/hosts names the scenario hosts at the lab backend, so it
resolves mail.example.test like any name and nothing outside 127.0.0.0/8 is ever asked. Needs root (unshare).
"""
from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
PORTS = {"smtp": 25, "submission": 587, "imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995}
ACCEPT, REJECT, NO_RESULT = "accept", "reject", "no result"
TIMEOUT = 30
#: What clients print when a name does not resolve: no verdict on the chain, the client never saw it.
UNRESOLVED = re.compile(r"not known|no such host|UnknownHostException|could not resolve|cannot resolve|"
                        r"error looking up host", re.IGNORECASE)
#: Terminal control sequences in mutt's screen output.
ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[=>])|[\x00-\x08\x0e-\x1f]")
#: The namespace wrapper: bind the scenario hosts file over /etc/hosts, then run the client.
ISOLATE = 'mount --bind "$0" /etc/hosts && exec "$@"'


@dataclass(frozen=True)
class Outcome:
    """What one client did with one chain: accept, reject or no result, and the line it printed about it."""

    result: str
    detail: str


@dataclass(frozen=True)
class Workspace:
    """The files clients read: the root they trust in each client's own form, the hosts file, built programs."""

    dir: Path
    address: str

    @property
    def root(self) -> Path:
        return self.dir / "root.pem"

    @property
    def hosts(self) -> Path:
        return self.dir / "hosts"

    @property
    def nss_db(self) -> Path:
        return self.dir / "nssdb"

    @property
    def trust_store(self) -> Path:
        return self.dir / "truststore.p12"

    @property
    def go_client(self) -> Path:
        return self.dir / "go-mailclient"

    @property
    def java_classes(self) -> Path:
        return self.dir / "java"


@dataclass(frozen=True)
class Client:
    """One client row of the matrix: who it is, its TLS stack, the service it uses and how to run it."""

    name: str
    family: str
    stack: str
    package: str
    service: str
    how: str
    tools: tuple
    run: Callable[[Workspace, str], Outcome]

    def missing(self) -> list:
        return [tool for tool in self.tools if shutil.which(tool) is None]


# --------------------------------------------------------------------------------------------------------------
# Running a client


def isolated(workspace: Workspace, argv: Sequence[str], env: Optional[dict] = None, timeout: float = TIMEOUT,
             typed: str = "") -> tuple:
    """Run argv with the scenario hosts file as /etc/hosts and typed as its input; return (exit status, output)."""
    command = ["unshare", "-m", "sh", "-c", ISOLATE, str(workspace.hosts), *map(str, argv)]
    try:
        done = subprocess.run(command, input=typed, capture_output=True, text=True, errors="replace",
                              timeout=timeout, env={**os.environ, **(env or {})}, check=False)
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout or b""
        return None, (partial.decode(errors="replace") if isinstance(partial, bytes) else partial) + \
            f"\nno end within {timeout}s"
    return done.returncode, done.stdout + done.stderr


def verdict(accepted: bool, output: str, pattern: str = "") -> Outcome:
    """accept, or reject with the first output line matching pattern (else the last line); no result when the
    client could not resolve the name or reach the server at all."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if accepted:
        return Outcome(ACCEPT, "")
    chosen = next((line for line in lines if pattern and re.search(pattern, line)), lines[-1] if lines else "")
    if UNRESOLVED.search(output) or "Connection refused" in output:
        return Outcome(NO_RESULT, chosen[:200])
    return Outcome(REJECT, chosen[:200])


def run_fetchmail(workspace: Workspace, host: str) -> Outcome:
    home = workspace.dir / "fetchmail"
    home.mkdir(mode=0o700, exist_ok=True)
    rc_file = home / "fetchmailrc"
    rc_file.write_text(f'set no syslog\npoll {host} protocol IMAP port {PORTS["imap"]} user "lab" password "lab" '
                       f'sslcertck sslcertfile {workspace.root} sslproto "tls1.2+"\n')
    rc_file.chmod(0o600)
    status, output = isolated(workspace, ["fetchmail", "--check", "--fetchmailrc", rc_file],
                              env={"FETCHMAILHOME": str(home)})
    # 0: mail waiting, 1: no mail; both mean it logged in over a verified TLS session.
    return verdict(status in (0, 1), output, r"verification error|OpenSSL reported|certificate")


def run_mutt(workspace: Workspace, host: str) -> Outcome:
    """mutt wants a terminal: it runs on a pseudo-terminal and answers (r)eject to its certificate prompt, which
    is how it refuses a chain; it accepts when it gets as far as finding the mailbox empty without asking."""
    folder = workspace.dir / "mutt-mail"
    folder.mkdir(exist_ok=True)
    muttrc = workspace.dir / "muttrc"
    muttrc.write_text(f"set ssl_ca_certificates_file={workspace.root}\n"
                      f"set certificate_file={workspace.dir}/mutt-certs\n"
                      "set imap_user=lab\nset imap_pass=lab\nset sleep_time=0\nset record=\"\"\nset postponed=\"\"\n"
                      f"set folder={folder}\nset spoolfile={folder}\nset header_cache=\"\"\n")
    argv = ["unshare", "-m", "sh", "-c", ISOLATE, str(workspace.hosts),
            "mutt", "-n", "-F", str(muttrc), "-z", "-f", f"imaps://{host}/INBOX"]
    screen = on_terminal(argv, answers={"(r)eject": b"r"})
    if "(r)eject" in screen:  # after a rejection mutt still ends with "Mailbox is empty"
        prompt = re.search(r"SSL Certificate check[^\r\n]*", screen)
        warnings = [w.strip() for w in re.findall(r"WARNING:[^\r\n]*", screen)]
        return Outcome(REJECT, "; ".join(dict.fromkeys([*warnings, f"asks the user: {prompt.group(0).strip()}: "
                                                        "(r)eject, accept (o)nce, (a)ccept always"])))
    return verdict("Mailbox is empty" in screen, screen, r"SSL|TLS|certificate|failed")


def on_terminal(argv: Sequence[str], answers: dict, timeout: float = TIMEOUT) -> str:
    """Run argv on a pseudo-terminal, typing each answer when its prompt appears; return the screen text."""
    master, slave = os.openpty()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                               env={**os.environ, "TERM": "vt100"})
    os.close(slave)
    screen, answered, deadline = "", 0, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready = select.select([master], [], [], 0.2)[0]
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the terminal closes when mutt exits
                    break
                if not chunk:
                    break
                screen += ESCAPES.sub("\n", chunk.decode(errors="replace"))
            for prompt, keys in answers.items():
                if screen.count(prompt) > answered:
                    answered = screen.count(prompt)
                    os.write(master, keys)
            if process.poll() is not None and not ready:
                break
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(master)
    return screen


def run_gnutls_cli(workspace: Workspace, host: str) -> Outcome:
    status, output = isolated(workspace, ["gnutls-cli", "--x509cafile", workspace.root, "--starttls-proto=smtp",
                                          "--port", PORTS["smtp"], host])
    return verdict(status == 0 and "Handshake was completed" in output, output,
                   r"Status: The certificate is NOT trusted|\*\*\* |Error")


def run_tstclnt(workspace: Workspace, host: str) -> Outcome:
    """tstclnt does not exit when the server closes the connection: it is stopped after a few seconds and accepts
    when it showed the server's greeting, which comes only after the certificate was verified."""
    _status, output = isolated(workspace, ["tstclnt", "-h", host, "-p", PORTS["imaps"], "-d",
                                           f"sql:{workspace.nss_db}", "-V", "tls1.2:"], typed="a LOGOUT\r\n",
                               timeout=5)
    return verdict("* OK " in output and "tstclnt: " not in output, output, r"tstclnt: ")


def run_curl(url: str, *options: str) -> Callable[[Workspace, str], Outcome]:
    def run(workspace: Workspace, host: str) -> Outcome:
        status, output = isolated(workspace, ["curl", "--silent", "--show-error", "--max-time", "20", "--cacert",
                                              workspace.root, *options, url.format(host=host)])
        return verdict(status == 0, output, r"^curl: \(")
    return run


def run_python(protocol: str, service: str) -> Callable[[Workspace, str], Outcome]:
    def run(workspace: Workspace, host: str) -> Outcome:
        status, output = isolated(workspace, ["python3", HERE / "python_client.py", protocol, host, PORTS[service],
                                              workspace.root])
        return verdict(status == 0, output)
    return run


def run_go(workspace: Workspace, host: str) -> Outcome:
    status, output = isolated(workspace, [workspace.go_client, host, PORTS["submission"], workspace.root])
    return verdict(status == 0, output)


def run_java(workspace: Workspace, host: str) -> Outcome:
    status, output = isolated(workspace, ["java", f"-Djavax.net.ssl.trustStore={workspace.trust_store}",
                                          "-Djavax.net.ssl.trustStorePassword=changeit", "-cp",
                                          workspace.java_classes, "MailClient", host, PORTS["imaps"]])
    return verdict(status == 0, output)


CLIENTS = (
    Client("fetchmail", "fetchmail", "OpenSSL", "fetchmail", "imap",
           "IMAP STARTTLS (143), `sslcertck`, `sslcertfile` = the root", ("fetchmail",), run_fetchmail),
    Client("mutt", "mutt", "GnuTLS", "mutt", "imaps", "IMAPS (993), `ssl_ca_certificates_file` = the root", ("mutt",),
           run_mutt),
    Client("gnutls-cli", "gnutls-cli", "GnuTLS", "gnutls-bin", "smtp",
           "`--starttls-proto=smtp` (25), `--x509cafile` = the root", ("gnutls-cli",), run_gnutls_cli),
    Client("NSS tstclnt", "Thunderbird's NSS", "NSS", "libnss3-tools", "imaps",
           "IMAPS (993), the root in an NSS database trusted for servers (`C,,`), as Thunderbird's certificate manager "
           "stores it; tstclnt verifies with NSS's own path validation, Thunderbird with mozilla::pkix on top of NSS",
           ("tstclnt", "certutil"), run_tstclnt),
    Client("curl IMAPS", "curl", "OpenSSL", "curl", "imaps", "`imaps://` (993), `--cacert` = the root", ("curl",),
           run_curl("imaps://{host}/", "--user", "lab:lab")),
    Client("curl POP3S", "curl", "OpenSSL", "curl", "pop3s", "`pop3s://` (995), `--cacert` = the root", ("curl",),
           run_curl("pop3s://{host}/", "--user", "lab:lab")),
    Client("curl SMTP", "curl", "OpenSSL", "curl", "submission", "`smtp://` (587) with `--ssl-reqd` (STARTTLS), "
           "`--cacert` = the root", ("curl",), run_curl("smtp://{host}:587", "--ssl-reqd", "--request", "NOOP")),
    Client("Python smtplib", "Python ssl", "OpenSSL", "python3", "submission",
           "`SMTP.starttls()` (587), `ssl.create_default_context(cafile=root)`", ("python3",),
           run_python("smtp", "submission")),
    Client("Python imaplib", "Python ssl", "OpenSSL", "python3", "imaps",
           "`IMAP4_SSL` (993), `ssl.create_default_context(cafile=root)`", ("python3",), run_python("imap", "imaps")),
    Client("Python poplib", "Python ssl", "OpenSSL", "python3", "pop3",
           "`POP3.stls()` (110), `ssl.create_default_context(cafile=root)`", ("python3",), run_python("pop3", "pop3")),
    Client("Go crypto/tls", "Go", "Go", "golang-go", "submission",
           "`net/smtp` `StartTLS` (587), `tls.Config{RootCAs: the root}`", ("go",), run_go),
    Client("Java JSSE", "Java", "Java", "default-jdk-headless", "imaps",
           "`SSLSocket` (993), trust store = the root, endpoint identification `HTTPS`", ("java", "javac", "keytool"),
           run_java),
)


# --------------------------------------------------------------------------------------------------------------
# The workspace


def prepare(directory: Path, root_pem: bytes, address: str, hosts: Sequence[str],
            clients: Sequence[Client]) -> Workspace:
    """Write the root in each client's form and the hosts file; build the Go and Java clients when used."""
    directory.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(directory, address)
    workspace.root.write_bytes(root_pem)
    workspace.hosts.write_text(f"127.0.0.1 localhost {os.uname().nodename}\n{address} {' '.join(hosts)}\n")
    used = {client.run for client in clients}
    if run_tstclnt in used:
        shutil.rmtree(workspace.nss_db, ignore_errors=True)
        workspace.nss_db.mkdir()
        _run(["certutil", "-N", "-d", f"sql:{workspace.nss_db}", "--empty-password"])
        _run(["certutil", "-A", "-d", f"sql:{workspace.nss_db}", "-n", "mail lab root", "-t", "C,,", "-i",
              workspace.root])
    if run_java in used:
        workspace.trust_store.unlink(missing_ok=True)
        _run(["keytool", "-importcert", "-noprompt", "-storetype", "PKCS12", "-keystore", workspace.trust_store,
              "-storepass", "changeit", "-alias", "mail-lab-root", "-file", workspace.root])
        _run(["javac", "-d", workspace.java_classes, HERE / "java" / "MailClient.java"])
    if run_go in used:
        cache = directory / "go-cache"
        _run(["go", "build", "-o", workspace.go_client, HERE / "go" / "mailclient.go"],
             env={"GOCACHE": str(cache), "GOPATH": str(cache / "path"), "GO111MODULE": "off", "GOPROXY": "off",
                  "HOME": str(directory)})
    return workspace


class ClientLabError(RuntimeError):
    """A client's trust store or program could not be prepared; the message holds the command's output."""


def _run(argv: Sequence, env: Optional[dict] = None) -> None:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise ClientLabError(f"{' '.join(map(str, argv))} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def versions(clients: Sequence[Client]) -> dict:
    """Debian package -> installed version, for every package the clients come from (and the TLS libraries)."""
    packages = sorted({c.package for c in clients} | {"libssl3", "libgnutls30", "libnss3"})
    found = {}
    for package in packages:
        done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True,
                              check=False)
        found[package] = done.stdout.strip() if done.returncode == 0 else "not installed"
    return found
