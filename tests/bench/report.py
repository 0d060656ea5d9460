# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench's tables and targets: printed as text, and written as Markdown into docs/performance.md.

Only the part of docs/performance.md between the bench markers is rewritten; text around it is kept.
Chain-building ratios compare CPU time (the process and the children it waited for): on a shared machine
other tenants' load changes wall-clock time far more than CPU time. Live probing and whole Ansible runs
are judged by wall-clock time, which is what they cost.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import dnscost
import live as livemod
from chains import PoolResult
from common import Timing

BEGIN = "<!-- bench:begin (written by make bench: tests/bench/report.py) -->"
END = "<!-- bench:end -->"


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Target:
    name: str
    passed: Optional[bool]  # None: not measured
    detail: str

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


def _cpu(timing: Optional[Timing]) -> str:
    return timing.cpu.ms() if timing else "-"


def _ratio(numerator: Optional[float], denominator: Optional[float]) -> str:
    if not numerator or not denominator:
        return "-"
    return f"{numerator / denominator:.2f}x"


def _median(timing: Optional[Timing]) -> Optional[float]:
    return timing.cpu.median if timing else None


def chain_tables(pools: list[PoolResult], plain: dict[int, int], links: int) -> list[Table]:
    cold = Table("Cold chain building: read + parse + build one leaf's chain (CPU ms, median (min-max))",
                 ["pool", "ours", "community.crypto", "cryptography verifier", "openssl verify", "cc / ours",
                  "verifier / ours", "chain found"], [],
                 "wall-clock medians, same runs: " + "; ".join(
                     f"{p.size}: " + ", ".join(f"{tool} {p.cold[tool].wall.median * 1e3:.1f}"
                                               for tool in p.cold) for p in pools))
    warm = Table("Warm: pool already loaded, each further leaf (CPU ms, median (min-max))",
                 ["pool", "ours", "community.crypto", "cryptography verifier", "openssl verify (per extra leaf)",
                  "ours / verifier"], [])
    floor = Table("The floor: bulk PEM parsing of the pool + one signature check per chain link (CPU ms)",
                  ["pool", "bulk parse", "link checks", "floor", "ours cold", "ours / bulk parse", "ours / floor"], [])
    signatures = Table("Signature verifications per built chain",
                       ["pool", "chain links", "ours", "community.crypto", "verifier", "openssl"], [])
    memory = Table("Peak memory of one cold build (MiB; Python tools: added over the interpreter after imports; "
                   "openssl: whole process)", ["pool", "ours", "community.crypto", "verifier", "openssl"], [])
    for pool in pools:
        ok = ", ".join(f"{tool} {'yes' if good else 'NO'}" for tool, good in pool.ok.items())
        cc, verifier, ours = (_median(pool.cold.get(t)) for t in ("community.crypto", "verifier", "ours"))
        cold.rows.append([f"{pool.size:,}", _cpu(pool.cold.get("ours")), _cpu(pool.cold.get("community.crypto")),
                          _cpu(pool.cold.get("verifier")), _cpu(pool.cold.get("openssl")), _ratio(cc, ours),
                          _ratio(verifier, ours), ok])
        warm.rows.append([f"{pool.size:,}", _cpu(pool.warm.get("ours")), _cpu(pool.warm.get("community.crypto")),
                          _cpu(pool.warm.get("verifier")), _cpu(pool.warm.get("openssl")),
                          _ratio(_median(pool.warm.get("ours")), _median(pool.warm.get("verifier")))])
        floor.rows.append([f"{pool.size:,}", _cpu(pool.bulk_parse), _cpu(pool.link_checks), _cpu(pool.floor),
                           _cpu(pool.cold.get("ours")), _ratio(ours, _median(pool.bulk_parse)),
                           _ratio(ours, _median(pool.floor))])
        signatures.rows.append([f"{pool.size:,}", pool.signatures.get("chain links", "-"),
                                pool.signatures.get("ours", "-"), pool.signatures.get("community.crypto", "-"),
                                pool.signatures.get("verifier", "-"), pool.signatures.get("openssl", "-")])
        memory.rows.append([f"{pool.size:,}", *(_mib(pool.memory_kib.get(tool))
                                                for tool in ("ours", "community.crypto", "verifier", "openssl"))])
    for size, count in plain.items():
        signatures.rows.append([f"{size:,} (no look-alikes)", str(links), str(count), "", "", ""])
    signatures.note = ("Pools hold 1% look-alikes with the issuer's name and key identifier but another key: only a "
                       "signature tells them apart. Ours checks those tried before the real issuer (same-role "
                       "candidates go in SHA-256 order, so about half of them) and none after it has led to an "
                       "anchor, within a 400-check budget; community.crypto checks every same-name certificate "
                       "until one verifies. The root's self-signature is checked once by ours (cached per index), "
                       "never by the others.")
    return [cold, warm, floor, signatures, memory]


