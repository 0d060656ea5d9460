# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a playbook with the real ansible-playbook command against this collection, and read what it did."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
_RECAP = re.compile(r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                    r"\s+failed=(?P<failed>\d+)", re.MULTILINE)


@dataclass
class PlaybookRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def recap(self) -> dict:
        """host -> {ok, changed, unreachable, failed} from the PLAY RECAP."""
        return {m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
                for m in _RECAP.finditer(self.stdout)}

    @property
    def changed(self) -> int:
        return sum(host["changed"] for host in self.recap.values())

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def collections_path() -> str:
    """ANSIBLE_COLLECTIONS_PATH as make sets it, or the repository's build/collections link (tests/conftest.py)."""
    return os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(REPO / "build" / "collections")


def run_playbook(directory: Path, plays: list, *, inventory: Optional[dict] = None, args: tuple = (),
                 env: Optional[dict] = None, timeout: float = 600) -> PlaybookRun:
    """Write plays (and an inventory, YAML form) into directory and run ansible-playbook on them there."""
    playbook = directory / "playbook.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    inventory_file = directory / "inventory.yml"
    inventory_file.write_text(yaml.safe_dump(inventory or {"all": {"hosts": {"localhost": None}}}, sort_keys=False))
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_RETRY_FILES_ENABLED="0",
                       ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_PYTHON_INTERPRETER=sys.executable,
                       **(env or {}))
    done = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(inventory_file), str(playbook), *args], cwd=directory,
                          env=environment, capture_output=True, text=True, timeout=timeout, check=False)
    return PlaybookRun(done.returncode, done.stdout, done.stderr)
