# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""What sending servers check before delivering to a mail domain: its MX hosts, their DANE TLSA records and the
chains they present (or are about to present), its MTA-STS policy and TLS-RPT record; DNS through one resolver."""
from __future__ import annotations

import dataclasses
import datetime
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils import dane, mtasts
from ansible_collections.mailops.tls.plugins.module_utils import dns as dnslib
from ansible_collections.mailops.tls.plugins.module_utils.analysis import (
    Judgement,
    analyze,
    load_certificates,
    load_judgement,
)
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import EndpointReport, judge
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.findings import ERROR, WARNING, Finding, finding
from ansible_collections.mailops.tls.plugins.module_utils.module_args import parse_valid_at
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, probe_many
from ansible_collections.mailops.tls.plugins.module_utils.tlsa import TlsaRecord, base_name, parse_record


@dataclass(frozen=True)
class Request:
    """One mail domain to check. mx empty: looked up; tlsa given: used instead of DNS for every host and port;
    chain_der given: judged instead of probing (the chain a deploy is about to serve)."""

    domain: str
    resolver: dnslib.Resolver
    judgement: Judgement = field(default_factory=Judgement)  # Web PKI anchors for MTA-STS
    mx: tuple[str, ...] = ()
    ports: tuple[int, ...] = (25,)
    tlsa: tuple[TlsaRecord, ...] = ()
    chain_der: tuple[bytes, ...] = ()
    mta_sts: bool = True
    timeout: float = 10.0
    concurrency: int = 8
    valid_at: Optional[datetime.datetime] = None


def request_from_options(options: dict) -> Request:
    """The module's options (a plain dict) as a Request; InputError or DnsError for values that cannot work."""
    if options["timeout"] <= 0 or options["concurrency"] < 1:
        raise InputError("timeout must be more than 0 seconds and concurrency at least 1")
    for port in (*options["ports"], options["resolver_port"]):
        if not 0 < port < 65536:
            raise InputError(f"port {port} is not from 1 to 65535")
    domain = options["domain"].strip().rstrip(".").lower()
    for name in (domain, *options["mx"]):
        dnslib.encode_name(name)
    valid_at = parse_valid_at(options.get("valid_at"))
    chain_der: tuple[bytes, ...] = ()
    if options.get("path") or options.get("content"):
        certificates, _keys = load_certificates(options.get("path") or (), options.get("content"))
        planned = analyze(load_judgement(system_roots=False, valid_at=valid_at).request(certificates))
        if not planned.chain:
            raise InputError("path/content: no certificate found to judge: "
                             + "; ".join(f.message for f in planned.findings))
        chain_der = tuple(entry.der for entry in planned.chain)
    return Request(
        domain=domain,
        resolver=dnslib.resolver_from(options.get("resolver"), options["resolver_port"], options["timeout"]),
        judgement=load_judgement(roots=options["roots"], system_roots=options["system_roots"], valid_at=valid_at),
        mx=tuple(options["mx"]), ports=tuple(options["ports"]),
        tlsa=tuple(parse_record(text, f"tlsa item {n}") for n, text in enumerate(options["tlsa"], 1)),
        chain_der=chain_der, mta_sts=options["mta_sts"] and not chain_der, timeout=options["timeout"],
        concurrency=options["concurrency"], valid_at=valid_at)


@dataclass(frozen=True)
class MxHost:
    name: str
    preference: Optional[int]
    addresses: tuple[str, ...]
    secure: bool  # the MX and address answers were both DNSSEC-validated
    error: Optional[str] = None

    def as_dict(self) -> dict:
        return {"name": self.name, "preference": self.preference, "addresses": list(self.addresses),
                "secure": self.secure, "error": self.error}


def _lookup(resolver: dnslib.Resolver, name: str, rtype: str) -> tuple[Optional[dnslib.Answer], Optional[str]]:
    """The answer, or why there is none: a DnsError's message, or SERVFAIL and the like."""
    try:
        answer = dnslib.query(resolver, name, rtype)
    except dnslib.DnsError as exc:
        return None, str(exc)
    if answer.rcode not in ("NOERROR", "NXDOMAIN"):
        return None, f"{answer.rcode} from resolver {resolver} for {rtype} {name}"
    return answer, None


