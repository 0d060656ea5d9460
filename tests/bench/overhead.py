# SPDX-License-Identifier: GPL-3.0-or-later
"""Section 4 of make bench: one mail_tls_chain_facts call versus ansible.builtin.ping, whole `ansible` process.

All run through the project's own virtualenv (.venv, the ansible-core users of the collection get) against
localhost with the local connection, interleaved; the module builds the chain of the benchmark's leaf from
the 1,000-certificate pool. A third, bench-only module (modules/bench_cryptography_floor.py) imports
cryptography's x509 package and returns: the floor of any module that reads certificates.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import common
from common import Timing


@dataclass
class OverheadResult:
    ping: Optional[Timing] = None
    facts: Optional[Timing] = None
    floor: Optional[Timing] = None
    skipped: Optional[str] = None
    ansible: Optional[str] = None


def run(leaf: Path, pool: Path, root: Path, runs: int = 7) -> OverheadResult:
    ansible = common.AnsibleCommand.find()
    if ansible is None:
        return OverheadResult(skipped="the project's virtualenv has no ansible (make venv)")
    facts_args = f"path={leaf} pool={pool} roots={root} system_roots=false"
    commands = {"ping": ansible.module("ansible.builtin.ping"),
                "floor": ansible.module("bench_cryptography_floor", library=Path(__file__).parent / "modules"),
                "facts": ansible.module("mailops.tls.mail_tls_chain_facts", facts_args)}
    for name, command in commands.items():
        succeeded, output = ansible.run(command)
        if not succeeded:
            return OverheadResult(skipped=f"{name} failed: {output}")
    timings = common.interleaved({name: ansible.runner(command) for name, command in commands.items()}, runs)[0]
    return OverheadResult(ping=timings["ping"], facts=timings["facts"], floor=timings["floor"],
                          ansible=ansible.version())
