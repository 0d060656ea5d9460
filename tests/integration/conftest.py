# SPDX-License-Identifier: GPL-3.0-or-later
"""Integration fixtures: the real lab (HAProxy in front of Postfix + Dovecot backends on loopback).

``lab`` is session-scoped: installed (tests/lab/install.sh) if needed, brought up once in a temporary
directory, always torn down. Tests that change a backend (``lab.set_chain``) must restore it
(``lab.reset_chain(s)``). The lab takes the first free base address from 127.0.0.10 on (.30, .50, ...),
so sessions sharing a machine do not collide; MAILOPS_LAB_BASE is tried first when set.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

LAB_DIR = Path(__file__).resolve().parent.parent / "lab"
LAB_TOOLS = ("postfix", "dovecot", "doveadm", "haproxy", "ip", "script", "ss", "openssl")


def load_lab_module():
    """Import tests/lab/lab.py as module ``lab`` (test modules then ``import lab as lablib``)."""
    if "lab" in sys.modules:
        return sys.modules["lab"]
    spec = importlib.util.spec_from_file_location("lab", LAB_DIR / "lab.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["lab"] = module
    spec.loader.exec_module(module)
    return module


lablib = load_lab_module()
sys.path.insert(0, str(LAB_DIR))
import dnslab  # noqa: E402 - tests/lab is importable only from here on


def missing_tools() -> list:
    """Lab commands not on PATH."""
    return [tool for tool in LAB_TOOLS if shutil.which(tool) is None]


def ensure_installed() -> None:
    """As root run install.sh (quick when all is installed); otherwise skip, giving the reason."""
    if os.geteuid() != 0:
        missing = missing_tools()
        reason = f"lab tools missing ({', '.join(missing)}) and " if missing else "the lab needs root: "
        pytest.skip(reason + "not root to install them, add addresses to lo and start mail daemons")
    done = subprocess.run(["sh", str(LAB_DIR / "install.sh")], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"tests/lab/install.sh failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    still = missing_tools()
    if still:
        pytest.fail(f"tests/lab/install.sh left tools missing: {', '.join(still)}")


def ensure_distro(name: str) -> None:
    """Build (or find cached) the root of another distribution; where that cannot be done here, skip with the
    reason, except in CI, where a missing distribution fails the run."""
    try:
        lablib.distros.distro(name).ensure()
    except lablib.distros.DistroError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the {name} lab cannot run in CI: {exc}")
        pytest.skip(f"the {name} lab cannot run here: {exc}")


@pytest.fixture(scope="session")
def claim_lab_base():
    """Claim free lab base addresses for this session (other sessions or a demo lab may run on this machine).

    Returns a function: claim(backends) -> base address, held until the session ends. MAILOPS_LAB_BASE, if
    set, is tried first.
    """
    locks = []

    def claim(backends: int = 3) -> str:
        base, lock = lablib.claim_base(backends, os.environ.get("MAILOPS_LAB_BASE") if not locks else None)
        locks.append(lock)
        return base

    yield claim
    for lock in locks:
        lock.close()


@pytest.fixture(scope="session")
def lab_on(claim_lab_base):
    """Returns a function: lab_on(distro) -> a running lab with 3 backends (mx1..mx3) whose daemons come from that
    distribution ("host": this machine's; "trixie": Debian 13's, from a cached root, see tests/lab/distro.py).
    One lab per distribution for the whole session, each torn down after it whatever happens.

    Lab directories are made under /tmp (pytest's own tmp dirs are mode 700: the postfix and dovecot users could
    not reach them) and removed afterwards unless MAILOPS_LAB_KEEP is set.
    """
    labs = {}

    def lab_on(distro: str = "host"):
        if distro not in labs:
            ensure_installed()
            ensure_distro(distro)
            directory = Path(tempfile.mkdtemp(prefix=f"mailops-lab-{distro}-"))
            directory.chmod(0o755)
            labs[distro] = lablib.Lab(directory, base=claim_lab_base(3), distro=distro)
            labs[distro].up(backends=3)
        return labs[distro]

    try:
        yield lab_on
    finally:
        for the_lab in labs.values():
            the_lab.down()
            if not os.environ.get("MAILOPS_LAB_KEEP"):
                shutil.rmtree(the_lab.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(lab_on):
    """The lab on this machine's own daemons."""
    return lab_on("host")


@pytest.fixture(scope="session")
def dns_lab(lab):
    """NSD, a validating Unbound and the MTA-STS HTTPS server on 127.0.53.1-3 (tests/lab/dnslab.py) serving
    example.test for the lab, bogus.test and unsigned.test; torn down after the session. Tests that publish other
    records or policies restore the standard ones (dns_lab.restore())."""
    directory = Path(tempfile.mkdtemp(prefix="mailops-dnslab-"))
    try:
        mail_dns = dnslab.MailDns(lab, directory)
        yield mail_dns
    finally:
        dnslab.DnsLab(directory).down()
        if not os.environ.get("MAILOPS_LAB_KEEP"):
            shutil.rmtree(directory, ignore_errors=True)
