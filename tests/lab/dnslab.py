# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's DNS and MTA-STS parts on loopback: NSD serving zones signed with ldns, a validating Unbound that
trusts the signed zones' keys, and an HTTPS server for MTA-STS policies.

Addresses (127.0.53.0/24 only): NSD on 127.0.53.1:53, Unbound on 127.0.53.2:53, HTTPS on 127.0.53.3:443.
Unbound answers only for the lab's zones (every other name is refused) and sends queries only from 127.0.53.2.

Module use::

    dns = DnsLab("build/dnslab")
    dns.up({"example.test": Zone(["mx1 A 127.0.0.11", "_25._tcp.mx1 TLSA 3 1 1 ab..."])})
    dns.publish("example.test", Zone([...]))     # re-signed, served, caches dropped
    dns.serve_policy("example.test", policy_text, cert_pem, key_pem)
    dns.down()

Needs root (port 53 and 443) and the packages nsd, unbound and ldnsutils (tests/lab/install.sh).
"""
from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

AUTHORITATIVE = "127.0.53.1"
RESOLVER = "127.0.53.2"
HTTPS = "127.0.53.3"
TOOLS = ("nsd", "unbound", "ldns-keygen", "ldns-signzone")
DEFAULT_TTL = 300


class DnsLabError(RuntimeError):
    """A DNS lab part could not be set up or started; the message names its log."""


@dataclass(frozen=True)
class Zone:
    """A zone's records as zone-file lines relative to the origin ('mx1 A 127.0.0.11'); SOA and NS are added.

    signed: signed with its own key, which the resolver trusts; bogus: owner names (relative) whose signatures
    are damaged after signing, so a validating resolver answers SERVFAIL for them."""

    records: tuple[str, ...] = ()
    signed: bool = True
    bogus: tuple[str, ...] = field(default=())


def _run(argv, what: str, cwd: Optional[Path] = None) -> str:
    done = subprocess.run(list(argv), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        raise DnsLabError(f"{what} failed (exit {done.returncode}): {' '.join(map(str, argv))}\n"
                          f"{done.stdout}{done.stderr}")
    return done.stdout


class DnsLab:
    """NSD + Unbound + an HTTPS server in one state directory."""

    def __init__(self, directory, authoritative: str = AUTHORITATIVE, resolver: str = RESOLVER,
                 https: str = HTTPS) -> None:
        self.directory = Path(directory).resolve()
        self.authoritative, self.resolver, self.https = authoritative, resolver, https
        self.zones: dict[str, Zone] = {}
        self._serial = int(time.time())

    # zones ----------------------------------------------------------------------------------------------------

    def _zone_dir(self, origin: str) -> Path:
        return self.directory / "zones" / origin

    def _key_base(self, origin: str) -> str:
        """The zone's signing key (one combined key with the SEP flag), made on first use and then kept."""
        folder = self._zone_dir(origin)
        existing = sorted(folder.glob(f"K{origin}.+*.key"))
        if existing:
            return existing[0].name[:-len(".key")]
        return _run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", origin], f"making the key of {origin}",
                    cwd=folder).strip()

    def _write_zone(self, origin: str, zone: Zone) -> str:
        """Write (and sign) the zone's file; returns the file name NSD serves."""
        folder = self._zone_dir(origin)
        folder.mkdir(parents=True, exist_ok=True)
        self._serial += 1
        lines = [f"$ORIGIN {origin}.", f"$TTL {DEFAULT_TTL}",
                 f"@ SOA ns.{origin}. hostmaster.{origin}. {self._serial} 3600 600 86400 60",
                 f"@ NS ns.{origin}.", f"ns A {self.authoritative}", *zone.records]
        (folder / "zone").write_text("\n".join(lines) + "\n")
        if not zone.signed:
            return "zone"
        _run(["ldns-signzone", "zone", self._key_base(origin)], f"signing {origin}", cwd=folder)
        if zone.bogus:
            _damage_signatures(folder / "zone.signed", {f"{owner}.{origin}." for owner in zone.bogus})
        return "zone.signed"

    def trust_anchor(self, origin: str) -> Path:
        return self._zone_dir(origin) / f"{self._key_base(origin)}.key"

    # daemons --------------------------------------------------------------------------------------------------

    def up(self, zones: dict[str, Zone]) -> None:
        """Write, sign and serve the zones; start NSD and Unbound (restarted if already running)."""
        missing = [tool for tool in TOOLS if not _which(tool)]
        if missing:
            raise DnsLabError(f"missing {', '.join(missing)}: run tests/lab/install.sh as root")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.zones = dict(zones)
        self._restart()

    def publish(self, origin: str, zone: Zone) -> None:
        """Serve new records for a zone (re-signed) and drop the resolver's cache, as if every TTL had passed."""
        self.zones[origin] = zone
        self._restart()

    def _restart(self) -> None:
        files = {origin: self._write_zone(origin, zone) for origin, zone in self.zones.items()}
        self._stop("nsd")
        self._stop("unbound")
        (self.directory / "nsd.conf").write_text(self._nsd_conf(files))
        (self.directory / "unbound.conf").write_text(self._unbound_conf())
        self._start("nsd", ["nsd", "-d", "-c", str(self.directory / "nsd.conf")], self.authoritative)
        self._start("unbound", ["unbound", "-d", "-c", str(self.directory / "unbound.conf")], self.resolver)

    def _nsd_conf(self, files: dict[str, str]) -> str:
        zones = "".join(f"zone:\n  name: {origin}\n  zonefile: {self._zone_dir(origin) / name}\n"
                        for origin, name in files.items())
        return (f"server:\n  ip-address: {self.authoritative}@53\n  port: 53\n  username: \"\"\n  chroot: \"\"\n"
                f"  database: \"\"\n  zonelistfile: {self.directory}/nsd-zone.list\n  xfrdfile: "
                f"{self.directory}/nsd-xfrd.state\n  xfrdir: {self.directory}\n  pidfile: \"\"\n"
                f"  logfile: {self.directory}/nsd.log\n  server-count: 1\n  verbosity: 1\n"
                f"remote-control:\n  control-enable: no\n{zones}")

    def _unbound_conf(self) -> str:
        anchors = "".join(f"  trust-anchor-file: {self.trust_anchor(origin)}\n"
                          for origin, zone in self.zones.items() if zone.signed)
        # Every name outside the lab's zones is refused, so the resolver never asks the Internet's servers.
        local = "".join(f"  local-zone: \"{origin}.\" transparent\n  domain-insecure: \"{origin}.\"\n"
                        for origin, zone in self.zones.items() if not zone.signed)
        local += "".join(f"  local-zone: \"{origin}.\" transparent\n" for origin, zone in self.zones.items()
                         if zone.signed)
        stubs = "".join(f"stub-zone:\n  name: \"{origin}.\"\n  stub-addr: {self.authoritative}@53\n"
                        for origin in self.zones)
        return (f"server:\n  interface: {self.resolver}@53\n  outgoing-interface: {self.resolver}\n  do-ip6: no\n"
                f"  username: \"\"\n  chroot: \"\"\n  directory: \"{self.directory}\"\n  pidfile: \"\"\n"
                "  use-syslog: no\n  verbosity: 1\n  val-log-level: 2\n  do-not-query-localhost: no\n"
                "  access-control: 127.0.0.0/8 allow\n  module-config: \"validator iterator\"\n"
                "  qname-minimisation: no\n  local-zone: \".\" refuse\n"
                f"{anchors}{local}{stubs}")

    def _pidfile(self, name: str) -> Path:
        return self.directory / f"{name}.pid"

    def _start(self, name: str, argv: list, address: str, port: int = 53) -> None:
        log = self.directory / f"{name}.log"
        if _listening(address, port):
            raise DnsLabError(f"something else listens on {address}:{port} already: stop it first (another DNS lab?)")
        with open(log, "ab") as handle:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle,
                                       start_new_session=True)
        self._pidfile(name).write_text(f"{process.pid}\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DnsLabError(f"{name} exited ({process.returncode}) at start: see {log}:\n"
                                  + log.read_text(errors="replace")[-2000:])
            if _listening(address, port):
                return
            time.sleep(0.05)
        raise DnsLabError(f"{name} did not listen on {address}:{port} within 15 s: see {log}")

    def _stop(self, name: str) -> None:
        pidfile = self._pidfile(name)
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pidfile.unlink()
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        pidfile.unlink()

    def serve_policy(self, domain: str, policy: str, cert_pem: bytes, key_pem: bytes) -> None:
        """Serve policy as https://mta-sts.<domain>/.well-known/mta-sts.txt with the given certificate chain."""
        web = self.directory / "www" / ".well-known"
        web.mkdir(parents=True, exist_ok=True)
        (web / "mta-sts.txt").write_text(policy)
        (self.directory / "https-chain.pem").write_bytes(cert_pem)
        key = self.directory / "https-key.pem"
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        self._stop("https")
        self._start("https", [sys.executable, __file__, "serve-https", "--dir", str(self.directory / "www"),
                              "--address", self.https, "--chain", str(self.directory / "https-chain.pem"),
                              "--key", str(key)], self.https, 443)

    def down(self) -> None:
        for name in ("https", "unbound", "nsd"):
            self._stop(name)

    def running(self) -> list:
        """The parts whose process is alive."""
        alive = []
        for name in ("nsd", "unbound", "https"):
            try:
                if _alive(int(self._pidfile(name).read_text().split()[0])):
                    alive.append(name)
            except (OSError, ValueError, IndexError):
                pass
        return alive


