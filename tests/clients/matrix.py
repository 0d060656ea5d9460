# SPDX-License-Identifier: GPL-3.0-or-later
"""`make clients`: every client against every scenario on the lab; writes docs/clients.md and the library's data.

usage: python tests/clients/matrix.py [--results FILE] [--render-only]

Runs as root (the lab starts mail daemons; clients run in their own mount namespaces). The raw results are kept in
build/clients/results.json; --render-only writes the outputs again from that file without measuring.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(HERE), str(REPO / "tests"), str(REPO / "tests" / "lab"), str(REPO / "build" / "collections")]

import clients as clientlib  # noqa: E402
import lab as lablib  # noqa: E402
import measure as measurelib  # noqa: E402
import render  # noqa: E402
import scenarios as scenariolib  # noqa: E402

RESULTS = REPO / "build" / "clients" / "results.json"


def run_matrix(work: Path) -> dict:
    """Bring a one-backend lab up, measure every client on every scenario, tear it down; return the results."""
    base, lock = lablib.claim_base(1)
    lab_dir = Path(tempfile.mkdtemp(prefix="mailops-clients-"))
    lab_dir.chmod(0o755)
    lab = lablib.Lab(lab_dir, base=base)
    try:
        lab.up(backends=1)
        scenarios = scenariolib.build(lab.pki.root, work)
        available = [c for c in clientlib.CLIENTS if not c.missing()]
        workspace = clientlib.prepare(work / "workspace", lab.pki.root_pem, lab.backend(0).address,
                                      scenariolib.HOST_NAMES, available)

        def progress(scenario, client, outcome):
            print(f"{scenario.name:22} {client.name:28} {outcome.result:10} {outcome.detail[:70]}", flush=True)

        measured = measurelib.measure(lab, workspace, scenarios, available, progress)
        return {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "versions": clientlib.versions(clientlib.CLIENTS),
            "clients": [c.name for c in available],
            "missing": {c.name: c.missing() for c in clientlib.CLIENTS if c.missing()},
            "scenarios": [{"name": s.name, "title": s.title, "code": s.code, "host": s.host,
                           "library": measurelib.library_verdict(s, lab.pki.root_pem), **measured[s.name]}
                          for s in scenarios],
        }
    finally:
        lab.down()
        lock.close()
        shutil.rmtree(lab_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    if not args.render_only:
        if os.geteuid() != 0:
            sys.exit("make clients must run as root: the lab starts mail daemons, the clients run in mount "
                     "namespaces")
        work = args.results.parent
        work.mkdir(parents=True, exist_ok=True)
        results = run_matrix(work)
        args.results.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    results = json.loads(args.results.read_text())
    render.write(results, REPO)
    print(f"wrote {render.DOC} and {render.DATA} from {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
