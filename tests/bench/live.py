# SPDX-License-Identifier: GPL-3.0-or-later
"""Section 3 of make bench: live probing of the lab (3 backends x 8 ports), ours against sslyze and testssl.sh.

Ours, twice: whole `ansible` processes running mail_tls_endpoint_info for all 24 endpoints against one endpoint
(what the issue's target compares; the module's verdicts are checked against the library's), and the library
alone (the judgement loaded, endpoints.probe_and_judge: what the module does inside), which shows the cost of
probing without Ansible's. sslyze: its Scanner with the certificate-info scan only, the lab's root as its custom
CA file. testssl.sh: `-S` (server defaults and certificate checks) per endpoint, STARTTLS where the port needs
it, the lab's root added, no DNS; it takes half a minute per endpoint and CPU-seconds of its own, so within make
bench's time it checks the 7 endpoints of the first backend (throughput is per endpoint). Throughput against
sslyze and testssl.sh is the library's, as both run in-process or as their own command.
Neither tool speaks ManageSieve (4190): sslyze gets the other 21.
Traffic goes only to the lab's loopback addresses. Verdict per endpoint: ok when the chain is trusted (lab root),
complete, in order and valid for the public name.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import common
import dnscost
from common import Sample

from ansible_collections.mailops.tls.plugins.module_utils import analysis, endpoints, probe
from ansible_collections.mailops.tls.plugins.module_utils.findings import ERROR

SERVER_NAME = "mail.example.test"
PORTS = {25: "smtp", 587: "smtp", 465: None, 143: "imap", 993: None, 110: "pop3", 995: None, 4190: "sieve"}
NO_SIEVE = [port for port in PORTS if port != 4190]
TIMEOUT = 10.0
CONCURRENCY = 24
TESTSSL_PARALLEL = 7


@dataclass
class LiveResult:
    skipped: Optional[str] = None
    endpoints: int = 0
    ours_all: Optional[Sample] = None
    ours_one: Optional[Sample] = None
    module_all: Optional[Sample] = None
    module_one: Optional[Sample] = None
    sslyze: Optional[Sample] = None
    sslyze_endpoints: int = 0
    testssl: Optional[Sample] = None
    testssl_endpoints: int = 0
    verdicts: dict[str, dict[str, str]] = field(default_factory=dict)  # tool -> endpoint -> verdict
    versions: dict[str, Optional[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dns: Optional[dnscost.DnsCost] = None  # the DANE and MTA-STS checks of the lab's 3 MX hosts


def run(runs: int = 5, testssl_runs: int = 1) -> LiveResult:
    """Bring the lab up, measure, bring it down; skipped with a reason when not root or a tool is missing."""
    result = LiveResult()
    if os.geteuid() != 0:
        result.skipped = "not root: the lab adds loopback addresses and starts Postfix, Dovecot and HAProxy"
        return result
    _install_testssl(result)
    try:
        with common.running_lab("mailops-bench-lab-") as lab:
            _measure(lab, result, runs, testssl_runs)
    except RuntimeError as exc:
        result.skipped = f"the lab did not come up: {exc}"
    return result


def _install_testssl(result: LiveResult) -> None:
    if shutil.which("testssl"):
        return
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "-qq", "testssl.sh"], ["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "testssl.sh"]):
        if shutil.which("testssl"):
            break
        subprocess.run(command, capture_output=True, env=environment, check=False, timeout=600)
    if not shutil.which("testssl"):
        result.notes.append("testssl.sh could not be installed (apt-get install testssl.sh): skipped")


def _targets(lab) -> list[tuple[str, str, int]]:
    """(label, address, port) for every backend and port, in one fixed order."""
    return [(f"{backend.name}:{port}", backend.address, port) for backend in lab.backends for port in PORTS]


def _measure(lab, result: LiveResult, runs: int, testssl_runs: int) -> None:
    targets = _targets(lab)
    result.endpoints = len(targets)
    root = str(lab.root_file)
    every = [probe.Endpoint(address, port, server_name=SERVER_NAME, label=label) for label, address, port in targets]

    def ours(selection: list[probe.Endpoint]) -> list[endpoints.EndpointReport]:
        judgement = analysis.load_judgement(roots=[root], system_roots=False)
        return endpoints.probe_and_judge(selection, judgement, TIMEOUT, CONCURRENCY)

    ours(every)  # warm the daemons' process pools, as any first client would
    all_runs, one_runs = [], []
    reports = []
    for run in range(runs):
        elapsed, reports = common.clock(lambda: ours(every))
        all_runs.append(elapsed[0])
        one = every[(run * 7) % len(every)]
        one_runs.append(common.clock(lambda one=one: ours([one]))[0][0])
    result.ours_all, result.ours_one = Sample.of(all_runs), Sample.of(one_runs)
    result.verdicts["ours"] = {report.probe.endpoint.label: _our_verdict(report) for report in reports}
    _module_calls(every, root, runs, result)
    result.dns = dnscost.measure(lab, runs)
    result.versions["sslyze"] = common.package_version("sslyze")
    result.sslyze, result.verdicts["sslyze"] = _timed(runs, lambda: _sslyze(targets, root))
    result.sslyze_endpoints = len(result.verdicts["sslyze"])
    if shutil.which("testssl"):
        result.versions["testssl.sh"] = common.command_version(["testssl", "--version"], r"3\.[0-9.]+[^ \x1b]*")
        result.testssl, result.verdicts["testssl.sh"] = _timed(testssl_runs, lambda: _testssl(targets, root))
        result.testssl_endpoints = len(result.verdicts["testssl.sh"])


def _module_calls(every: list[probe.Endpoint], root: str, runs: int, result: LiveResult) -> None:
    """Whole `ansible` runs of mail_tls_endpoint_info: all endpoints in one call against one endpoint per call (each
    run the next one), interleaved."""
    ansible = common.AnsibleCommand.find()
    if ansible is None:
        result.notes.append("module calls skipped: the project's virtualenv has no ansible (make venv)")
        return

    def command(selection: list[probe.Endpoint]) -> list[str]:
        arguments = {"endpoints": [{"address": e.address, "port": e.port, "server_name": e.server_name,
                                    "label": e.label} for e in selection],
                     "roots": [root], "system_roots": False, "timeout": TIMEOUT, "concurrency": CONCURRENCY}
        return ansible.module("mailops.tls.mail_tls_endpoint_info", json.dumps(arguments))

    succeeded, output = ansible.run(command(every))
    if not succeeded:
        result.notes.append(f"module calls skipped: mail_tls_endpoint_info failed: {output}")
        return
    result.verdicts["ours, module call"] = _module_verdicts(output)
    singles = iter([command([every[(run * 7) % len(every)]]) for run in range(runs)])

    def one() -> object:
        return ansible.runner(next(singles))()

    timings = common.interleaved({"all": ansible.runner(command(every)), "one": one}, runs)[0]
    result.module_all, result.module_one = timings["all"].wall, timings["one"].wall


def _module_verdicts(output: str) -> dict[str, str]:
    """Verdict per endpoint label from `ansible`'s one-line result (`localhost | SUCCESS => {...}`)."""
    returned = json.loads(output[output.index("{"):])
    verdicts = {}
    for endpoint in returned["endpoints"]:
        errors = sorted({issue["code"] for issue in endpoint["issues"] if issue["severity"] == ERROR})
        verdicts[endpoint["label"]] = ("ok" if endpoint["ok"] and not errors else
                                       "not ok: " + ", ".join(errors or [endpoint["error"]["code"]]))
    return verdicts


