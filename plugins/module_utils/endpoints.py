# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Live endpoints judged like files: probe, analyse each chain as sent, compare backends and services.

A chain is judged offline with the same analysis and the same issue codes as a file, so a missing
intermediate is `missing_intermediate` whether it is missing from fullchain.pem or from port 993.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.analysis import (
    Analysis,
    Judgement,
    analyze,
    loaded_certificates,
)
from ansible_collections.mailops.tls.plugins.module_utils.certs import sha256_hex
from ansible_collections.mailops.tls.plugins.module_utils.findings import ERROR, WARNING, Finding, finding
from ansible_collections.mailops.tls.plugins.module_utils.probe import (
    ONCE,
    Endpoint,
    ProbeResult,
    Sampling,
    probe_sampled,
)


@dataclass(frozen=True)
class EndpointReport:
    """One probe of one endpoint (and key type) with its verdict."""

    probe: ProbeResult
    analysis: Optional[Analysis]
    findings: tuple[Finding, ...]

    @property
    def name(self) -> str:
        """How results and messages name this probe: endpoint, protocol and the key type asked for."""
        endpoint = self.probe.endpoint
        return (f"{endpoint} {endpoint.dialect}" + (f" {endpoint.key_type}" if endpoint.key_type else "")
                + (f", probe {self.probe.sample}" if self.probe.sample else ""))

    @property
    def chain_id(self) -> Optional[tuple[str, ...]]:
        """The presented chain as SHA-256 fingerprints, or None when nothing was presented."""
        return tuple(sha256_hex(der) for der in self.probe.chain_der) if self.probe.ok else None

    def as_dict(self) -> dict:
        endpoint = self.probe.endpoint
        analysis = self.analysis.as_dict() if self.analysis else None
        error = None if self.probe.ok else {"code": self.probe.error_code, "message": self.probe.error_message}
        return {
            "name": self.name, "address": endpoint.address, "peer_address": self.probe.peer_address,
            "port": endpoint.port, "protocol": endpoint.dialect,
            "server_name": endpoint.server_name, "sni": endpoint.sni, "label": endpoint.label,
            "key_type_requested": endpoint.key_type, "key_type": self.probe.key_type,
            "sample": self.probe.sample, "ok": self.probe.ok, "error": error,
            "tls_version": self.probe.tls_version, "cipher": self.probe.cipher,
            "seconds": round(self.probe.seconds, 4),
            "presented": analysis["certificates"] if analysis else [],
            "chain": analysis["chain"] if analysis else [], "root": analysis["root"] if analysis else None,
            "names": analysis["names"] if analysis else [],
            "complete": bool(analysis and analysis["complete"]), "ordered": bool(analysis and analysis["ordered"]),
            "trusted": bool(analysis and analysis["trusted"]),
            "issues": [f.as_dict() for f in self.findings],
        }


def identity_names(endpoint: Endpoint, extra: Sequence[str]) -> tuple[str, ...]:
    """The names the served certificate must be valid for: the public name (or the address when it is a name,
    as clients connecting by it would check), then the extra names."""
    first = endpoint.server_name or endpoint.sni
    names = [first] if first else []
    return tuple(dict.fromkeys([*names, *extra]))


def judge(result: ProbeResult, judgement: Judgement) -> EndpointReport:
    """Analyse the chain one endpoint presented, or turn its failure into a finding."""
    endpoint = result.endpoint
    if not result.ok:
        return EndpointReport(result, None, (finding(result.error_code, result.error_message),))
    presented = loaded_certificates(result.chain_der, f"the chain sent by {endpoint}")
    analysis = analyze(judgement.request(presented, names=identity_names(endpoint, judgement.names)))
    return EndpointReport(result, analysis, analysis.findings)


@dataclass(frozen=True)
class Presented:
    """What one probe presented, in the terms comparisons need; built from a live probe or from its stored
    result, so one host's probes and a whole fleet's are compared the same way."""

    where: str  # "address:port (label)"
    address: str
    port: int
    sni: Optional[str]
    answering_for: str  # the name it is grouped under; "(no SNI)" marks default certificates
    key_type: Optional[str]
    chain_id: tuple[str, ...]  # SHA-256 of each certificate as sent
    errors: int
    leaf: str  # how messages describe the chain


def _answering_for(name: str, sni: Optional[str]) -> str:
    """Probed without SNI, an endpoint shows its default certificate: compared only with other defaults."""
    return name if sni else f"{name} (no SNI)"


