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

from ansible_collections.mailops.tls.plugins.module_utils.analysis import Analysis, Judgement, analyze
from ansible_collections.mailops.tls.plugins.module_utils.certs import sha256_hex
from ansible_collections.mailops.tls.plugins.module_utils.findings import ERROR, WARNING, Finding, finding
from ansible_collections.mailops.tls.plugins.module_utils.load import Loaded, LoadedCertificate
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, ProbeResult, probe_many


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
        return f"{endpoint} {endpoint.dialect}" + (f" {endpoint.key_type}" if endpoint.key_type else "")

    @property
    def chain_id(self) -> Optional[tuple[str, ...]]:
        """The presented chain as SHA-256 fingerprints, or None when nothing was presented."""
        return tuple(sha256_hex(der) for der in self.probe.chain_der) if self.probe.ok else None

    def as_dict(self) -> dict:
        endpoint = self.probe.endpoint
        analysis = self.analysis.as_dict() if self.analysis else None
        error = None if self.probe.ok else {"code": self.probe.error_code, "message": self.probe.error_message}
        return {
            "name": self.name, "address": endpoint.address, "port": endpoint.port, "protocol": endpoint.dialect,
            "server_name": endpoint.server_name, "sni": endpoint.sni, "label": endpoint.label,
            "key_type_requested": endpoint.key_type, "key_type": self.probe.key_type,
            "ok": self.probe.ok, "error": error,
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
    source = f"the chain sent by {endpoint}"
    presented = Loaded(tuple(LoadedCertificate(der, source, position, "certificate")
                             for position, der in enumerate(result.chain_der, 1)))
    analysis = analyze(judgement.request(presented, names=identity_names(endpoint, judgement.names)))
    return EndpointReport(result, analysis, analysis.findings)


def compare(reports: Sequence[EndpointReport]) -> list[EndpointReport]:
    """Add backend_mismatch and service_mismatch findings where chains differ that must not."""
    extra: dict[int, list[Finding]] = defaultdict(list)
    for position, problem in _mismatches(reports, _service_key, "backend_mismatch", "backends"):
        extra[position].append(problem)
    # One service that itself presented several chains (a load balancer in front of differing backends) is a
    # backend_mismatch, already reported: only services that always present one chain are compared.
    unsteady = _unsteady_services(reports)
    for position, problem in _mismatches(reports, functools.partial(_address_key, unsteady=unsteady),
                                         "service_mismatch", "services"):
        extra[position].append(problem)
    return [replace(report, findings=report.findings + tuple(extra[n])) if extra[n] else report
            for n, report in enumerate(reports)]


def _answering_for(endpoint: Endpoint) -> str:
    """The name an endpoint answers for, as comparisons group and name it; probed without SNI, it shows its
    default certificate, which is compared only with other default certificates."""
    name = endpoint.server_name or endpoint.address
    return name if endpoint.sni else f"{name} (no SNI)"


def _service_key(report: EndpointReport) -> tuple:
    """Endpoints that must present one chain: one public name, one service, one key type, any backend."""
    return _answering_for(report.probe.endpoint), report.probe.endpoint.port, report.probe.key_type


def _address_key(report: EndpointReport, unsteady: set) -> Optional[tuple]:
    """Services of one address answering for one name with one key type; None for an unsteady service."""
    if _probe_key(report) in unsteady:
        return None
    endpoint = report.probe.endpoint
    return endpoint.address, endpoint.sni, report.probe.key_type


def _probe_key(report: EndpointReport) -> tuple:
    """One service of one address: every probe of it should see one chain."""
    endpoint = report.probe.endpoint
    return endpoint.address, endpoint.port, endpoint.sni, report.probe.key_type


def _unsteady_services(reports: Sequence[EndpointReport]) -> set:
    """The services (as _probe_key) that presented more than one chain over their probes."""
    chains: dict[tuple, set] = defaultdict(set)
    for report in reports:
        if report.chain_id is not None:
            chains[_probe_key(report)].add(report.chain_id)
    return {service for service, seen in chains.items() if len(seen) > 1}


def _mismatches(reports: Sequence[EndpointReport], key, code: str, what: str):
    """(position, finding) for every endpoint whose chain differs from its group's most common one.

    In a tie the chain with the fewest errors is the reference: the broken backend is the one to fix, whichever
    was listed first."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for position, report in enumerate(reports):
        group_key = key(report) if report.chain_id is not None else None
        if group_key is not None:
            groups[group_key].append(position)
    for members in groups.values():
        by_chain: dict[tuple, list[int]] = defaultdict(list)
        for position in members:
            by_chain[reports[position].chain_id].append(position)
        if len(by_chain) < 2:
            continue
        ordered = sorted(by_chain.values(), key=lambda group: (-len(group), _errors(reports[group[0]]), group[0]))
        summary = "; ".join(_describe_group(reports, group) for group in ordered)
        for group in ordered[1:]:
            for position in group:
                endpoint = reports[position].probe.endpoint
                yield position, finding(code, f"{endpoint} presents another chain than the other {what} answering "
                                        f"for {_answering_for(endpoint)}: {summary}; deploy the same "
                                        "chain everywhere")


def _errors(report: EndpointReport) -> int:
    return sum(f.severity == ERROR for f in report.findings)


def _describe_group(reports: Sequence[EndpointReport], group: list[int]) -> str:
    analysis = reports[group[0]].analysis
    leaf = analysis.certificates[0].info if analysis and analysis.certificates else None
    what = (f"leaf '{leaf.subject}' {leaf.sha256[:23]}... with {len(analysis.certificates) - 1} more certificate(s)"
            if leaf else "no certificate")
    return f"{what} from {', '.join(str(reports[n].probe.endpoint) for n in group)}"


def probe_and_judge(endpoints: Sequence[Endpoint], judgement: Judgement, timeout: float, concurrency: int,
                    key_types: Sequence[str] = ()) -> list[EndpointReport]:
    """Probe every endpoint (once per key type), judge each chain, then compare them; results in input order."""
    results = probe_many(endpoints, timeout, concurrency, key_types)
    return compare([judge(result, judgement) for result in results])


def endpoint_results(reports: Sequence[EndpointReport]) -> dict:
    """The stable result of a probe run: every endpoint, every finding naming its endpoint, and counts."""
    issues = [dict(item.as_dict(), endpoint=report.name) for report in reports for item in report.findings]
    return {
        "endpoints": [report.as_dict() for report in reports],
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
