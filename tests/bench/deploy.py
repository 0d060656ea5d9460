# SPDX-License-Identifier: GPL-3.0-or-later
"""Section 5 of make bench: the deploy role against the floor play on the lab's three backends (issue 17).

The floor is the play an operator writes by hand without any check (floor-play.yml): copy the key, copy the
chain, set Postfix's smtpd_tls_chain_files, reload Postfix and Dovecot. Both run through the project's own
virtualenv with playbooks/deploy.yml's settings (serial 1, the lab's inventory from
tests/integration/deploy_inventory.py, local connection, pipelining), in this order, each on a new leaf where it
deploys one: the floor's first deploy and its re-run, the role's first deploy (with the load-balancer pass) and
its unchanged re-run, and one rollback per backend (a typo in a main.cf parameter the role writes, so `postfix
check` fails after the files were written). Times are wall seconds per backend; tasks are those that ran on one
backend (ok or failed, from the play recap), skipped ones apart.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import common

FLOOR_PLAY = Path(__file__).parent / "floor-play.yml"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=\d+\s+unreachable=\d+\s+failed=(\d+)\s+skipped=(\d+)", re.M)


@dataclass(frozen=True)
class PlayRun:
    seconds: float  # wall, per backend
    tasks: int  # run on one backend (ok + failed)
    skipped: int
    succeeded: bool


@dataclass
class DeployResult:
    runs: dict[str, PlayRun] = field(default_factory=dict)
    skipped: Optional[str] = None
    backends: int = 0


def run() -> DeployResult:
    """Bring a lab of three backends up, measure, bring it down; skipped with a reason when not root."""
    if os.geteuid() != 0:
        return DeployResult(skipped="not root: the lab adds loopback addresses and starts Postfix, Dovecot and HAProxy")
    playbook = Path(os.environ.get("VENV", common.REPO / ".venv")) / "bin" / "ansible-playbook"
    if not playbook.exists():
        return DeployResult(skipped="the project's virtualenv has no ansible-playbook (make venv)")
    sys.path.insert(0, str(common.TESTS / "integration"))
    import deploy_inventory

    try:
        with common.running_lab("mailops-bench-deploy-") as lab:
            work = Path(tempfile.mkdtemp(prefix="mailops-bench-deploy-runs-"))
            try:
                inventory = deploy_inventory.write_inventory(lab, work / "inventory.yml")
                return _measure(lab, _Runner(playbook, inventory, work))
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except RuntimeError as exc:
        return DeployResult(skipped=f"the lab did not come up: {exc}")


@dataclass
class _Runner:
    playbook: Path
    inventory: Path
    work: Path
    count: int = 0

    def __call__(self, play: Path, extra: dict, backends: int, limit: str = "") -> PlayRun:
        self.count += 1
        extra_file = self.work / f"vars-{self.count}.json"
        extra_file.write_text(json.dumps(extra))
        environment = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(common.COLLECTIONS), "ANSIBLE_PIPELINING": "1",
                       "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCALHOST_WARNING": "0",
                       "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
        argv = [str(self.playbook), "-i", str(self.inventory), str(play), "-e", f"@{extra_file}",
                *(["--limit", limit] if limit else [])]
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=environment, cwd=common.REPO, check=False)
        seconds = time.perf_counter() - started
        recap = {host: (int(ok) + int(failed), int(skipped))
                 for host, ok, failed, skipped in RECAP.findall(done.stdout)}
        first = recap.get(limit or "mx1", (0, 0))
        return PlayRun(seconds / backends, first[0], first[1], done.returncode == 0)


def _pile(lab, directory: Path) -> dict:
    """A new leaf from the lab's CA for every name the lab's services answer for: chain file, key and root."""
    import lab as labmod

    directory.mkdir(parents=True)
    leaf = lab.pki.intermediate.leaf(*labmod.SERVICE_NAMES, *(b.hostname for b in lab.backends))
    (directory / "fullchain.pem").write_bytes(leaf.pem + lab.pki.intermediate_pem)
    (directory / "key.pem").write_bytes(leaf.key_pem())
    (directory / "root.pem").write_bytes(lab.pki.root_pem)
    return {"mail_tls_deploy_certificates": [str(directory / "fullchain.pem")],
            "mail_tls_deploy_private_key": str(directory / "key.pem"),
            "mail_tls_deploy_roots": [str(directory / "root.pem")], "mail_tls_deploy_system_roots": False}


def _measure(lab, play) -> DeployResult:
    result = DeployResult(backends=len(lab.backends))
    role = common.REPO / "playbooks" / "deploy.yml"
    floor_pile = _pile(lab, play.work / "floor")
    result.runs["floor, first deploy"] = play(FLOOR_PLAY, floor_pile, result.backends)
    result.runs["floor, unchanged re-run"] = play(FLOOR_PLAY, floor_pile, result.backends)
    role_pile = _pile(lab, play.work / "role")
    result.runs["role, first deploy"] = play(role, role_pile, result.backends)
    result.runs["role, unchanged re-run"] = play(role, role_pile, result.backends)
    broken = dict(_pile(lab, play.work / "rollback"), mail_tls_deploy_load_balancer={},
                  mail_tls_deploy_postfix_extra_settings={"default_process_limit": "1OO"})
    rollbacks = [play(role, broken, 1, limit=backend.name) for backend in lab.backends]
    result.runs["role, rollback"] = PlayRun(sum(r.seconds for r in rollbacks) / len(rollbacks), rollbacks[0].tasks,
                                            rollbacks[0].skipped, not any(r.succeeded for r in rollbacks))
    return result