def _mib(kib: Optional[int]) -> str:
    return f"{kib / 1024:.1f}" if kib is not None else "-"


def live_table(result: livemod.LiveResult) -> Table:
    if result.skipped:
        return Table("Live probing of the lab", ["skipped"], [[result.skipped]])
    table = Table("Live probing of the lab: 3 backends x 8 ports (wall s, median (min-max))",
                  ["what", "endpoints", "seconds", "endpoints/s", "ours / tool (throughput)", "same verdicts"], [])
    ours_rate = livemod.throughput(result.ours_all, result.endpoints)
    module_verdicts = livemod.agreement(result, "ours, module call", tool_errors_judge=True).text(
        "the module", " as the library")
    for what, count, sample, verdicts in (
            ("ours, one module call (`ansible` process) for all", result.endpoints, result.module_all, module_verdicts),
            ("ours, one module call (`ansible` process) for one", 1, result.module_one, ""),
            ("ours, the library alone for all", result.endpoints, result.ours_all, ""),
            ("ours, the library alone for one", 1, result.ours_one, "")):
        table.rows.append([what, str(count), _seconds(sample), _rate(livemod.throughput(sample, count)), "",
                           verdicts])
    for tool, sample, count in (("sslyze", result.sslyze, result.sslyze_endpoints),
                                ("testssl.sh", result.testssl, result.testssl_endpoints)):
        if sample is None:
            table.rows.append([tool, "-", "not run", "-", "-", "-"])
            continue
        rate = livemod.throughput(sample, count)
        table.rows.append([f"{tool} {result.versions.get(tool) or ''}".strip(), str(count), _seconds(sample),
                           _rate(rate), _ratio(ours_rate, rate), livemod.agreement(result, tool).text(tool)])
    table.rows.extend(_dns_rows(result.dns))
    table.note = " ".join(result.notes)
    return table


def _dns_rows(cost: Optional[dnscost.DnsCost]) -> list:
    """The DNS checks of the lab's MX hosts (port 25), and what each adds per endpoint to the probe alone."""
    if cost is None:
        return []
    verdicts = f"{cost.verified} of {cost.endpoints} DANE verified"
    rows = []
    for what, sample, over_probe in (("DNS lookups alone (MX, A, AAAA, TLSA), 3 MX hosts", cost.lookups, False),
                                     ("port 25 probed and judged alone, 3 MX hosts", cost.probes, False),
                                     ("DANE check (lookups, probes, verdicts), 3 MX hosts", cost.dane, True),
                                     ("DANE and MTA-STS (policy over HTTPS), 3 MX hosts", cost.dane_mta_sts, True)):
        added = dnscost.per_endpoint_ms(sample, cost.probes, cost.endpoints) if over_probe else None
        note = f"+{added:.1f} ms per endpoint over the probe" if added is not None else ""
        rows.append([what, str(cost.endpoints), _seconds(sample), _rate(livemod.throughput(sample, cost.endpoints)),
                     note, verdicts if sample is cost.dane else ""])
    return rows


def _seconds(sample) -> str:
    return f"{sample.median:.3f} ({sample.low:.3f}-{sample.high:.3f})" if sample else "-"


def _rate(rate: Optional[float]) -> str:
    return f"{rate:.1f}" if rate else "-"


def overhead_table(result) -> Table:
    if result.skipped:
        return Table("Ansible overhead", ["skipped"], [[result.skipped]])
    rows = [["ansible.builtin.ping", result.ping.wall.ms(), result.ping.cpu.ms(), ""]]
    for name, timing in (("bench-only module that imports cryptography's x509 and returns", result.floor),
                         ("mailops.tls.mail_tls_chain_facts (1,000-certificate pool)", result.facts)):
        rows.append([name, timing.wall.ms(), timing.cpu.ms(), _ratio(timing.wall.median, result.ping.wall.median)])
    return Table(f"Ansible overhead: whole `ansible` process ({result.ansible or 'ansible-core'}), wall ms",
                 ["module", "wall ms", "CPU ms", "vs ping"], rows)


