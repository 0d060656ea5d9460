# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench: the collection measured side by side against the tools users would pick instead (issue 7).

1. Chain building for one leaf from decoy pools of 10 to 10,000 intermediates, cold and warm: the library
   against community.crypto's certificate_complete_chain, cryptography's verifier and openssl verify;
   signature verifications and peak memory (chains.py).
2. The floor: bulk PEM parsing of the pool and one signature check per link (chains.py).
3. Live probing of the lab, 24 endpoints in one call against one, against sslyze and testssl.sh (live.py;
   as root only: the lab needs it).
4. Ansible overhead: mail_tls_chain_facts against ansible.builtin.ping (overhead.py).
5. The deploy role against a four-task floor play on the lab: first deploy, unchanged re-run, rollback
   (deploy.py; as root only).
Prints the tables and the targets (PASS/FAIL) and, with --write, puts them into docs/performance.md.
Runs in the bench virtualenv (.venv-bench, tests/bench/requirements.txt); `make bench` sets it up.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

import chains
import common
import deploy
import live
import overhead
import pools
import report

SIZES = [10, 100, 1_000, 3_000, 10_000]
PLAIN_SIZES = [1_000, 10_000]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="write the results into this Markdown file (between markers)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="pool sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (default: by pool size)")
    parser.add_argument("--skip", default="", help="sections to skip: chains, live, overhead, deploy (comma-separated)")
    options = parser.parse_args()
    skip = set(filter(None, options.skip.split(",")))
    sizes = [int(size) for size in options.sizes.split(",")]
    started, clock, load_start = datetime.datetime.now().astimezone(), time.perf_counter(), common.load_average()
    if chains.community_crypto() is None:
        print("community.crypto is not importable: run in .venv-bench (make bench)", file=sys.stderr)
    tables, pool_results, plain = [], [], {}
    with tempfile.TemporaryDirectory(prefix="mailops-bench-") as work:
        space = pools.prepare(Path(work), sizes, [size for size in PLAIN_SIZES if size <= max(sizes)])
        if "chains" not in skip:
            for size in sizes:
                print(f"chain building: pool of {size:,} ...", flush=True)
                pool_results.append(chains.measure_pool(space, size, options.runs))
            plain = chains.plain_signatures(space)
            tables += report.chain_tables(pool_results, plain, space.chain_length - 1)
        live_result = live.LiveResult(skipped="skipped (--skip live)")
        if "live" not in skip:
            print("live probing: lab up, ours, sslyze, testssl.sh ...", flush=True)
            live_result = live.run()
        tables.append(report.live_table(live_result))
        overhead_result = None
        if "overhead" not in skip:
            print("ansible overhead ...", flush=True)
            middle = 1_000 if 1_000 in space.pools else max(space.pools)
            overhead_result = overhead.run(space.leaf, space.pools[middle], space.root)
            tables.append(report.overhead_table(overhead_result))
        deploy_result = deploy.DeployResult(skipped="skipped (--skip deploy)")
        if "deploy" not in skip:
            print("deploy role against the floor play: lab up, first deploy, re-run, rollback ...", flush=True)
            deploy_result = deploy.run()
        tables.append(report.deploy_table(deploy_result))
    found = report.targets(pool_results, plain, space.chain_length - 1, live_result, overhead_result)
    found += report.deploy_targets(deploy_result)
    seconds = time.perf_counter() - clock
    print()
    for table in tables:
        print(report.render_text(table), end="\n\n")
    print("Targets")
    print(report.targets_text(found))
    print(f"\n{seconds / 60:.1f} minutes; load average at start {load_start}, at end {common.load_average()}")
    if options.write:
        versions = {
            "cryptography": common.package_version("cryptography"),
            "ansible-core": common.package_version("ansible-core"),
            "community.crypto": _community_crypto_version(),
            "sslyze": common.package_version("sslyze"),
            "nassl": common.package_version("nassl"),
            "openssl": common.command_version(["openssl", "version"], r"OpenSSL [0-9][^ ]*"),
            "testssl.sh": live_result.versions.get("testssl.sh"),
            "postfix": common.command_version(["postconf", "-d", "-h", "mail_version"]),
            "dovecot": common.command_version(["dovecot", "--version"]),
            "haproxy": common.command_version(["haproxy", "-v"], r"version [0-9.]+"),
        }
        body = "\n\n".join([report.machine_markdown(common.machine(), versions, started.isoformat(timespec="seconds"),
                                                    seconds, (load_start, common.load_average())),
                            report.targets_markdown(found), *map(report.render_markdown, tables)])
        report.write_markdown(options.write, body)
        print(f"wrote {options.write}")
    return 0


def _community_crypto_version():
    module = chains.community_crypto()
    if module is None:
        return None
    manifest = Path(module.__file__).resolve().parents[2] / "MANIFEST.json"
    try:
        import json

        return json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"]
    except (OSError, ValueError, KeyError):
        return "installed"


if __name__ == "__main__":
    sys.exit(main())