def _timed(runs: int, measure) -> tuple[Sample, dict]:
    """Wall seconds of runs calls of measure, and the verdicts of the last one."""
    seconds, verdicts = [], {}
    for _run in range(runs):
        elapsed, verdicts = common.clock(measure)
        seconds.append(elapsed[0])
    return Sample.of(seconds), verdicts


def _our_verdict(report: endpoints.EndpointReport) -> str:
    if not report.probe.ok:
        return f"error {report.probe.error_code}"
    errors = sorted({f.code for f in report.findings if f.severity == ERROR})
    return "ok" if not errors else "not ok: " + ", ".join(errors)


def _sslyze(targets: list[tuple[str, str, int]], root: str) -> dict[str, str]:
    """One Scanner run over every target it can speak to; verdict from the custom CA's path validation."""
    from sslyze import (
        CertificateInfoExtraArgument,
        ProtocolWithOpportunisticTlsEnum,
        ScanCommand,
        ScanCommandsExtraArguments,
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
    )

    extra = ScanCommandsExtraArguments(certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(root)))
    requests, labels = [], {}
    for label, address, port in targets:
        if port not in NO_SIEVE:
            continue
        dialect = PORTS[port]
        starttls = getattr(ProtocolWithOpportunisticTlsEnum, dialect.upper()) if dialect else None
        request = ServerScanRequest(
            server_location=ServerNetworkLocation(SERVER_NAME, port, address),
            network_configuration=ServerNetworkConfiguration(SERVER_NAME, tls_opportunistic_encryption=starttls),
            scan_commands={ScanCommand.CERTIFICATE_INFO}, scan_commands_extra_arguments=extra)
        requests.append(request)
        labels[(address, port)] = label
    verdicts = {}
    with warnings.catch_warnings():  # its bundled trust stores hold a root with a negative serial
        warnings.simplefilter("ignore")
        scanner = Scanner()
        scanner.queue_scans(requests)
        for scanned in scanner.get_results():
            label = labels[(scanned.server_location.ip_address, scanned.server_location.port)]
            verdicts[label] = _sslyze_verdict(scanned)
    return verdicts