def deploy_table(result) -> Table:
    if result.skipped:
        return Table("The deploy role against the floor play", ["skipped"], [[result.skipped]])
    floor = result.runs["floor, first deploy"].seconds
    rows = [[name, f"{run.seconds:.1f}", _ratio(run.seconds, floor), str(run.tasks), str(run.skipped),
             "yes" if run.succeeded else "no"] for name, run in result.runs.items()]
    return Table(f"The deploy role against the floor play on the lab ({result.backends} backends, serial 1): wall s "
                 "per backend", ["play", "s per backend", "vs floor first deploy", "tasks run", "skipped",
                                 "as expected"], rows)


def deploy_targets(result) -> list[Target]:
    """Issue 17's targets: first deploy within 2x the floor, unchanged re-run within 1.5x the floor's re-run,
    rollback within 3x the floor's first deploy."""
    names = ("first deploy within 2x the floor play", "unchanged re-run within 1.5x the floor's re-run",
             "rollback within 3x the floor's first deploy")
    if result.skipped:
        return [Target(f"deploy: {name}", None, f"skipped: {result.skipped}") for name in names]
    runs = result.runs
    found = []
    pairs = (("role, first deploy", "floor, first deploy", 2),
             ("role, unchanged re-run", "floor, unchanged re-run", 1.5),
             ("role, rollback", "floor, first deploy", 3))
    for name, (ours, floor, factor) in zip(names, pairs):
        ratio = runs[ours].seconds / runs[floor].seconds
        valid = runs[ours].succeeded and runs[floor].succeeded
        found.append(Target(f"deploy: {name}", ratio <= factor and valid,
                            f"{ratio:.2f}x ({runs[ours].seconds:.1f} s, {runs[ours].tasks} tasks; floor "
                            f"{runs[floor].seconds:.1f} s, {runs[floor].tasks} tasks)"
                            + ("" if valid else "; a play did not end as expected")))
    return found


