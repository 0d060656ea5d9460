# SPDX-License-Identifier: GPL-3.0-or-later
"""With CI=true a skipped test fails the pytest run unless its reason is on this short allowlist: on CI's machine
(root, Debian 12, everything installed by `make test`) every other test must run. Each entry says why it may skip
there too. tests/conftest.py registers the two hooks."""
from __future__ import annotations

import os

import pytest

# Reasons (the start of the skip message) a test may skip in CI, each for a property of the machine or of a pinned
# library that the project's scripts do not control.
ALLOWED_SKIPS = {
    "this machine has no ::1": "containers are often started without IPv6, so there is no ::1 to listen on",
    "this cryptography refuses serial numbers that are not positive":
        "newer cryptography releases refuse to build such certificates; the oldest one (make unit-oldest) tests it",
    "this openssl cannot write legacy PKCS#12": "OpenSSL 3 builds without the legacy provider cannot write RC2",
    "no Python 3.9 here": "Debian 12 packages no Python 3.9 and the registries offer no interpreter; where the "
                          "machine has one (pyenv), the modules run on it",
}
_skipped: list = []


def _reason(report) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text[len("Skipped: "):] if text.startswith("Skipped: ") else text


def pytest_runtest_logreport(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append((report.nodeid, _reason(report)))


def pytest_sessionfinish(session, exitstatus) -> None:
    if os.environ.get("CI", "").lower() != "true":
        return
    unexpected = [(node, reason) for node, reason in _skipped
                  if not any(reason.startswith(allowed) for allowed in ALLOWED_SKIPS)]
    if not unexpected:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"CI=true: {len(unexpected)} test(s) skipped for a reason not in tests/skip_policy.py ALLOWED_SKIPS; "
             "install what they need in the project's scripts instead:"]
    lines += [f"  {node}: {reason}" for node, reason in unexpected]
    if reporter:
        for line in lines:
            reporter.write_line(line, red=True)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
