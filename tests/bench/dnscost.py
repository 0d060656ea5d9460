# SPDX-License-Identifier: GPL-3.0-or-later
"""Part of section 3 of make bench: what the DNS checks (DANE, MTA-STS) cost per endpoint, on the running lab.

The DNS lab (tests/lab/dnslab.py: NSD, a validating Unbound, the policy's HTTPS server on 127.0.53.1-3) serves
example.test for the lab's 3 backends as MX hosts. Measured with the library, warm resolver cache (what a fleet
audit sees after its first domain): the DNS lookups alone (MX, then A, AAAA and TLSA per MX host), the port-25
probes alone (probe and judge, the baseline), the DANE check (lookups, probes, verdicts) and DANE with MTA-STS (the
policy fetched over HTTPS too). The cost of DANE per endpoint is the DANE check minus the probes, over 3 endpoints.
"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import common
import dnslab
from common import Sample

from ansible_collections.mailops.tls.plugins.module_utils import dns, domaincheck, endpoints
from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement
from ansible_collections.mailops.tls.plugins.module_utils.load import load_bytes
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint

TIMEOUT = 10.0


@dataclass
class DnsCost:
    endpoints: int = 0
    lookups: Optional[Sample] = None
    probes: Optional[Sample] = None
    dane: Optional[Sample] = None
    dane_mta_sts: Optional[Sample] = None
    verified: int = 0  # endpoints DANE verified in the last run (all of them, or the numbers mean nothing)


def measure(lab, runs: int) -> DnsCost:
    """Bring the DNS lab up next to the running mail lab, measure, bring it down."""
    directory = Path(tempfile.mkdtemp(prefix="mailops-bench-dns-"))
    mail_dns = dnslab.MailDns(lab, directory)
    try:
        return _measure(lab, runs)
    finally:
        mail_dns.dns.down()


def _measure(lab, runs: int) -> DnsCost:
    judgement = Judgement(roots=load_bytes(lab.pki.root_pem, "the lab root"))
    request = domaincheck.Request(domain=dnslab.SIGNED, resolver=dns.Resolver(dnslab.RESOLVER, 53, TIMEOUT),
                                  judgement=judgement, mta_sts=False, timeout=TIMEOUT)
    port_25 = [Endpoint(b.address, 25, server_name=b.hostname) for b in lab.backends]

    def lookups() -> None:
        hosts, _findings = domaincheck.mx_hosts(request)
        for host in hosts:
            domaincheck.tlsa_set(request, host, 25)

    steps = {
        "lookups": lookups,
        "probes": lambda: endpoints.probe_and_judge(port_25, judgement, TIMEOUT, len(port_25)),
        "dane": lambda: domaincheck.check(request),
        "dane_mta_sts": lambda: domaincheck.check(dataclasses.replace(request, mta_sts=True)),
    }
    result = DnsCost(endpoints=len(port_25))
    for name, step in steps.items():
        step()  # the resolver's cache and the daemons' process pools warm, as after an audit's first domain
        setattr(result, name, Sample.of([common.clock(step)[0][0] for _run in range(runs)]))
    result.verified = domaincheck.check(request)["summary"]["verified"]
    return result


def per_endpoint_ms(sample: Optional[Sample], baseline: Optional[Sample], count: int) -> Optional[float]:
    """(sample - baseline) / count in milliseconds: what a check adds to each endpoint's probe."""
    if sample is None or baseline is None or not count:
        return None
    return (sample.median - baseline.median) * 1e3 / count