def targets(pools: list[PoolResult], plain: dict[int, int], links: int, live: livemod.LiveResult,
            overhead) -> list[Target]:
    by_size = {pool.size: pool for pool in pools}
    found: list[Target] = []

    def cold(size: int, tool: str) -> Optional[float]:
        pool = by_size.get(size)
        return _median(pool.cold.get(tool)) if pool else None

    for size, factor in ((1_000, 7), (3_000, 5), (10_000, 5)):
        ours, cc = cold(size, "ours"), cold(size, "community.crypto")
        found.append(Target(f"cold >= {factor}x faster than community.crypto at {size:,}",
                            None if not (ours and cc) else cc / ours >= factor,
                            f"{cc / ours:.2f}x (community.crypto {cc * 1e3:.1f} ms, ours {ours * 1e3:.1f} ms)"
                            if ours and cc else "-"))
    for size in (100, 1_000, 3_000, 10_000):
        ours, verifier = cold(size, "ours"), cold(size, "verifier")
        found.append(Target(f"cold no slower than cryptography's verifier at {size:,}",
                            None if not (ours and verifier) else ours <= verifier,
                            f"{verifier / ours:.2f}x (verifier {verifier * 1e3:.1f} ms, ours {ours * 1e3:.1f} ms)"
                            if ours and verifier else "-"))
    pool = by_size.get(10_000)
    if pool:
        ours, bulk = _median(pool.cold.get("ours")), _median(pool.bulk_parse)
        found.append(Target("cold at 10,000 within 1.5x of bulk-parsing the pool", ours <= 1.5 * bulk,
                            f"{ours / bulk:.2f}x (ours {ours * 1e3:.1f} ms, bulk parse {bulk * 1e3:.1f} ms)"))
    if plain:
        found.append(Target("signature checks = chain links when key identifiers tell issuers apart",
                            all(count == links for count in plain.values()),
                            ", ".join(f"{size:,}: {count} (links {links})" for size, count in plain.items())))
    warm = [(p.size, _median(p.warm.get("ours")), _median(p.warm.get("verifier"))) for p in pools]
    warm = [(size, ours, verifier) for size, ours, verifier in warm if ours and verifier]
    if warm:
        found.append(Target("warm: each further leaf within 1.5x of the verifier (4-certificate path), every pool",
                            all(ours <= 1.5 * verifier for _size, ours, verifier in warm),
                            "ours / verifier: " + ", ".join(f"{size:,}: {ours / verifier:.2f}x"
                                                            for size, ours, verifier in warm)))
    if not live.skipped and live.ours_all and live.ours_one:
        library = (f"library alone {live.ours_all.median / live.ours_one.median:.2f}x "
                   f"({live.ours_all.median * 1e3:.0f} ms for 24, {live.ours_one.median * 1e3:.0f} ms for one)")
        if live.module_all and live.module_one:
            ratio = live.module_all.median / live.module_one.median
            same = livemod.agreement(live, "ours, module call", tool_errors_judge=True)
            found.append(Target("24 endpoints in one call within 1.5x of one endpoint",
                                ratio <= 1.5 and same.compared == live.endpoints and same.agree == same.compared,
                                f"{ratio:.2f}x (module calls: {live.module_all.median * 1e3:.0f} ms for 24, "
                                f"{live.module_one.median * 1e3:.0f} ms for one); {library}"))
        else:
            found.append(Target("24 endpoints in one call within 1.5x of one endpoint", None,
                                f"module calls not run; {library}"))
        ours_rate = livemod.throughput(live.ours_all, live.endpoints)
        for tool, sample, count, factor in (("sslyze", live.sslyze, live.sslyze_endpoints, 3),
                                            ("testssl.sh", live.testssl, live.testssl_endpoints, 20)):
            rate = livemod.throughput(sample, count)
            same = livemod.agreement(live, tool)
            if not rate:
                found.append(Target(f">= {factor}x {tool}'s throughput, same verdicts", None, "not run"))
                continue
            found.append(Target(f">= {factor}x {tool}'s throughput, same verdicts",
                                ours_rate / rate >= factor and same.compared > 0 and same.agree == same.compared,
                                f"{ours_rate / rate:.1f}x, verdicts agree on {same.text(tool)}"))
    elif live.skipped:
        found.append(Target("live targets (24 vs 1, sslyze, testssl.sh)", None, f"skipped: {live.skipped}"))
    if overhead and not overhead.skipped:
        ratio = overhead.facts.wall.median / overhead.ping.wall.median
        found.append(Target("module call within 1.1x of ansible.builtin.ping (whole process)", ratio <= 1.1,
                            f"{ratio:.2f}x ({overhead.facts.wall.median * 1e3:.0f} ms, ping "
                            f"{overhead.ping.wall.median * 1e3:.0f} ms; a module importing only cryptography's "
                            f"x509: {overhead.floor.wall.median / overhead.ping.wall.median:.2f}x)"))
    return found


def render_text(table: Table) -> str:
    widths = [max(len(str(row[n])) for row in [table.header, *table.rows]) for n in range(len(table.header))]
    lines = [table.title, "  ".join(h.ljust(w) for h, w in zip(table.header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in table.rows]
    if table.note:
        lines.append(f"  note: {table.note}")
    return "\n".join(lines)


def render_markdown(table: Table) -> str:
    lines = [f"### {table.title}", "", "| " + " | ".join(table.header) + " |",
             "|" + "|".join(" --- " for _h in table.header) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


def targets_text(found: list[Target]) -> str:
    width = max(len(t.name) for t in found)
    return "\n".join(f"{t.verdict:4}  {t.name.ljust(width)}  {t.detail}" for t in found)


def targets_markdown(found: list[Target]) -> str:
    lines = ["### Targets", "", "| target | result | measured |", "| --- | --- | --- |"]
    lines += [f"| {t.name} | **{t.verdict}** | {t.detail} |" for t in found]
    return "\n".join(lines)


def machine_markdown(machine: dict, versions: dict, started: str, seconds: float, load: tuple[str, str]) -> str:
    lines = ["### Machine and versions", "",
             f"- Run: {started}, {seconds / 60:.1f} minutes; load average at start {load[0]}, at end {load[1]}",
             f"- CPU: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB memory",
             f"- OS: {machine['os']} (kernel {machine['kernel']}), Python {machine['python']}"]
    lines += [f"- {name}: {version or 'not installed'}" for name, version in versions.items()]
    return "\n".join(lines)


def write_markdown(path: Path, body: str) -> None:
    """Replace the bench section of path (or create the file with a short header)."""
    section = f"{BEGIN}\n{body.rstrip()}\n{END}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END) + 1:]
    else:
        text = (text or "# Performance\n\n`make bench` measures the collection against the tools users would pick "
                "instead; see tests/bench/.\n\n") + section
    path.write_text(text, encoding="utf-8")
