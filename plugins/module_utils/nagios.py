# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The Nagios/Icinga plugin check_mail_tls (scripts/check_mail_tls): files and live endpoints judged by the library,
as the monitoring plugin conventions want them: exit code 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, one status
line with performance data (days left per endpoint and certificate), then one line per problem."""
from __future__ import annotations

import argparse
import datetime
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.analysis import (
    Analysis,
    ChainEntry,
    Judgement,
    analyze,
    load_certificates,
    load_judgement,
)
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import probe_and_judge
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError, MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.expiry import ExpiryPolicy, parse_threshold
from ansible_collections.mailops.tls.plugins.module_utils.module_args import parse_valid_at
from ansible_collections.mailops.tls.plugins.module_utils.policy import Verdict, check_codes, evaluate
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
PREFIX = "MAIL TLS"
# address:port or [IPv6]:port, then /protocol optionally
_ENDPOINT = re.compile(r"^(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:/\[\]]+)):(?P<port>\d{1,5})(?:/(?P<protocol>\w+))?$")


@dataclass(frozen=True)
class Checked:
    """One file or endpoint judged: its name in the output, its analysis (None when nothing was read) and verdict."""

    name: str
    analysis: Optional[Analysis]
    verdict: Verdict


@dataclass(frozen=True)
class Outcome:
    """What the plugin prints and its exit code."""

    status: int
    text: str


def parse_endpoint(text: str, server_name: Optional[str]) -> Endpoint:
    """ADDRESS:PORT[/PROTOCOL] ([IPv6]:PORT for IPv6) as an Endpoint."""
    match = _ENDPOINT.match(text.strip())
    if not match:
        raise InputError(f"--endpoint {text!r} is not ADDRESS:PORT[/PROTOCOL], for example 192.0.2.10:25/smtp, "
                         "mail.example.org:993 or [2001:db8::10]:465")
    return Endpoint(address=match.group("ipv6") or match.group("host"), port=int(match.group("port")),
                    protocol=match.group("protocol"), server_name=server_name)


def check_files(paths: Sequence[str], judgement: Judgement) -> list[tuple[str, Optional[Analysis], tuple]]:
    """Each file analysed as one bundle: (name, analysis, findings)."""
    checked = []
    for path in paths:
        certificates, keys = load_certificates([path])
        result = analyze(judgement.request(certificates, keys))
        checked.append((path, result, result.findings))
    return checked


def check_endpoints(endpoints: Sequence[Endpoint], judgement: Judgement, timeout: float
                    ) -> list[tuple[str, Optional[Analysis], tuple]]:
    """Every endpoint probed at once and judged: (name, analysis, findings)."""
    return [(report.name, report.analysis, report.findings)
            for report in probe_and_judge(endpoints, judgement, timeout, concurrency=16)]


def judged(items: Sequence[tuple[str, Optional[Analysis], tuple]], ignore: Sequence[str]) -> list[Checked]:
    """Each item under the policy: every error is a violation unless its code is ignored."""
    return [Checked(name, analysis, evaluate(findings, (), ignore)) for name, analysis, findings in items]


def status_of(checked: Sequence[Checked]) -> int:
    """CRITICAL when any error finding (expired, expires_critical, a probe that failed...), WARNING for warnings."""
    if any(item.verdict.violations for item in checked):
        return CRITICAL
    if any(item.verdict.warnings for item in checked):
        return WARNING
    return OK


def _label(text: str) -> str:
    """A perfdata label: quoted, so spaces may stay; the plugin guidelines forbid = and ' in it."""
    return re.sub(r"['=]", "_", " ".join(text.split()))


def _days(delta: datetime.timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.2f}".rstrip("0").rstrip(".")


def _certificates(analysis: Optional[Analysis]) -> list[ChainEntry]:
    if analysis is None:
        return []
    return [*analysis.chain, *([analysis.root] if analysis.root else [])]


def perfdata(checked: Sequence[Checked], policy: ExpiryPolicy) -> list[str]:
    """'NAME'=days left of the first to expire, then 'NAME POSITION CN'=days left per certificate of the chain
    (root included), each with its warning and critical thresholds in days."""
    data = []
    for item in checked:
        certificates = _certificates(item.analysis)
        if not certificates:
            continue
        valid_at = item.analysis.valid_at
        values = []
        for position, entry in enumerate(certificates):
            info = entry.info
            left = info.not_after - valid_at
            warn = _days(policy.warning.margin(info.not_before, info.not_after))
            crit = _days(policy.critical.margin(info.not_before, info.not_after)) if policy.critical else ""
            name = (info.common_names or (info.subject,))[0]
            values.append((left, f"{_days(left)};{warn};{crit};;",
                           f"'{_label(f'{item.name} {position} {name}')}'"))
        first = min(values, key=lambda value: value[0])
        data.append(f"'{_label(item.name)}'={first[1]}")
        data.extend(f"{label}={value}" for _left, value, label in values)
    return data


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _summary(checked: Sequence[Checked], status: int) -> str:
    if status == OK:
        soonest = min(((entry.info.not_after, entry.info.subject, item.name) for item in checked
                       for entry in _certificates(item.analysis)), default=None)
        expiry = f", first expiry {soonest[0]:%Y-%m-%d} ({soonest[1]} on {soonest[2]})" if soonest else ""
        return f"{len(checked)} checked, no problem{expiry}"
    problems = []
    for item in checked:
        worst = item.verdict.violations if status == CRITICAL else item.verdict.warnings
        if worst:
            problems.append(f"{item.name}: {', '.join(dict.fromkeys(f.code for f in worst))}")
    return f"{len(problems)} of {len(checked)} with problems: " + "; ".join(problems)


