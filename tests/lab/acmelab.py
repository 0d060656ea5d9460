# SPDX-License-Identifier: GPL-3.0-or-later
"""The ACME part of the lab: Debian's Pebble (a test ACME CA) with pebble-challtestsrv as its DNS, and certbot,
all on 127.0.80.0/24 and in one state directory.

Layout (base 127.0.80.1):

| address:port          | what                                                                   |
| --------------------- | ---------------------------------------------------------------------- |
| 127.0.80.1:14000      | Pebble's ACME directory (https://127.0.80.1:14000/dir)                 |
| 127.0.80.1:15000      | Pebble's management interface: /roots/0, /intermediates/0             |
| 127.0.80.2:8053       | pebble-challtestsrv's DNS: every name has the A record 127.0.80.3      |
| 127.0.80.3:5002       | certbot --standalone answers HTTP-01 here while it runs                |

Pebble makes a new root and intermediate at every start (restart() gives a CA with a changed intermediate) and
keeps its accounts in memory only. Its listener's certificate comes from tests/pki.py; certbot trusts it through
REQUESTS_CA_BUNDLE. Nothing listens outside 127.0.80.0/24.

    python3 tests/lab/acmelab.py up --dir build/acme      # ~5 s (Pebble makes RSA keys)
    python3 tests/lab/acmelab.py down --dir build/acme
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lab as lablib  # noqa: E402  (tests/lab/lab.py, beside this file)

DEFAULT_BASE = "127.0.80.1"
NETWORK = ipaddress.ip_network("127.0.80.0/24")
ACME_PORT, MANAGEMENT_PORT, DNS_PORT, DNS_MANAGEMENT_PORT, HTTP01_PORT = 14000, 15000, 8053, 8055, 5002
# No deliberate delays and no rejected nonces: the lab is for tests, not for testing clients' retries.
PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}


class AcmeLab:
    """Pebble and its DNS in directory; certbot() runs certbot against them with its state in directory/certbot."""

    def __init__(self, directory, base: str = DEFAULT_BASE):
        self.dir = Path(directory).resolve()
        first = ipaddress.ip_address(base)
        if first not in NETWORK or first + 2 not in NETWORK:
            raise lablib.LabError(f"the ACME lab's base {base} must leave three addresses in {NETWORK}")
        self.acme_address, self.dns_address, self.http01_address = (str(first + n) for n in range(3))

    # ---- layout

    @property
    def directory_url(self) -> str:
        return f"https://{self.acme_address}:{ACME_PORT}/dir"

    @property
    def listener_ca(self) -> Path:
        """The CA of Pebble's own TLS listeners (not of the certificates it issues)."""
        return self.dir / "listener-ca.pem"

    @property
    def certbot_dir(self) -> Path:
        return self.dir / "certbot"

    def lineage(self, name: str) -> Path:
        """certbot's live directory of a certificate name: fullchain.pem, privkey.pem, chain.pem, cert.pem."""
        return self.certbot_dir / "config" / "live" / name

    def _pidfile(self, daemon: str) -> Path:
        return self.dir / f"{daemon}.pid"

    def _log(self, daemon: str) -> Path:
        return self.dir / f"{daemon}.log"

    # ---- daemons

    def up(self, timeout: float = 60) -> AcmeLab:
        """Start (or restart) the DNS and Pebble; returns once both listen."""
        self.down()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_listener_certificate()
        self._start("challtestsrv", [
            "pebble-challtestsrv", "-defaultIPv4", self.http01_address, "-defaultIPv6", "",
            "-dns01", f"{self.dns_address}:{DNS_PORT}", "-management", f"{self.dns_address}:{DNS_MANAGEMENT_PORT}",
            "-http01", "", "-https01", "", "-tlsalpn01", ""], self.dns_address, DNS_MANAGEMENT_PORT, timeout)
        self._start_pebble(timeout)
        return self

    def restart_pebble(self, timeout: float = 60) -> None:
        """A new Pebble: a new root and intermediate, and no accounts."""
        self._stop("pebble")
        self._start_pebble(timeout)

    def down(self) -> None:
        for daemon in ("pebble", "challtestsrv"):
            self._stop(daemon)

    def _start_pebble(self, timeout: float) -> None:
        config = {"pebble": {
            "listenAddress": f"{self.acme_address}:{ACME_PORT}",
            "managementListenAddress": f"{self.acme_address}:{MANAGEMENT_PORT}",
            "certificate": str(self.dir / "listener.pem"), "privateKey": str(self.dir / "listener-key.pem"),
            "httpPort": HTTP01_PORT, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": False}}
        lablib.write_file(self.dir / "pebble.json", json.dumps(config, indent=2))
        self._start("pebble", ["pebble", "-config", str(self.dir / "pebble.json"), "-dnsserver",
                               f"{self.dns_address}:{DNS_PORT}"], self.acme_address, ACME_PORT, timeout)

    def _write_listener_certificate(self) -> None:
        pki = lablib.pki_module()
        authority = pki.root("mailops ACME lab listener CA")
        listener = authority.leaf("localhost", ip_addresses=[self.acme_address])
        lablib.write_file(self.listener_ca, authority.pem)
        lablib.write_file(self.dir / "listener.pem", listener.pem)
        lablib.write_file(self.dir / "listener-key.pem", listener.key_pem(), 0o600)

    def _start(self, daemon: str, argv: Sequence[str], address: str, port: int, timeout: float) -> None:
        lablib.check_loopback(address)
        # A daemon this lab has just stopped (restart_pebble) may still be closing its listener.
        freed = time.monotonic() + 10
        while lablib.can_connect(address, port):
            if time.monotonic() > freed:
                raise lablib.LabError(f"{address}:{port} is already in use: another ACME lab runs there")
            time.sleep(0.1)
        with open(self._log(daemon), "ab") as log:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=dict(os.environ, **PEBBLE_ENV), start_new_session=True)
        self._pidfile(daemon).write_text(f"{process.pid}\n")
        deadline = time.monotonic() + timeout
        while not lablib.can_connect(address, port):
            if process.poll() is not None or time.monotonic() > deadline:
                self._stop(daemon)
                raise lablib.LabError(f"{daemon} did not start listening on {address}:{port}: "
                                      f"{lablib.see_log(self._log(daemon))}")
            time.sleep(0.1)

    def _stop(self, daemon: str) -> None:
        """SIGTERM to the daemon of our pidfile, when that pid is still a Pebble program."""
        pid = lablib.read_pid(self._pidfile(daemon))
        if pid is not None and (lablib.proc_stat(pid) or ("",))[0].startswith("pebble"):
            for sent in (signal.SIGTERM, signal.SIGKILL):  # SIGKILL only when SIGTERM did not end it in 10 s
                os.kill(pid, sent)
                deadline = time.monotonic() + 10
                while lablib.proc_stat(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not lablib.proc_stat(pid):
                    break
        self._pidfile(daemon).unlink(missing_ok=True)

    # ---- what Pebble issues under

    def _management(self, path: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.listener_ca))
        url = f"https://{self.acme_address}:{MANAGEMENT_PORT}{path}"
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:
            return answer.read()

    def root_pem(self) -> bytes:
        """The root the running Pebble issues under (a new one at every start)."""
        return self._management("/roots/0")

    def intermediate_pem(self) -> bytes:
        return self._management("/intermediates/0")

    # ---- certbot

    def certbot(self, *argv: str, env: Optional[dict] = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """certbot with its state in certbot_dir, against Pebble; env is added to its environment (and so to its
        hooks')."""
        common = ["--config-dir", str(self.certbot_dir / "config"), "--work-dir", str(self.certbot_dir / "work"),
                  "--logs-dir", str(self.certbot_dir / "logs"), "--server", self.directory_url, "--non-interactive"]
        environment = dict(os.environ, **(env or {}), REQUESTS_CA_BUNDLE=str(self.listener_ca))
        return subprocess.run(["certbot", *argv, *common], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=environment, timeout=timeout, check=False)

    def obtain(self, name: str, domains: Sequence[str], *extra: str, env: Optional[dict] = None
               ) -> subprocess.CompletedProcess:
        """certbot certonly for domains as the lineage `name` (standalone HTTP-01 on the lab's address)."""
        domain_args = [arg for domain in domains for arg in ("-d", domain)]
        return self.certbot("certonly", "--standalone", "--http-01-address", self.http01_address,
                            "--http-01-port", str(HTTP01_PORT), "--agree-tos", "-m", "hostmaster@example.test",
                            "--no-eff-email", "--key-type", "ecdsa", "--cert-name", name, *domain_args, *extra, env=env)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="The ACME part of the mailops.tls lab (Pebble, its DNS).")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", required=True, help="state directory")
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"first of three addresses in {NETWORK}")
    args = parser.parse_args(argv)
    acme = AcmeLab(args.dir, args.base)
    if args.action == "up":
        acme.up()
        print(f"ACME directory: {acme.directory_url} (listener CA {acme.listener_ca})")
    else:
        acme.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
