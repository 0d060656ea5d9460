# SPDX-License-Identifier: GPL-3.0-or-later
"""The monitoring outputs against the lab: scripts/check_mail_tls (exit codes, status line, perfdata) on live endpoints
and files, and the audit role's Prometheus output checked by promtool (check metrics; the example alerting rules
checked and unit-tested with series taken from that output)."""
from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_playbook import ANSIBLE_PLAYBOOK, REPO, collections_path
from test_audit import audit

from ansible_collections.mailops.tls.plugins.module_utils.certs import not_after

NAME = "mail.example.test"
PLUGIN = Path(collections_path()) / "ansible_collections" / "mailops" / "tls" / "scripts" / "check_mail_tls"
RULES = REPO / "docs" / "monitoring" / "prometheus-alerts.yml"
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
SERVICES = {"smtp": 25, "imaps": 993, "pop3": 110, "sieve": 4190}
PERFDATA = re.compile(r"'([^'=]+)'=(-?[\d.]+);([\d.]*);([\d.]*);;")


def check(lab, *argv: str) -> subprocess.CompletedProcess:
    """The shipped plugin, run as a monitoring system runs it, trusting the lab's root only."""
    done = subprocess.run([str(PLUGIN), "--roots", str(lab.root_file), "--no-system-roots", *argv],
                          capture_output=True, text=True, env=dict(os.environ, PYTHON=sys.executable), timeout=120,
                          check=False)
    assert done.stderr == "", done.stderr
    return done


def endpoints(lab, services: tuple = tuple(SERVICES.values())) -> list:
    """-e ADDRESS:PORT for every port of services of every backend and of the front."""
    return [arg for address in lab.addresses for port in services for arg in ("-e", f"{address}:{port}")]


def perfdata(stdout: str) -> dict:
    return {label: float(value) for label, value, _w, _c in PERFDATA.findall(stdout.splitlines()[0].split("|")[1])}


