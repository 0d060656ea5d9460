# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the lab's daemons and interpreters come from: this machine, or another Debian release's root.

``host`` is this machine itself (on Debian 12: Postfix 3.7, Dovecot 2.3, HAProxy 2.6, Python 3.11). ``trixie`` is
Debian 13 (Postfix 3.10, Dovecot 2.4, HAProxy 3.0, Python 3.13, cryptography 43) in a minimal root file system
that ``mmdebstrap`` builds once and caches under /var/cache/mailops-lab (kept between runs and clones). Its
programs run chrooted in a private mount namespace that sees the host's /proc, /dev and /tmp, so lab
directories under /tmp have the same paths inside and outside, and its daemons share the host's loopback
network like the rest of the lab.

CLI: ``python3 tests/lab/distro.py ensure trixie`` builds the root if needed and prints its directory;
``python3 tests/lab/distro.py run trixie -- postconf mail_version`` runs one command in it.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

CACHE = Path(os.environ.get("MAILOPS_LAB_CACHE", "/var/cache/mailops-lab"))
MIRROR = "http://deb.debian.org/debian"
#: The daemons, the interpreter and the tools the lab and the role's tests run in a foreign root.
ROOT_PACKAGES = ("postfix", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd", "dovecot-managesieved", "haproxy",
                 "python3", "python3-cryptography", "openssl", "ca-certificates")
#: What the host needs to build and enter such a root.
HOST_TOOLS = {"mmdebstrap": "mmdebstrap", "unshare": "util-linux", "chroot": "coreutils"}
#: Host directories a root sees under the same names, so lab files and Ansible's temporary files match.
SHARED_DIRS = ("/tmp",)
SHARED_MOUNTS = ("/proc", "/dev", *SHARED_DIRS)


class DistroError(RuntimeError):
    """A root file system could not be built or entered; the message says what to do."""


@dataclass(frozen=True)
class Distro:
    """One Debian release the lab can run: the host itself (root None) or a cached chroot."""

    name: str
    release: str
    suite: Optional[str] = None  # the suite mmdebstrap builds; None: the host

    @property
    def foreign(self) -> bool:
        return self.suite is not None

    @property
    def root(self) -> Optional[Path]:
        """The cached root file system, keyed by suite and package list so a change rebuilds it."""
        if not self.foreign:
            return None
        key = hashlib.sha256(" ".join((self.suite, *ROOT_PACKAGES)).encode()).hexdigest()[:12]
        return CACHE / f"{self.suite}-{key}"

    @property
    def runner(self) -> Optional[Path]:
        """A script that runs its arguments inside the root (None on the host)."""
        return None if self.root is None else self.root.with_name(self.root.name + ".run")

    @property
    def python(self) -> str:
        """The interpreter modules run with on this release (an ansible_python_interpreter value)."""
        if self.root is None:
            return "/usr/bin/python3"
        return str(self.root.with_name(self.root.name + ".python3"))

    def shares(self, path: Path) -> bool:
        """True when path has the same name inside the root as on the host (always on the host itself)."""
        return not self.foreign or any(Path(path).resolve().is_relative_to(shared) for shared in SHARED_DIRS)

    def command(self, argv: Sequence[str]) -> list:
        """argv as run on this release: unchanged on the host, through the runner for a root."""
        return list(argv) if self.runner is None else [str(self.runner), *argv]

    def ensure(self, log=sys.stderr) -> Distro:
        """Build the root and its wrapper scripts unless they are cached; return self."""
        if self.root is None:
            return self
        if not (self.root / "usr" / "bin" / "python3").exists():
            self._build(log)
        mtab = self.root / "etc" / "mtab"
        if not mtab.is_symlink():  # doveconf reads it; debootstrapped roots lack Debian's usual link
            mtab.symlink_to("/proc/self/mounts")
        self._write_wrappers()
        return self

    def _build(self, log) -> None:
        missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
        if missing:
            raise DistroError(f"cannot build the {self.name} root: {', '.join(missing)} not installed (apt-get "
                              f"install {' '.join(sorted({HOST_TOOLS[t] for t in missing}))})")
        if os.geteuid() != 0:
            raise DistroError(f"building the {self.name} root needs root")
        partial = self.root.with_name(self.root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        print(f"building the {self.name} root in {self.root} with mmdebstrap (a few minutes, once)", file=log)
        done = subprocess.run(["mmdebstrap", "--variant=apt", "--mode=root", f"--include={','.join(ROOT_PACKAGES)}",
                               self.suite, str(partial), MIRROR],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise DistroError(f"mmdebstrap {self.suite} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        partial.rename(self.root)

    def _write_wrappers(self) -> None:
        """The runner (a private mount namespace sharing /proc, /dev, /tmp, then chroot) and a python3 on it."""
        mounts = " && ".join(f"mount --rbind {path} \"$ROOT{path}\"" for path in SHARED_MOUNTS)
        runner = f"""#!/bin/sh
# Runs a command inside the {self.name} lab root ({self.release}); written by tests/lab/distro.py.
ROOT={self.root}
export ROOT
exec unshare --mount --propagation private sh -c '{mounts} && exec chroot "$ROOT" "$@"' sh "$@"
"""
        python = (f"#!/bin/sh\n# Python of {self.release} for ansible_python_interpreter.\n"
                  f"exec {self.runner} /usr/bin/python3 \"$@\"\n")
        for path, text in ((self.runner, runner), (Path(self.python), python)):
            if not path.exists() or path.read_text() != text:
                partial = path.with_name(path.name + ".partial")
                partial.write_text(text)
                partial.chmod(0o755)
                partial.rename(path)  # a running test may exec it at this moment

    def run(self, argv: Sequence[str], timeout: float = 60) -> str:
        """Run argv on this release and return its output; raise DistroError on failure."""
        done = subprocess.run(self.command(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise DistroError(f"{' '.join(argv)} on {self.name} failed (exit {done.returncode}): "
                              f"{(done.stdout + done.stderr).strip()[-2000:]}")
        return done.stdout

    def user_id(self, user: str) -> int:
        """The uid of user in this release's /etc/passwd (packages of another release number users differently)."""
        return self._id_of("passwd", user)

    def group_id(self, group: str) -> int:
        return self._id_of("group", group)

    def _id_of(self, database: str, name: str) -> int:
        path = Path("/etc") / database if self.root is None else self.root / "etc" / database
        for line in path.read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2])
        raise DistroError(f"no {database} entry {name!r} in {path}")


DISTROS = {d.name: d for d in (Distro("host", "this machine"), Distro("trixie", "Debian 13", suite="trixie"))}
HOST = DISTROS["host"]


def distro(name: str) -> Distro:
    """The Distro called name (host, trixie)."""
    try:
        return DISTROS[name]
    except KeyError:
        raise DistroError(f"unknown lab distribution {name!r}: one of {', '.join(DISTROS)}") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("action", choices=("ensure", "run"))
    parser.add_argument("distro", choices=sorted(DISTROS))
    parser.add_argument("argv", nargs="*", help="with run: the command")
    args = parser.parse_args(argv)
    try:
        chosen = distro(args.distro).ensure()
        if args.action == "ensure":
            print(chosen.root or "/")
            return 0
        return subprocess.run(chosen.command(args.argv), check=False).returncode
    except DistroError as exc:
        print(f"distro: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
