# SPDX-License-Identifier: GPL-3.0-or-later
"""Serve each scenario on a lab backend and run each client against it; judge the same chain with the library.

Shared by `make clients` (tests/clients/matrix.py, every client and scenario) and the test in `make test` (a fast
subset). A scenario a server refuses to load is recorded as not served, with the server's own words.
"""
from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import clients as clientlib
import scenarios as scenariolib

from ansible_collections.mailops.tls.plugins.module_utils.analysis import analyze, load_request
from ansible_collections.mailops.tls.plugins.module_utils.findings import ERROR, WARNING

NOT_SERVED = "not served"
#: Lines of Postfix's and Dovecot's logs that say why they did not load a chain.
SERVER_REFUSAL = re.compile(r"\b(?:[Ee]rror|[Ff]atal|warning): .*(?:certificate|key|SSL|TLS)")
#: lab protocol -> the process whose log lines speak for it (Dovecot's IMAP and POP3 share one log).
LOGGED_AS = {"smtp": "smtpd", "imap": "imap-login", "pop3": "pop3-login"}


def library_verdict(scenario: scenariolib.Scenario, root_pem: bytes) -> dict:
    """The library's judgement of the served chain under the clients' trust: the worst severity ("ok" when no
    error and no warning) and the code of every finding."""
    with tempfile.TemporaryDirectory() as tmp:
        root_file = Path(tmp) / "root.pem"
        root_file.write_bytes(root_pem)
        request = load_request(content=scenario.chain_pem.decode("ascii"), roots=[str(root_file)],
                               system_roots=False, names=[scenario.host])
        findings = analyze(request).findings
    severities = {f.severity for f in findings}
    worst = ERROR if ERROR in severities else WARNING if WARNING in severities else "ok"
    return {"verdict": worst, "codes": sorted({f.code for f in findings})}


def serve(lab, scenario: scenariolib.Scenario, services: Sequence[str]) -> dict:
    """Serve the scenario on backend mx1; return service -> None when it serves the chain, else why not."""
    import lab as lablib

    backend = lab.backend(0)
    expected = lablib.chain_ders(scenario.chain_pem)
    logs = {log: _size(log) for log in (backend.postfix_log, backend.dovecot_log)}
    with contextlib.suppress(lablib.LabError):  # some services may still serve it: each is checked below
        lab.set_chain(0, scenario.chain_pem, scenario.key_pem, timeout=8)
    status = {}
    for service in services:
        try:
            served = lablib.served_chain(backend.address, service, timeout=3)
        except (OSError, lablib.LabError) as exc:
            served = exc
        log = backend.log_for(service)
        status[service] = None if served == expected else \
            _refusal(log, logs[log], LOGGED_AS[lablib.TLS_MODES[service][0]], served)
    return status


def _size(log: Path) -> int:
    try:
        return log.stat().st_size
    except OSError:
        return 0


def _refusal(log: Path, since: int, process: str, served) -> str:
    """The server process's last log line since offset since about its TLS files, or what the handshake did."""
    try:
        with open(log, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode(errors="replace")
    except OSError:
        text = ""
    lines = [line for line in text.splitlines() if process in line and SERVER_REFUSAL.search(line)]
    if lines:  # without the timestamp and Dovecot's connection details (addresses change between runs)
        return re.sub(r"^\S+ \S+ \S+ |: user=<.*$", "", lines[-1])[:200]
    return f"the handshake gave {'another chain' if isinstance(served, list) else served}"[:200]


def measure(lab, workspace: clientlib.Workspace, scenarios: Sequence[scenariolib.Scenario],
            clients: Sequence[clientlib.Client], progress=None) -> dict:
    """scenario name -> {"served": {service: None | why not}, "clients": {client: {"result", "detail"}}}."""
    results = {}
    for scenario in scenarios:
        served = serve(lab, scenario, sorted({c.service for c in clients}))
        outcomes = {}
        for client in clients:
            refusal = served[client.service]
            outcome = (clientlib.Outcome(NOT_SERVED, f"{client.service}: {refusal}") if refusal
                       else client.run(workspace, scenario.host))
            outcomes[client.name] = {"result": outcome.result, "detail": outcome.detail}
            if progress:
                progress(scenario, client, outcome)
        results[scenario.name] = {"served": served, "clients": outcomes}
    lab.reset_chain(0)
    return results