def test_every_endpoint_of_the_lab_is_ok_with_days_left_per_certificate(lab):
    done = check(lab, "-S", NAME, *endpoints(lab))
    assert done.returncode == OK, done.stdout
    first = done.stdout.splitlines()[0]
    assert first.startswith(f"MAIL TLS OK - {len(lab.addresses) * len(SERVICES)} checked, no problem, first expiry")
    data = perfdata(done.stdout)
    days_left = (not_after(lab.pki.leaf.cert) - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
    for address in lab.addresses:
        for service, port in SERVICES.items():
            leaf = data[f"{address}:{port} {service} 0 {NAME}"]
            assert abs(leaf - days_left) < 0.1, (address, service, leaf, days_left)
            assert any(label.startswith(f"{address}:{port} {service} 1 ") for label in data)
    assert len(done.stdout.splitlines()) == 1


@pytest.mark.parametrize(("thresholds", "status", "code"), [
    (("-w", "400d", "-c", "7d"), WARNING, "expires_soon"),
    (("-w", "99.9%", "-c", "7d"), WARNING, "expires_soon"),
    (("-w", "400d", "-c", "380d"), CRITICAL, "expires_critical"),
])
def test_thresholds_give_warning_and_critical(lab, thresholds, status, code):
    done = check(lab, "-S", NAME, *thresholds, "-e", f"{lab.backends[0].address}:993")
    assert done.returncode == status, done.stdout
    assert f"{lab.backends[0].address}:993 imaps: {code}" in done.stdout.splitlines()[0]
    assert f"[{code}]" in done.stdout.splitlines()[1]


def test_a_backend_without_its_intermediate_is_critical_and_named(lab):
    leaf = lab.pki.intermediate.leaf(NAME)
    mx2 = lab.backends[1]
    lab.set_chain(1, leaf.pem, leaf.key_pem())
    try:
        done = check(lab, "-S", NAME, *endpoints(lab, (25, 993)))
    finally:
        lab.reset_chain(1)
    assert done.returncode == CRITICAL, done.stdout
    first = done.stdout.splitlines()[0]
    assert f"{mx2.address}:25 smtp: missing_intermediate" in first
    assert f"{mx2.address}:993 imaps: missing_intermediate" in first
    assert lab.backends[0].address + ":" not in first.split("|")[0]
    assert any(line.startswith(f"{mx2.address}:25 smtp: [missing_intermediate]") for line in done.stdout.splitlines())


def test_a_refused_port_is_critical(lab):
    done = check(lab, "-S", NAME, "-e", f"{lab.backends[0].address}:2525/smtp", "-t", "5")
    assert done.returncode == CRITICAL
    assert f"{lab.backends[0].address}:2525 smtp: connect_refused" in done.stdout


def test_files_and_a_name_they_lack(lab):
    fullchain = lab.dir / "fullchain.pem"
    assert check(lab, "-f", str(fullchain), "-n", NAME).returncode == OK
    done = check(lab, "-f", str(fullchain), "-n", "imap.example.org")
    assert done.returncode == CRITICAL and "name_mismatch" in done.stdout


# --- Prometheus -------------------------------------------------------------------------------------------------

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool (Debian package prometheus) is installed by tests/lab/install.sh")


@pytest.fixture(scope="module")
def metrics(lab, tmp_path_factory) -> str:
    """The audit role's prometheus output, with mx2 serving its leaf without the intermediate."""
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip("ansible-playbook is not installed here")
    leaf = lab.pki.intermediate.leaf(NAME)
    lab.set_chain(1, leaf.pem, leaf.key_pem())
    directory = tmp_path_factory.mktemp("prometheus")
    try:
        run = audit(lab, directory, mail_tls_audit_formats=["json", "prometheus"], mail_tls_audit_fail=False,
                    mail_tls_audit_services=["smtp"], mail_tls_audit_expiry_warning="99.9%")
    finally:
        lab.reset_chain(1)
    assert run.returncode == 0, run.output
    document = json.loads((directory / "reports" / "mail-tls-audit.json").read_text())
    verdicts = {e["host"]: e["verdict"] for h in document["hosts"] for e in h["endpoints"]}
    # 99.9% of a year is more than the lab's certificates have left: expires_soon everywhere
    assert (verdicts["mx1"], verdicts["mx2"], verdicts["mx3"]) == ("warn", "fail", "warn")
    return (directory / "reports" / "mail-tls-audit.prom").read_text()


@needs_promtool
def test_promtool_accepts_the_metrics(metrics):
    done = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
    assert 'mail_tls_endpoint_findings{host="mx2",endpoint=' in metrics


@needs_promtool
def test_promtool_accepts_the_example_rules():
    done = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "SUCCESS: 4 rules found" in done.stdout, done.stdout + done.stderr


DAY = 86400
SAMPLE = re.compile(r"^(\w+)(\{.*\})? (-?\d+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _series(metrics: str, audited_at: int) -> list:
    """(name, labels, value) of each sample, timestamps made relative to the audit: promtool's tests start at 0."""
    found = []
    for line in metrics.splitlines():
        if line.startswith("#"):
            continue
        name, labels, value = SAMPLE.match(line).groups()
        value = int(value) - audited_at if name.endswith("_timestamp_seconds") else int(value)
        found.append((name, dict(LABEL.findall(labels or "")), value))
    return found


def _expected(rules: dict, series: list, at: int) -> dict:
    """alertname -> the alerts the rules must give at time `at`, computed here from the samples."""
    by_name: dict = {}
    for name, labels, value in series:
        by_name.setdefault(name, []).append((labels, value))

    def lifetime_share(labels, expiry):
        start = next(v for lab, v in by_name["mail_tls_certificate_not_before_timestamp_seconds"] if lab == labels)
        return (expiry - at) / (expiry - start)

    firing = {
        "MailTlsEndpointFailing": [dict(labels) for labels, v in by_name["mail_tls_endpoint_verdict"]
                                   if labels["verdict"] == "fail" and v == 1],
        "MailTlsCertificateExpiresSoon": [dict(labels) for labels, v in
                                          by_name["mail_tls_certificate_expiry_timestamp_seconds"]
                                          if lifetime_share(labels, v) < 0.25],
        "MailTlsCertificateExpiresVerySoon": [dict(labels) for labels, v
                                              in by_name["mail_tls_endpoint_expiry_timestamp_seconds"]
                                              if v - at < 7 * DAY],
        "MailTlsAuditStale": [{}] if at - by_name["mail_tls_audit_timestamp_seconds"][0][1] > 2 * DAY else [],
    }
    rule_of = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    expected = {}
    for alert, label_sets in firing.items():
        rule = rule_of[alert]
        expected[alert] = [{"exp_labels": dict(labels, **rule["labels"]),
                            "exp_annotations": {key: re.sub(r"\{\{ \$labels\.(\w+) \}\}",
                                                            lambda m, lab=labels: lab[m.group(1)], text)
                                                for key, text in rule["annotations"].items()}}
                           for labels in label_sets]
    return expected


@needs_promtool
def test_the_example_alerts_fire_on_the_audits_metrics(metrics, tmp_path):
    """promtool test rules with the audit's own samples: the failing endpoints alert from the first day; a quarter
    of the lab leaf's 366-day lifetime is left after about 274 days, 7 days after 358; the audit is stale after 2
    days."""
    audited_at = int(re.search(r"^mail_tls_audit_timestamp_seconds (\d+)$", metrics, re.M).group(1))
    series = [item for item in _series(metrics, audited_at) if item[1].get("host") in (None, "mx1", "mx2")]
    rules = yaml.safe_load(RULES.read_text())
    # Rules are evaluated once a day (promtool evaluates every interval up to each eval_time: minutes would take long).
    times = [DAY, 270 * DAY, 280 * DAY, 360 * DAY]
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1d", "tests": [{
        "interval": "1d",
        "input_series": [{"series": name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
                                            if labels else ""), "values": f"{value}+0x400"}
                         for name, labels, value in series],
        "alert_rule_test": [{"eval_time": f"{at}s", "alertname": alert, "exp_alerts": alerts}
                            for at in times for alert, alerts in _expected(rules, series, at).items()],
    }]}
    expected = _expected(rules, series, 360 * DAY)
    assert all(expected.values()), "every alert fires by day 360"
    assert not any(_expected(rules, series, DAY)[alert] for alert in expected if alert != "MailTlsEndpointFailing")
    assert _expected(rules, series, 270 * DAY)["MailTlsCertificateExpiresSoon"] == []
    assert _expected(rules, series, 280 * DAY)["MailTlsCertificateExpiresSoon"] != []
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    done = subprocess.run(["promtool", "test", "rules", str(tmp_path / "tests.yml")], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