def _damage_signatures(path: Path, owners: set) -> None:
    """Flip one bit of every signature of the given owners (fully qualified, lowercase) except over NSEC."""
    lines = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[0].lower() in owners and fields[3] == "RRSIG" and fields[4] != "NSEC":
            signature = fields[-1]
            middle = len(signature) // 2
            flipped = "A" if signature[middle] != "A" else "B"
            fields[-1] = signature[:middle] + flipped + signature[middle + 1:]
            line = "\t".join(fields)
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


def _which(tool: str) -> bool:
    return shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])) is not None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _listening(address: str, port: int) -> bool:
    """True when something accepts TCP there (NSD and Unbound open their TCP and UDP sockets together)."""
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((address, port)) == 0


# --------------------------------------------------------------------------------------------------------------
# The zones for the mail lab (tests/lab/lab.py)

SIGNED, BOGUS, UNSIGNED = "example.test", "bogus.test", "unsigned.test"
TLSA_TTL = 3600
TLS_RPT = "v=TLSRPTv1; rua=mailto:tls-reports@example.test"


def mail_zone(lab, tlsa: dict, policy_id: str = "1") -> Zone:
    """example.test for a running mail lab: MX 10 mx1, MX 20 mx2, ... at the backends' addresses, the TLSA records
    tlsa ({'mx1': ['3 1 1 ...'], ...}) at _25._tcp.<mx>, an _mta-sts record, mta-sts at the HTTPS address and a
    TLS-RPT record."""
    records = [f"@ MX {10 * backend.number} {backend.name}" for backend in lab.backends]
    records += [f"{backend.name} A {backend.address}" for backend in lab.backends]
    records += [f"_25._tcp.{host} {TLSA_TTL} TLSA {record}" for host, items in tlsa.items() for record in items]
    records += [f'_mta-sts TXT "v=STSv1; id={policy_id}"', f"mta-sts A {HTTPS}", f'_smtp._tls TXT "{TLS_RPT}"']
    return Zone(tuple(records))