def mx_hosts(request: Request) -> tuple[list[MxHost], list[Finding]]:
    """The domain's MX hosts (given or looked up; the domain itself without MX records, RFC 5321 section 5.1)."""
    findings: list[Finding] = []
    if request.mx:
        names, secure = [(None, host.rstrip(".").lower()) for host in request.mx], True
    else:
        answer, error = _lookup(request.resolver, request.domain, "MX")
        if error:
            return [], [finding("dns_lookup_failed", f"the MX lookup of {request.domain} failed ({error}): senders "
                                "defer mail to the domain; check the zone's signatures and name servers")]
        names = sorted(answer.values) or [(None, request.domain)]
        secure = answer.secure
    hosts = []
    for preference, name in names:
        if request.chain_der:  # a planned chain is judged, nothing is probed: no address needed
            hosts.append(MxHost(name, preference, (), secure))
            continue
        addresses, address_secure, error = _addresses(request.resolver, name)
        if error:
            findings.append(finding("dns_lookup_failed", f"the address lookup of MX host {name} failed ({error}): "
                                    "senders cannot reach it; check the zone's signatures and name servers"))
        hosts.append(MxHost(name, preference, addresses, secure and address_secure, error))
    return hosts, findings


def _addresses(resolver: dnslib.Resolver, host: str) -> tuple[tuple[str, ...], bool, Optional[str]]:
    found, secure = [], True
    for rtype in ("A", "AAAA"):
        answer, error = _lookup(resolver, host, rtype)
        if error:
            return (), False, error
        found += answer.values
        secure = secure and answer.secure
    return tuple(found), secure, None


def tlsa_set(request: Request, host: MxHost, port: int) -> dane.TlsaSet:
    """The TLSA records of one host and port: given, or from DNS; secure only when every answer on the way was
    (RFC 7672 section 2.2: an insecure MX or address answer means DANE does not apply)."""
    name = base_name(host.name, port)
    if request.tlsa:
        return dane.TlsaSet(name, request.tlsa, True)
    answer, error = _lookup(request.resolver, name, "TLSA")
    if error:
        return dane.TlsaSet(name, (), False, error=error)
    return dane.TlsaSet(name, tuple(answer.values), answer.secure and host.secure, answer.original_ttl)


def check(request: Request) -> dict:
    """The whole check of one domain as a stable result (see the mail_tls_dane_info module's RETURN)."""
    hosts, dns_findings = mx_hosts(request)
    policy_findings: list[Finding] = []
    summary, policy = _mta_sts(request, policy_findings) if request.mta_sts else (None, None)
    targets = [(host, port) for host in hosts for port in request.ports]
    if request.chain_der:
        endpoints = [_planned(request, host, port) for host, port in targets]
    else:
        endpoints = _probed(request, [(host, port) for host, port in targets if host.addresses])
        if request.mta_sts:
            endpoints = [_with_policy(endpoint, policy, policy_findings) for endpoint in endpoints]
    domain = [f.as_dict() for f in (*dns_findings, *policy_findings)]
    # Policy findings are copied to each port-25 endpoint (the report judges endpoints): listed here once.
    issues = [dict(issue, endpoint=None) for issue in domain] + [
        dict(issue, endpoint=endpoint["name"]) for endpoint in endpoints for issue in endpoint["issues"]
        if issue not in domain]
    verdicts = [endpoint["dane"] for endpoint in endpoints if endpoint["dane"]]
    return {
        "domain": request.domain, "resolver": str(request.resolver),
        "mx": [host.as_dict() for host in hosts],
        "endpoints": endpoints,
        "mta_sts": summary,
        "records_to_publish": [{"name": v["tlsa"]["name"], "records": v["missing"], "ttl": v["tlsa"]["ttl"]}
                               for v in verdicts if v["status"] == dane.MISMATCH],
        "leftover_records": [{"name": v["tlsa"]["name"], "records": v["leftover"]}
                             for v in verdicts if v["leftover"]],
        "issues": issues,
        "summary": dict({status: sum(v["status"] == status for v in verdicts) for status in dane.STATUSES},
                        errors=sum(issue["severity"] == ERROR for issue in issues),
                        warnings=sum(issue["severity"] == WARNING for issue in issues)),
    }


def _planned(request: Request, host: MxHost, port: int) -> dict:
    verdict = dane.judge(request.chain_der, tlsa_set(request, host, port), host.name, request.domain,
                         request.valid_at)
    return {"name": f"{host.name}:{port} (planned chain)", "mx": host.name, "port": port, "probed": False,
            "dane": verdict.as_dict(), "issues": [f.as_dict() for f in verdict.findings]}


def _probed(request: Request, targets: Sequence[tuple[MxHost, int]]) -> list[dict]:
    endpoints = [Endpoint(host.addresses[0], port, server_name=host.name, label=host.name) for host, port in targets]
    judgement = dataclasses.replace(request.judgement, names=(), valid_at=request.valid_at)
    results = probe_many(endpoints, request.timeout, request.concurrency)
    entries = []
    for (host, port), result in zip(targets, results):
        # Nothing presented, nothing to judge: the probe's failure is the finding.
        verdict = dane.judge(result.chain_der, tlsa_set(request, host, port), host.name, request.domain,
                             request.valid_at, where=str(result.endpoint)) if result.ok else None
        entries.append(_entry(judge(result, judgement), host, verdict))
    return entries


