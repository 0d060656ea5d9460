# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for nagios.py and scripts/check_mail_tls on files: exit codes, the status line, perfdata, long output."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils.nagios import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    parse_endpoint,
    run,
)

REPO = Path(__file__).resolve().parents[4]
# The plugin as an installed collection holds it: tests/conftest.py links build/collections/.../tls to the repo.
PLUGIN = REPO / "build" / "collections" / "ansible_collections" / "mailops" / "tls" / "scripts" / "check_mail_tls"
MAIL = "mail.example.test"
# One perfdata item: 'label'=value;warn;crit;min;max
PERFDATA = re.compile(r"'([^'=]+)'=(-?[\d.]+);([\d.]*);([\d.]*);;")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A 90-day leaf with 20 days left, a good bundle, one without its intermediate, and the root."""
    directory = tmp_path_factory.mktemp("nagios")
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True)
    leaf = inter.leaf(MAIL, not_before=pki.NOW - 70 * pki.DAY, not_after=pki.NOW + 20 * pki.DAY)
    (directory / "fullchain.pem").write_bytes(pki.pem_bundle(leaf, inter))
    (directory / "leaf-only.pem").write_bytes(pki.pem_bundle(leaf))
    (directory / "root.pem").write_bytes(top.pem)
    return directory


def args(files: Path, *extra: str, bundle: str = "fullchain.pem") -> list:
    return ["-f", str(files / bundle), "--roots", str(files / "root.pem"), "--no-system-roots", *extra]


def perfdata(text: str) -> dict:
    first = text.splitlines()[0]
    assert first.count("|") == 1, first
    return {label: (float(value), warn, crit) for label, value, warn, crit in PERFDATA.findall(first.split("|")[1])}


@pytest.mark.parametrize(("extra", "status", "words"), [
    (("-w", "10d", "-c", "5d"), OK, ["MAIL TLS OK - 1 checked, no problem, first expiry"]),
    (("-w", "30d", "-c", "5d"), WARNING, ["MAIL TLS WARNING - 1 of 1 with problems:", "fullchain.pem: expires_soon"]),
    # 20 of 90 days left is 22%: past 25% (warning), not past 20% (critical)...
    (("-w", "25%", "-c", "20%"), WARNING, ["expires_soon", "within the warning threshold of 25% of its 90-day"]),
    # ...and past 25%, as critical
    (("-w", "50%", "-c", "25%"), CRITICAL, ["MAIL TLS CRITICAL", "fullchain.pem: expires_critical"]),
    (("-w", "10d", "-c", "5d", "-n", "other.example.test"), CRITICAL, ["name_mismatch"]),
    (("-w", "10d", "-c", "5d", "--valid-at", "+21d"), CRITICAL, ["expired"]),
])
def test_status_of_a_file(files, extra, status, words):
    result = run(args(files, *extra))
    assert result.status == status, result.text
    for word in words:
        assert word in result.text


def test_perfdata_gives_days_left_per_certificate_with_thresholds_in_days(files):
    data = perfdata(run(args(files, "-w", "33%", "-c", "7d")).text)
    bundle = str(files / "fullchain.pem")
    leaf = data[f"{bundle} 0 {MAIL}"]
    assert 19.99 <= leaf[0] <= 20.0 and leaf[1:] == ("29.7", "7")  # 33% of 90 days
    # the one-year intermediate: 33% of its lifetime in days, and the item's own value is its soonest expiry
    inter = data[f"{bundle} 1 Issuing CA"]
    assert 364 <= inter[0] <= 365 and inter[1] == "120.78"
    assert data[bundle] == leaf
    assert f"{bundle} 2 Test Root CA" in data


def test_a_missing_intermediate_is_critical_with_one_line_per_problem(files):
    result = run(args(files, "-w", "10d", bundle="leaf-only.pem"))
    assert result.status == CRITICAL
    lines = result.text.splitlines()
    assert "leaf-only.pem: missing_intermediate" in lines[0]
    assert any(line.endswith("[missing_intermediate] " + line.split("] ", 1)[1]) for line in lines[1:])
    assert all("\n" not in line for line in lines)


@pytest.mark.parametrize(("argv", "words"), [
    ([], ["give at least one --endpoint or --file"]),
    (["-f", "/nonexistent/chain.pem"], ["/nonexistent/chain.pem", "does not exist"]),
    (["-e", "mail.example.test"], ["is not ADDRESS:PORT"]),
    (["-e", "192.0.2.1:25/gopher"], ["protocol"]),
    (["-e", "192.0.2.1:70000"], ["port must be a number"]),
    (["-f", "x.pem", "-w", "soon"], ["--warning", "'soon'"]),
    (["-f", "x.pem", "--ignore", "no_such_code"], ["--ignore", "no_such_code"]),
    (["-f", "x.pem", "--valid-at", "tomorrow"], ["valid_at 'tomorrow'"]),
    (["-f", "x.pem", "-t", "0"], ["--timeout"]),
    (["--frobnicate"], ["unrecognized arguments: --frobnicate", "usage: check_mail_tls"]),
])
def test_bad_usage_is_unknown_with_a_reason(argv, words):
    result = run(argv)
    assert result.status == UNKNOWN
    assert result.text.startswith("MAIL TLS UNKNOWN - ")
    for word in words:
        assert word in result.text


@pytest.mark.parametrize(("text", "address", "port", "protocol"), [
    ("192.0.2.10:25", "192.0.2.10", 25, None), ("mail.example.org:993/imaps", "mail.example.org", 993, "imaps"),
    ("[2001:db8::10]:465/smtps", "2001:db8::10", 465, "smtps"),
])
def test_parse_endpoint(text, address, port, protocol):
    endpoint = parse_endpoint(text, MAIL)
    assert (endpoint.address, endpoint.port, endpoint.protocol, endpoint.server_name) == (address, port, protocol, MAIL)


def plugin(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    """The shipped executable, with this interpreter (its cryptography), from the collection path."""
    environment = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run([str(PLUGIN), *argv], capture_output=True, text=True, env=environment, timeout=60,
                          check=False, **kwargs)


def test_the_executable_answers_like_the_library(files):
    done = plugin(*args(files, "-w", "30d", "-c", "5d"))
    assert done.returncode == WARNING and done.stderr == ""
    assert done.stdout.startswith("MAIL TLS WARNING - 1 of 1 with problems")
    assert plugin(*args(files, "-w", "10d")).returncode == OK


def test_the_executable_through_a_link_and_out_of_place(files, tmp_path):
    (tmp_path / "check_mail_tls").symlink_to(PLUGIN)
    done = plugin(*args(files, "-w", "10d"), cwd="/")
    assert done.returncode == OK
    linked = subprocess.run([str(tmp_path / "check_mail_tls"), *args(files, "-w", "10d")], capture_output=True,
                            text=True, env=dict(os.environ, PYTHON=sys.executable), check=False)
    # a link to the repository's own file (the link above resolves to it) is outside any ansible_collections tree
    assert linked.returncode == UNKNOWN and "installed mailops.tls collection" in linked.stdout
    help_text = plugin("--help")
    assert help_text.returncode == UNKNOWN and "--endpoint" in help_text.stdout
