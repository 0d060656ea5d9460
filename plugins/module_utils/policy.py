# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Policy for compliance gates: which findings fail, which are waived, which become warnings."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ansible_collections.mailops.tls.plugins.module_utils.client_matrix import clients_note
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.findings import CODES, ERROR, WARNING, Finding


@dataclass(frozen=True)
class Verdict:
    violations: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    waived: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        return not self.violations


def check_codes(codes: Sequence[str], option: str) -> None:
    """Refuse unknown issue codes, so a typo in a policy does not silently waive or require nothing."""
    unknown = sorted(set(codes) - set(CODES))
    if unknown:
        raise InputError(f"{option} lists unknown issue code(s) {', '.join(unknown)}; known codes: "
                         f"{', '.join(sorted(CODES))}")


def evaluate(findings: Sequence[Finding], fail_on: Sequence[str] = (), ignore: Sequence[str] = ()) -> Verdict:
    """Errors and codes in fail_on are violations unless their code is in ignore; warnings become warnings."""
    check_codes(fail_on, "fail_on")
    check_codes(ignore, "ignore")
    waived = tuple(f for f in findings if f.code in ignore)
    kept = [f for f in findings if f.code not in ignore]
    violations = tuple(f for f in kept if f.severity == ERROR or f.code in fail_on)
    warnings = tuple(f for f in kept if f.severity == WARNING and f not in violations)
    return Verdict(violations, warnings, waived)


def failure_message(violations: Sequence[Finding], subject: str) -> str:
    """One line per violation, so a pipeline log shows each on its own, naming the mail clients that refused such a
    chain in the client lab."""
    return "\n".join([f"{subject}: {len(violations)} policy violation(s):", *map(_violation_line, violations)])


def _violation_line(violation: Finding) -> str:
    """'- [code] message. Refused in the client lab by ...': the message ends as a sentence before the note."""
    line = f"- [{violation.code}] {_one_line(violation.message)}"
    note = clients_note(violation.code)
    return f"{line.rstrip('.')}. {note}" if note else line


def _one_line(text: str) -> str:
    """Line breaks shown as \\n: a certificate's subject is untrusted text and must not start a line of its own."""
    return "\\n".join(text.splitlines())


def gate(subjects: Sequence[tuple[str, Sequence[Finding]]], fail_on: Sequence[str] = (),
         ignore: Sequence[str] = ()) -> tuple[tuple[str, Verdict], ...]:
    """Evaluate several subjects (a file chain, each endpoint) under one policy."""
    return tuple((name, evaluate(findings, fail_on, ignore)) for name, findings in subjects)


def gate_message(judged: Sequence[tuple[str, Verdict]]) -> str:
    """Every failing subject with each of its violations on its own line."""
    return "\n".join(failure_message(verdict.violations, name) for name, verdict in judged if not verdict.passed)