def _chain_description(subject: Optional[str], sha256: Optional[str], count: int) -> str:
    if subject is None:
        return "no certificate"
    return f"leaf '{subject}' {sha256[:23]}... with {count - 1} more certificate(s)"


def presented_of(report: EndpointReport) -> Optional[Presented]:
    """A live probe's chain for comparison, or None when it presented nothing."""
    if report.chain_id is None:
        return None
    endpoint = report.probe.endpoint
    certificates = report.analysis.certificates if report.analysis else ()
    leaf = certificates[0].info if certificates else None
    return Presented(str(endpoint), endpoint.address, endpoint.port, endpoint.sni,
                     _answering_for(endpoint.server_name or endpoint.address, endpoint.sni), report.probe.key_type,
                     report.chain_id, sum(f.severity == ERROR for f in report.findings),
                     _chain_description(leaf.subject if leaf else None, leaf.sha256 if leaf else None,
                                        len(certificates)))


def presented_from_result(endpoint: dict, where: str) -> Optional[Presented]:
    """A stored probe result (an item of endpoint_results()['endpoints']) for comparison, or None."""
    certificates = endpoint.get("presented") or []
    if not endpoint.get("ok") or not certificates:
        return None
    leaf = certificates[0]
    return Presented(where, endpoint["address"], endpoint["port"], endpoint.get("sni"),
                     _answering_for(endpoint.get("server_name") or endpoint["address"], endpoint.get("sni")),
                     endpoint.get("key_type"), tuple(cert["fingerprints"]["sha256"] for cert in certificates),
                     sum(issue["severity"] == ERROR for issue in endpoint.get("issues") or ()),
                     _chain_description(leaf["subject"], leaf["fingerprints"]["sha256"], len(certificates)))


def mismatches(items: Sequence[Optional[Presented]], services: bool = True,
               expected_leaves: Sequence[str] = ()) -> dict[int, list[Finding]]:
    """position -> backend_mismatch (and, with services, service_mismatch) findings where chains differ that
    must not. None items (nothing presented) are not compared. A chain whose leaf is in expected_leaves (the
    one just deployed) is the reference wherever it is served, however few serve it."""
    present = [(position, item) for position, item in enumerate(items) if item is not None]
    expected = frozenset(normal_fingerprint(leaf) for leaf in expected_leaves)
    extra: dict[int, list[Finding]] = defaultdict(list)
    for position, problem in _mismatches(present, _service_key, "backend_mismatch", "backends", expected):
        extra[position].append(problem)
    if services:
        # One service that itself presented several chains (a load balancer in front of differing backends) is
        # a backend_mismatch, already reported: only services that always present one chain are compared.
        unsteady = _unsteady_services(present)
        for position, problem in _mismatches(present, functools.partial(_address_key, unsteady=unsteady),
                                             "service_mismatch", "services", expected):
            extra[position].append(problem)
    return extra


def compare(reports: Sequence[EndpointReport], expected_leaves: Sequence[str] = ()) -> list[EndpointReport]:
    """Add backend_mismatch and service_mismatch findings where chains differ that must not; with expected_leaves
    (SHA-256 fingerprints), also old_chain_served where another leaf is served, and those leaves are the
    reference of the comparisons."""
    presented = [presented_of(report) for report in reports]
    extra = mismatches(presented, expected_leaves=expected_leaves)
    for position, problem in _not_expected(presented, expected_leaves):
        extra[position].insert(0, problem)
    return [replace(report, findings=report.findings + tuple(extra[n])) if extra.get(n) else report
            for n, report in enumerate(reports)]


def normal_fingerprint(value: str) -> str:
    """A SHA-256 fingerprint as results print it (uppercase, colon-separated), from any of its usual spellings."""
    digits = value.replace(":", "").replace(" ", "").upper()
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def _not_expected(presented: Sequence[Optional[Presented]], expected_leaves: Sequence[str]):
    """(position, old_chain_served) for every probe that presented a leaf other than the expected ones."""
    expected = [normal_fingerprint(leaf) for leaf in expected_leaves]
    if not expected:
        return
    for position, item in enumerate(presented):
        if item is not None and item.chain_id[0] not in expected:
            yield position, finding("old_chain_served", f"{item.where} serves the {item.leaf}, not the deployed "
                                    f"leaf {expected[0][:23]}...: check which files that service reads and how it "
                                    "is reloaded")


def _service_key(item: Presented) -> tuple:
    """Endpoints that must present one chain: one public name, one service, one key type, any backend."""
    return item.answering_for, item.port, item.key_type


