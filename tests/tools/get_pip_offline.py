# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline stand-in for the get-pip script that ansible-test downloads to bootstrap pip.

ansible-test creates its sanity virtual environments without pip and then runs a cached
``~/.ansible/test/cache/get_pip_<version>.py`` (downloaded from the internet on first use) as
``__main__`` with pip-install arguments, e.g. ``--disable-pip-version-check pip==24.2 --no-setuptools
--no-wheel``. This machine and CI cannot reach that download, so ``tests/tools/seed_ansible_test.py``
puts this file there instead. It bootstraps pip from the interpreter's own ``ensurepip`` (no
network), then runs ``pip install`` with the arguments it was given, dropping get-pip-only flags.
Packages come from the package index configured in pip's config files (ansible-test passes almost
no environment variables through).
"""
from __future__ import annotations

import subprocess
import sys

MARKER = "mailops-tls-offline-get-pip"  # lets the seeding script recognise a file it wrote
GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel", "--no-pip"}


def run(*args: str) -> None:
    command = [sys.executable, *args]
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        sys.exit(f"offline get-pip: command failed with status {result.returncode}: {' '.join(command)}")


def main(argv: list[str]) -> None:
    args = [arg for arg in argv if arg not in GET_PIP_ONLY_FLAGS]
    requested = " ".join(args).lower()

    try:
        import ensurepip  # noqa: F401
    except ImportError:
        sys.exit(
            "offline get-pip: this Python has no ensurepip module; on Debian/Ubuntu install python3-venv "
            "(apt-get install python3-venv)"
        )

    run("-m", "ensurepip", "--default-pip")

    # On Python < 3.12 ensurepip also installs setuptools; get-pip would not have when told --no-setuptools.
    if "--no-setuptools" in argv and "setuptools" not in requested:
        run("-m", "pip", "uninstall", "--yes", "--quiet", "setuptools")

    packages = [arg for arg in args if not arg.startswith("-")]
    if packages:
        run("-m", "pip", "install", *args)


if __name__ == "__main__":
    main(sys.argv[1:])
