# SPDX-License-Identifier: GPL-3.0-or-later
"""Section 4 of make bench: one mail_tls_chain_facts call versus ansible.builtin.ping, whole `ansible` process.

Both run through the project's own virtualenv (.venv, the ansible-core users of the collection get) against
localhost with the local connection, interleaved; the module builds the chain of the benchmark's leaf from
the 1,000-certificate pool.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import common
from common import Timing


@dataclass
class OverheadResult:
    ping: Optional[Timing] = None
    facts: Optional[Timing] = None
    skipped: Optional[str] = None
    ansible: Optional[str] = None


def run(leaf: Path, pool: Path, root: Path, runs: int = 7) -> OverheadResult:
    venv = Path(os.environ.get("VENV", common.REPO / ".venv"))
    ansible = venv / "bin" / "ansible"
    if not ansible.exists():
        return OverheadResult(skipped=f"{ansible} is missing (make venv)")
    environment = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(common.COLLECTIONS),
                   "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
                   "ANSIBLE_NOCOLOR": "true"}
    base = [str(ansible), "localhost", "-i", "localhost,", "-c", "local", "-e",
            f"ansible_python_interpreter={venv / 'bin' / 'python'}"]
    facts_args = f"path={leaf} pool={pool} roots={root} system_roots=false"
    commands = {"ping": [*base, "-m", "ansible.builtin.ping"],
                "facts": [*base, "-m", "mailops.tls.mail_tls_chain_facts", "-a", facts_args]}
    for name, command in commands.items():
        check = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        if check.returncode:
            return OverheadResult(skipped=f"{name} failed: {(check.stdout + check.stderr).strip()[-400:]}")

    def call(command: list[str]):
        return lambda: subprocess.run(command, capture_output=True, env=environment, check=True)

    timings = common.interleaved({name: call(command) for name, command in commands.items()}, runs)[0]
    version = common.command_version([str(ansible), "--version"], r"core [0-9.]+")
    return OverheadResult(ping=timings["ping"], facts=timings["facts"], ansible=version)
