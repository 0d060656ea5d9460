# SPDX-License-Identifier: GPL-3.0-or-later
"""Run one module through the real ansible command (ad-hoc, local connection) and read its result back."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[4]
ANSIBLE_BIN = Path(sys.executable).with_name("ansible")
# The managed host's Python: this virtualenv's by default; `make unit-distros` names a distribution's own
# (Debian 12's /usr/bin/python3, or Debian 13's in the lab's chroot, see tests/lab/distro.py). Pipelining and a
# temporary directory under /tmp let a chrooted interpreter read the module and the test's files.
MODULE_PYTHON = os.environ.get("MAILOPS_MODULE_PYTHON") or sys.executable
_STATUS = re.compile(r"^localhost \| (?P<status>[A-Z!]+) => ", re.MULTILINE)


def run_task(tmp_path: Path, module: str, args: dict, check_mode: bool = False, diff: bool = False,
             env: Optional[dict] = None, verbose: bool = False) -> dict:
    """Run one module with the ansible command (ad-hoc) and return its result as Ansible reports it.

    Besides the module's own keys: failed, stderr_of_ansible, and diff_text (what --diff printed)."""
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_PIPELINING="1",
                       ANSIBLE_REMOTE_TMP="/tmp/.ansible-mailops-tests", **(env or {}))
    command = [str(ANSIBLE_BIN), "localhost", "-i", "localhost,", "-c", "local", "-m", module,
               "-a", json.dumps(args), "-e", f"ansible_python_interpreter={MODULE_PYTHON}"]
    if check_mode:
        command.append("--check")
    if diff:
        command.append("--diff")
    if verbose:
        command.append("-v")
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False,
                               cwd=tmp_path)
    match = _STATUS.search(completed.stdout)
    if match is None:
        raise AssertionError(f"no result in the ansible output:\n{completed.stdout}\n{completed.stderr}")
    result = json.loads(completed.stdout[match.end():])
    result["failed"] = "FAILED" in match.group("status")
    result["stderr_of_ansible"] = completed.stderr
    result["diff_text"] = completed.stdout[:match.start()]
    return result