def _sslyze_verdict(scanned) -> str:
    attempt = scanned.scan_result.certificate_info if scanned.scan_result else None
    if attempt is None or attempt.result is None:
        return f"error {scanned.connectivity_error_trace or (attempt.error_reason if attempt else 'no result')}"
    problems = []
    for deployment in attempt.result.certificate_deployments:
        supplied = [p for p in deployment.path_validation_results if p.trust_store.name == "Supplied CA file"]
        if not supplied or not supplied[0].was_validation_successful:
            problems.append("untrusted")
        if not deployment.received_chain_has_valid_order:
            problems.append("wrong_order")
    return "ok" if not problems else "not ok: " + ", ".join(sorted(set(problems)))


def _testssl(targets: list[tuple[str, str, int]], root: str) -> dict[str, str]:
    """testssl -S per endpoint, TESTSSL_PARALLEL at a time (testssl is one process per host)."""
    work = Path(tempfile.mkdtemp(prefix="mailops-bench-testssl-"))
    first = targets[0][1]
    jobs = [(label, address, port) for label, address, port in targets if port in NO_SIEVE and address == first]

    def one(job: tuple[str, str, int]) -> tuple[str, str]:
        label, address, port = job
        output = work / f"{address}-{port}.json"
        command = ["testssl", "--quiet", "--warnings", "off", "--color", "0", "--server-defaults", "--nodns", "none",
                   "--ip", address, "--add-ca", root, "--jsonfile", str(output), "--openssl-timeout", "10"]
        if PORTS[port]:
            command += ["--starttls", PORTS[port]]
        subprocess.run([*command, f"{SERVER_NAME}:{port}"], capture_output=True, check=False, timeout=600)
        return label, _testssl_verdict(output)

    try:
        with ThreadPoolExecutor(max_workers=TESTSSL_PARALLEL) as pool:
            return dict(pool.map(one, jobs))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _testssl_verdict(output: Path) -> str:
    try:
        findings = {item["id"]: item for item in json.loads(output.read_text(encoding="utf-8"))}
    except (OSError, ValueError):
        return "error no result"
    problems = []
    if findings.get("cert_chain_of_trust", {}).get("severity") != "OK":
        problems.append("untrusted")
    if not findings.get("cert_trust", {}).get("finding", "").startswith("Ok"):
        problems.append("name_mismatch")
    if findings.get("certs_list_ordering_problem", {}).get("finding", "no") != "no":
        problems.append("wrong_order")
    return "ok" if not problems else "not ok: " + ", ".join(problems)


@dataclass(frozen=True)
class Agreement:
    """A tool's verdicts against ours on the endpoints it covers."""

    agree: int
    compared: int
    differ: list[str]
    # Endpoints ours judged ok where the tool did not finish its own scan (for example sslyze's BUG_IN_SSLYZE on
    # its SMTP STARTTLS): the tool gave no verdict to compare, which the tables say.
    unjudged: list[str]

    def text(self, tool: str, suffix: str = "") -> str:
        words = f"{self.agree}/{self.compared}{suffix}"
        if self.differ:
            words += " (" + "; ".join(self.differ[:3]) + ")"
        if self.unjudged:
            words += f"; {tool} gave no verdict on {len(self.unjudged)} (" + "; ".join(self.unjudged[:3]) + ")"
        return words


def agreement(result: LiveResult, tool: str, tool_errors_judge: bool = False) -> Agreement:
    """Ours against tool on the endpoints tool covers; with tool_errors_judge (our own module call), an error of
    the tool counts as its verdict instead of as no verdict."""
    ours, theirs = result.verdicts.get("ours", {}), result.verdicts.get(tool, {})
    covered = [label for label in theirs if label in ours]
    unjudged = [label for label in covered
                if not tool_errors_judge and theirs[label].startswith("error") and ours[label] == "ok"]
    compared = [label for label in covered if label not in unjudged]
    differ = [f"{label}: ours {ours[label]}, {tool} {theirs[label]}" for label in compared
              if (ours[label] == "ok") != (theirs[label] == "ok")]
    return Agreement(len(compared) - len(differ), len(compared), differ,
                     [f"{label}: {theirs[label]}" for label in unjudged])


def throughput(sample: Optional[Sample], count: int) -> Optional[float]:
    """Endpoints per second at the median."""
    return count / sample.median if sample and sample.median > 0 else None


if __name__ == "__main__":
    started = time.perf_counter()
    live = run(runs=2)
    print(live)
    print(f"{time.perf_counter() - started:.1f} s")