def outcome(checked: Sequence[Checked], policy: ExpiryPolicy) -> Outcome:
    """The status line with perfdata, then every problem (errors first) on its own line."""
    status = status_of(checked)
    line = f"{PREFIX} {STATUS_NAMES[status]} - {_summary(checked, status)} | " + " ".join(perfdata(checked, policy))
    lines = [line.rstrip(" |")]
    for kind in ("violations", "warnings"):
        for item in checked:
            for found in getattr(item.verdict, kind):
                lines.append(f"{item.name}: [{found.code}] {_one_line(found.message)}")
    return Outcome(status, "\n".join(lines))


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 (CRITICAL to a monitoring system) on bad usage and 0 after --help: usage errors are
    UNKNOWN with a reason, --help exits UNKNOWN as the monitoring plugins' own do."""

    def error(self, message):
        raise _UsageError(message)

    def exit(self, status=0, message=None):
        if message:
            sys.stdout.write(message)
        raise SystemExit(UNKNOWN)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="check_mail_tls", description="Check the certificate chains of mail servers' TLS endpoints and of "
        "certificate files (mailops.tls). Exit code 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    parser.add_argument("-e", "--endpoint", action="append", default=[], metavar="ADDRESS:PORT[/PROTOCOL]",
                        help="a live endpoint, for example 192.0.2.10:25 or mail.example.org:993/imaps; "
                        "the protocol defaults from the port (25 and 587 smtp, 465 smtps, 143 imap, 993 imaps, ...)")
    parser.add_argument("-f", "--file", action="append", default=[], metavar="PATH",
                        help="a certificate bundle (leaf and intermediates, PEM, DER, PKCS#7 or PKCS#12)")
    parser.add_argument("-S", "--server-name", metavar="NAME",
                        help="the public name endpoints are asked for (SNI) and checked against")
    parser.add_argument("-n", "--name", action="append", default=[], metavar="NAME",
                        help="a further name every certificate must be valid for")
    parser.add_argument("-w", "--warning", default="30d", metavar="THRESHOLD",
                        help="WARNING when a certificate of a chain expires within this: days (30d) or a share of "
                        "its lifetime (33%%); default 30d")
    parser.add_argument("-c", "--critical", default="7d", metavar="THRESHOLD",
                        help="CRITICAL when a certificate expires within this, as --warning; default 7d")
    parser.add_argument("--roots", action="append", default=[], metavar="PATH",
                        help="trust anchors, for example a private CA's root (file or directory)")
    parser.add_argument("--no-system-roots", action="store_true", help="do not trust the system trust store")
    parser.add_argument("--ignore", action="append", default=[], metavar="CODE",
                        help="an issue code not to report, for example wildcard_used")
    parser.add_argument("--valid-at", metavar="TIME", help="judge at this time: 2027-01-31, or +30d, -1w")
    parser.add_argument("-t", "--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="seconds each endpoint may take, connect, STARTTLS and handshake together; default 10")
    return parser


def run(argv: Sequence[str]) -> Outcome:
    """Parse the command line, check everything it names and return what to print and the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(list(argv))
    except _UsageError as exc:
        return Outcome(UNKNOWN, f"{PREFIX} UNKNOWN - {exc}\n{parser.format_usage().strip()}")
    try:
        if not args.endpoint and not args.file:
            raise InputError("give at least one --endpoint or --file")
        if args.timeout <= 0:
            raise InputError("--timeout must be more than 0 seconds")
        check_codes(args.ignore, "--ignore")
        policy = ExpiryPolicy(parse_threshold(args.warning, "--warning"), parse_threshold(args.critical, "--critical"))
        judgement = load_judgement(roots=args.roots, system_roots=not args.no_system_roots, names=args.name,
                                   valid_at=parse_valid_at(args.valid_at), expiry=policy)
        endpoints = [parse_endpoint(text, args.server_name) for text in args.endpoint]
        items = check_files(args.file, judgement) + (check_endpoints(endpoints, judgement, args.timeout)
                                                     if endpoints else [])
    except MailTlsError as exc:
        return Outcome(UNKNOWN, f"{PREFIX} UNKNOWN - {_one_line(str(exc))}")
    return outcome(judged(items, args.ignore), policy)


def main(argv: Sequence[str]) -> int:
    """The plugin: write the outcome to stdout (a command, not a module: no AnsibleModule to report through) and
    return its exit code; anything unexpected is UNKNOWN, never a traceback."""
    try:
        result = run(argv)
    except Exception as exc:  # a monitoring plugin must answer 3 with a reason whatever happens
        result = Outcome(UNKNOWN, f"{PREFIX} UNKNOWN - internal error: {type(exc).__name__}: {_one_line(str(exc))}")
    sys.stdout.write(result.text + "\n")
    return result.status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