def _probe_key(item: Presented) -> tuple:
    """One service of one address: every probe of it should see one chain."""
    return item.address, item.port, item.sni, item.key_type


def _address_key(item: Presented, unsteady: set) -> Optional[tuple]:
    """Services of one address answering for one name with one key type; None for an unsteady service."""
    if _probe_key(item) in unsteady:
        return None
    return item.address, item.sni, item.key_type


def _unsteady_services(present: Sequence[tuple[int, Presented]]) -> set:
    """The services (as _probe_key) that presented more than one chain over their probes."""
    chains: dict[tuple, set] = defaultdict(set)
    for _position, item in present:
        chains[_probe_key(item)].add(item.chain_id)
    return {service for service, seen in chains.items() if len(seen) > 1}


def _mismatches(present: Sequence[tuple[int, Presented]], key, code: str, what: str, expected: frozenset = frozenset()):
    """(position, finding) for every item whose chain differs from its group's reference chain.

    The reference is the chain with an expected leaf when there is one (the deployed chain is right even on the
    fewest ports), else the most common one; in a tie the chain with the fewest errors: the broken backend is
    the one to fix, whichever was listed first."""
    groups: dict[tuple, list[tuple[int, Presented]]] = defaultdict(list)
    for position, item in present:
        group_key = key(item)
        if group_key is not None:
            groups[group_key].append((position, item))
    for members in groups.values():
        by_chain: dict[tuple, list[tuple[int, Presented]]] = defaultdict(list)
        for position, item in members:
            by_chain[item.chain_id].append((position, item))
        if len(by_chain) < 2:
            continue
        ordered = sorted(by_chain.values(), key=lambda group: (group[0][1].chain_id[0] not in expected, -len(group),
                                                               group[0][1].errors, group[0][0]))
        summary = "; ".join(f"{group[0][1].leaf} from {', '.join(dict.fromkeys(item.where for _pos, item in group))}"
                            for group in ordered)
        for group in ordered[1:]:
            for position, item in group:
                yield position, finding(code, f"{item.where} presents another chain than the other {what} "
                                        f"answering for {item.answering_for}: {summary}; deploy the same chain "
                                        "everywhere")


def probe_and_judge(endpoints: Sequence[Endpoint], judgement: Judgement, timeout: float, concurrency: int,
                    key_types: Sequence[str] = (), samplings: Sequence[Optional[Sampling]] = (),
                    expected_leaves: Sequence[str] = ()) -> list[EndpointReport]:
    """Probe every endpoint (once per key type; a load balancer, with its Sampling in samplings at the same
    position, until every server behind it answered or its bound), judge each chain, then compare them (and with
    the expected leaves); results in input order, the probes of a sampled endpoint one after another."""
    jobs = [(endpoint, samplings[n] if n < len(samplings) and samplings[n] else ONCE)
            for n, endpoint in enumerate(endpoints)]
    groups = probe_sampled(jobs, timeout, concurrency, key_types)
    return compare([judge(result, judgement) for group in groups for result in group], expected_leaves)


def sampled_summary(reports: Sequence[EndpointReport]) -> list[dict]:
    """Per sampled endpoint (and key type): how many probes were made and how many different chains answered."""
    groups: dict[tuple, list[EndpointReport]] = {}
    for report in reports:
        if report.probe.sample:
            groups.setdefault((report.probe.endpoint, report.probe.endpoint.key_type), []).append(report)
    return [{"endpoint": str(endpoint), "address": endpoint.address, "port": endpoint.port,
             "server_name": endpoint.server_name, "key_type_requested": key_type, "probes": len(members),
             "answered": sum(report.probe.ok for report in members),
             "chains": len({report.chain_id for report in members if report.chain_id is not None})}
            for (endpoint, key_type), members in groups.items()]


def endpoint_results(reports: Sequence[EndpointReport]) -> dict:
    """The stable result of a probe run: every endpoint, every finding naming its endpoint, and counts."""
    issues = [dict(item.as_dict(), endpoint=report.name) for report in reports for item in report.findings]
    return {
        "endpoints": [report.as_dict() for report in reports],
        "sampled": sampled_summary(reports),
        "issues": issues,
        "summary": {
            "probed": len(reports),
            "answered": sum(report.probe.ok for report in reports),
            "clean": sum(report.probe.ok and not any(f.severity == ERROR for f in report.findings)
                         for report in reports),
            "errors": sum(item["severity"] == ERROR for item in issues),
            "warnings": sum(item["severity"] == WARNING for item in issues),
        },
    }