def _entry(report: EndpointReport, host: MxHost, verdict: Optional[dane.DaneVerdict]) -> dict:
    entry = report.as_dict()
    entry.update(mx=host.name, probed=True, dane=verdict.as_dict() if verdict else None,
                 web_pki_errors=[f.as_dict() for f in report.findings if f.severity == ERROR],
                 issues=entry["issues"] + [f.as_dict() for f in (verdict.findings if verdict else ())])
    return entry


def _mta_sts(request: Request, findings: list[Finding]) -> tuple[dict, Optional[mtasts.Policy]]:
    """The domain's MTA-STS policy and TLS-RPT record as a summary, and the parsed policy (None when there is none
    or it is broken); findings about them are appended to findings."""
    domain = request.domain
    where = f"_mta-sts.{domain}"
    summary: dict = {"id": None, "policy": None, "error": None, "tls_rpt": None}
    rpt, error = _lookup(request.resolver, f"_smtp._tls.{domain}", "TXT")
    summary["tls_rpt"] = mtasts.tls_rpt(rpt.values) if rpt else None
    if summary["tls_rpt"] is None:
        findings.append(finding("tls_rpt_missing", f"_smtp._tls.{domain} has no 'v=TLSRPTv1; rua=...' TXT record"
                                + (f" ({error})" if error else "") + ": publish one so senders report failures"))
    try:
        answer, error = _lookup(request.resolver, where, "TXT")
        if error:
            raise mtasts.MtaStsError(f"the TXT lookup of {where} failed ({error})")
        summary["id"] = mtasts.policy_id(answer.values, where)
        if summary["id"] is None:
            findings.append(finding("mta_sts_missing", f"{domain} publishes no MTA-STS policy ({where} has no "
                                    "v=STSv1 TXT record)"))
            return summary, None
        addresses, _secure, error = _addresses(request.resolver, f"mta-sts.{domain}")
        if error or not addresses:
            raise mtasts.MtaStsError(f"mta-sts.{domain} has no address ({error or 'no A or AAAA record'})")
        text = mtasts.fetch_policy(domain, addresses[0], _web_pki_context(request.judgement), request.timeout)
        policy = mtasts.parse_policy(text, f"https://mta-sts.{domain}{mtasts.POLICY_PATH}")
    except mtasts.MtaStsError as exc:
        summary["error"] = str(exc)
        findings.append(finding("mta_sts_invalid", f"{domain}: {exc}"))
        return summary, None
    summary["policy"] = policy.as_dict()
    return summary, policy


def _web_pki_context(judgement: Judgement) -> ssl.SSLContext:
    """Web PKI verification as senders do it: the system's roots (unless disabled) and the judgement's roots."""
    context = ssl.create_default_context() if judgement.system_roots.certificates else ssl.SSLContext(
        ssl.PROTOCOL_TLS_CLIENT)
    for loaded in judgement.roots.certificates:
        context.load_verify_locations(cadata=loaded.der)
    return context


def _with_policy(endpoint: dict, policy: Optional[mtasts.Policy], shared: Sequence[Finding]) -> dict:
    """A port-25 endpoint with the domain's MTA-STS findings (shared) and the policy's verdict on it: the host
    covered by an mx pattern, its chain valid under Web PKI rules."""
    if endpoint["port"] != 25:
        return dict(endpoint, mta_sts=None)
    problems = list(shared)
    verdict = None
    if policy is not None and policy.mode != "none":
        pattern = mtasts.matching_pattern(endpoint["mx"], policy.mx)
        if pattern is None:
            problems.append(finding("mta_sts_mx_mismatch", f"MX host {endpoint['mx']} matches no mx pattern of the "
                                    f"MTA-STS policy ({', '.join(policy.mx)}); in mode {policy.mode} senders "
                                    f"{'refuse' if policy.mode == 'enforce' else 'report'} delivery to it: add it to "
                                    "the policy and change the id of the _mta-sts TXT record"))
        errors = endpoint["web_pki_errors"]
        if endpoint["ok"] and errors:
            problems.append(finding("mta_sts_certificate", f"{endpoint['name']}: the chain is not valid for "
                                    f"{endpoint['mx']} under Web PKI rules ({'; '.join(e['code'] for e in errors)}), "
                                    f"which MTA-STS in mode {policy.mode} requires: serve a publicly trusted chain "
                                    "that lists the MX host name"))
        verdict = {"mode": policy.mode, "pattern": pattern, "certificate_valid": bool(endpoint["ok"] and not errors)}
    return dict(endpoint, mta_sts=verdict, issues=endpoint["issues"] + [f.as_dict() for f in problems])