def side_zones(lab, record: str) -> dict:
    """bogus.test (signed, with a damaged TLSA signature) and unsigned.test (not signed), each with mx1 at the first
    backend's address and record at _25._tcp.mx1."""
    address = lab.backends[0].address
    records = ("@ MX 10 mx1", f"mx1 A {address}", f"_25._tcp.mx1 TLSA {record}")
    return {BOGUS: Zone(records, bogus=("_25._tcp.mx1",)), UNSIGNED: Zone(records, signed=False)}


def policy(*patterns: str, mode: str = "enforce") -> str:
    return "version: STSv1\n" + f"mode: {mode}\n" + "".join(f"mx: {p}\n" for p in patterns) + "max_age: 86400\n"


def spki_record(issued, usage: int = 3) -> str:
    """'<usage> 1 1 <hex>' (3 1 1, or 2 1 1 for an issuer) for a pki.Issued, computed here with cryptography and
    hashlib alone, so the lab's records do not come from the code the tests judge."""
    from cryptography.hazmat.primitives import serialization

    spki = issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"{usage} 1 1 {hashlib.sha256(spki).hexdigest()}"


STANDARD_POLICY = ("mx1.example.test", "*.example.test")


class MailDns:
    """The DNS lab serving a running mail lab's domain: .dns (DnsLab), .tlsa (the standard records: mx1 3 1 1 and
    2 1 1, mx2 3 1 1, mx3 2 1 1), .publish(tlsa) to serve other records for example.test, .serve_policy(text),
    .restore() to serve the standard records and policy again."""

    def __init__(self, lab, directory) -> None:
        self.lab = lab
        self.dns = DnsLab(directory)
        leaf, intermediate = spki_record(lab.pki.leaf), spki_record(lab.pki.intermediate, usage=2)
        self.tlsa = {"mx1": [leaf, intermediate], "mx2": [leaf], "mx3": [intermediate]}
        self.mta_sts_key = lab.pki.intermediate.leaf(f"mta-sts.{SIGNED}")
        self.dns.up({SIGNED: mail_zone(lab, self.tlsa), **side_zones(lab, leaf)})
        self.serve_policy(policy(*STANDARD_POLICY))

    def publish(self, tlsa: dict, policy_id: str = "1") -> None:
        self.dns.publish(SIGNED, mail_zone(self.lab, tlsa, policy_id))

    def serve_policy(self, text: str) -> None:
        self.dns.serve_policy(SIGNED, text, self.mta_sts_key.pem + self.lab.pki.intermediate.pem,
                              self.mta_sts_key.key_pem())

    def restore(self) -> None:
        self.publish(self.tlsa)
        self.serve_policy(policy(*STANDARD_POLICY))


# --------------------------------------------------------------------------------------------------------------
# The HTTPS server for MTA-STS policies (run by serve_policy in its own process)


def serve_https(directory: str, address: str, chain: str, key: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=directory, **kwargs)

    server = http.server.ThreadingHTTPServer((address, 443), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    https = sub.add_parser("serve-https", help="serve a directory over HTTPS (used by DnsLab.serve_policy)")
    https.add_argument("--dir", required=True)
    https.add_argument("--address", default=HTTPS)
    https.add_argument("--chain", required=True)
    https.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    if not args.address.startswith("127."):
        parser.error("the lab serves on 127.0.0.0/8 only")
    serve_https(args.dir, args.address, args.chain, args.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
