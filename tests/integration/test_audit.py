# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/audit.yml against the lab: three backends and the front, every port, one backend broken in two ways
(a certificate for another name, sent without its intermediate). The JSON report is validated against its schema,
the JUnit XML parsed, and the HTML opened in headless Chromium to read the matrix as a browser renders it."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import report_schema
from run_playbook import ANSIBLE_PLAYBOOK, REPO, PlaybookRun, run_playbook

from ansible_collections.mailops.tls.plugins.module_utils.report import CHECKS, DATA_CHECKS

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-playbook is not installed here")
NAME = "mail.example.test"
SERVICES = ["smtp", "submission", "smtps", "imap", "imaps", "pop3", "pop3s", "sieve", "lmtp"]
BACKENDS = ["mx1", "mx2", "mx3"]
BROKEN = "mx2"
CHECKS_FAILED_ON_BROKEN = {"chain", "names", "consistency"}


def inventory(lab) -> dict:
    hosts = {backend.name: {"ansible_host": backend.address} for backend in lab.backends}
    hosts["front"] = {"ansible_host": lab.front_address}
    return {"mail": {"hosts": hosts, "vars": {"mail_tls_audit_services": SERVICES,
                                              "mail_tls_audit_public_names": [NAME]}}}


def audit(lab, directory: Path, *options: str, **extra) -> PlaybookRun:
    """Run the collection's playbooks/audit.yml itself (imported), with reports in directory/reports."""
    play = [{"name": "The audit playbook", "ansible.builtin.import_playbook": str(REPO / "playbooks" / "audit.yml")}]
    settings = {"mail_tls_audit_report_dir": str(directory / "reports"), "mail_tls_audit_roots": [str(lab.root_file)],
                "mail_tls_audit_system_roots": False, "mail_tls_audit_timeout": 10, **extra}
    (directory / "settings.json").write_text(json.dumps(settings))
    arguments = ("-e", f"@{directory / 'settings.json'}", "-f", "4", *options)
    return run_playbook(directory, play, inventory=inventory(lab), args=arguments)


@pytest.fixture(scope="module")
def audits(lab, tmp_path_factory):
    """(broken run, its reports, clean run, its reports, merged slices run, their reports): the audit with mx2
    broken; the same audit in two job slices (--limit) and their merge, while mx2 is still broken; then the
    audit again after its reset in the same place, in diff mode (its reports replace the first ones, which are
    kept as a copy)."""
    leaf = lab.pki.intermediate.leaf("other.example.test")
    directory = tmp_path_factory.mktemp("audit")
    lab.set_chain(BACKENDS.index(BROKEN), leaf.pem, leaf.key_pem())
    slices = directory / "slices"
    try:
        broken = audit(lab, directory)
        for number, hosts in enumerate(("mx1,mx2", "mx3,front"), 1):
            audit(lab, directory, "--limit", hosts, mail_tls_audit_report_dir=str(slices),
                  mail_tls_audit_report_name=f"mail-tls-audit-slice-{number}")
    finally:
        lab.reset_chain(BACKENDS.index(BROKEN))
    merged = merge(directory, sorted(str(path) for path in slices.glob("mail-tls-audit-slice-*.json")))
    shutil.copytree(directory / "reports", directory / "broken-reports")
    clean = audit(lab, directory, "--diff")
    return broken, directory / "broken-reports", clean, directory / "reports", merged, directory / "merged"


def merge(directory: Path, reports: list) -> PlaybookRun:
    """Run the collection's playbooks/audit_merge.yml on the slices' JSON reports, writing into directory/merged."""
    play = [{"name": "The merge playbook",
             "ansible.builtin.import_playbook": str(REPO / "playbooks" / "audit_merge.yml")}]
    (directory / "merged-run").mkdir()
    settings = {"mail_tls_audit_merge": reports, "mail_tls_audit_report_dir": str(directory / "merged")}
    (directory / "merge.json").write_text(json.dumps(settings))
    return run_playbook(directory / "merged-run", play, args=("-e", f"@{directory / 'merge.json'}"))


@pytest.fixture(scope="module")
def report(audits) -> dict:
    return json.loads((audits[1] / "mail-tls-audit.json").read_text())


def endpoints_of(document: dict, host: str) -> list:
    return next(h for h in document["hosts"] if h["name"] == host)["endpoints"]


def test_the_play_fails_on_the_policy_after_writing_every_report(audits):
    broken, reports, *_others = audits
    assert broken.returncode == 2, broken.output
    written = sorted(p.name for p in reports.iterdir())
    assert written == ["mail-tls-audit.html", "mail-tls-audit.json", "mail-tls-audit.xml"]
    assert "Fail when the audit breaks the policy" in broken.stdout.split("fatal:")[0].rsplit("TASK [", 1)[1]
    assert "Mail TLS audit: FAILED: " in broken.stdout  # the front fails too when it hands on to mx2
    assert f"{BROKEN}: 9 endpoint(s) fail: backend_mismatch (9), missing_intermediate (9), name_mismatch (9)" \
        in broken.stdout


def test_progress_is_one_line_per_host_as_its_probes_finish(audits):
    broken = audits[0]
    for host in [*BACKENDS, "front"]:
        assert f"ok: [{host}] => " in broken.stdout
    assert broken.stdout.count("9 probe(s): 9 answered") == 4


def test_clean_lab_passes(audits):
    _broken, _reports, clean, reports, *_merged = audits
    assert clean.returncode == 0, clean.output
    document = json.loads((reports / "mail-tls-audit.json").read_text())
    assert document["passed"] and document["summary"]["pass"] == 36


def test_diff_mode_shows_each_endpoint_verdict_change_since_the_last_report(audits):
    clean = audits[2]
    assert "-mx2 imaps 127.0.0." in clean.stdout
    assert ":993 (mx2) imaps: fail (backend_mismatch, missing_intermediate, name_mismatch)" in clean.stdout
    assert ":993 (mx2) imaps: pass" in clean.stdout


def test_merged_slices_judge_the_backends_as_the_whole_audit_did(audits, report):
    merged, reports = audits[4:]
    assert merged.returncode == 2, merged.output  # the policy fails, after the reports are written
    written = sorted(p.name for p in reports.iterdir())
    assert written == ["mail-tls-audit.html", "mail-tls-audit.json", "mail-tls-audit.xml"]
    document = json.loads((reports / "mail-tls-audit.json").read_text())
    assert report_schema.errors(document, report_schema.load_schema()) == []
    assert [h["name"] for h in document["hosts"]] == ["mx1", "mx2", "mx3", "front"]

    def verdicts(of: dict, host: str) -> dict:
        return {e["name"]: (e["verdict"], sorted(f["code"] for f in e["findings"] if f["status"] == "violation"))
                for e in endpoints_of(of, host)}

    for host in BACKENDS:  # the front hands on to a backend in turn: its chains differ from run to run
        assert verdicts(document, host) == verdicts(report, host), host
    assert f"{BROKEN}: 9 endpoint(s) fail: backend_mismatch (9), missing_intermediate (9), name_mismatch (9)" \
        in merged.stdout


def test_json_report_matches_its_schema_and_the_lab(report):
    assert report_schema.errors(report, report_schema.load_schema()) == []
    assert report["services"] == SERVICES
    assert [h["name"] for h in report["hosts"]] == [*BACKENDS, "front"]
    for host in BACKENDS:
        endpoints = endpoints_of(report, host)
        assert sorted(e["service"] for e in endpoints) == sorted(SERVICES)
        assert all(e["reachable"] and e["server_name"] == NAME for e in endpoints)
        if host == BROKEN:
            for e in endpoints:
                codes = {f["code"] for f in e["findings"] if f["status"] == "violation"}
                assert codes == {"missing_intermediate", "name_mismatch", "backend_mismatch"}, (e["name"], codes)
                assert e["verdict"] == "fail" and e["chain"]["sent"] == 1 and not e["chain"]["complete"]
        else:
            assert {e["verdict"] for e in endpoints} == {"pass"}
            assert all(e["chain"]["sent"] == 2 and e["chain"]["trusted"] for e in endpoints)
    assert report["summary"]["hosts_failed"] >= 1 and not report["passed"]


def test_junit_fails_exactly_the_broken_backends_checks(audits):
    root = ET.parse(audits[1] / "mail-tls-audit.xml").getroot()
    failed = {(case.get("classname"), case.get("name").split(":")[0]) for case in root.iter("testcase")
              if case.find("failure") is not None and not case.get("classname").startswith("front.")}
    assert failed == {(f"{BROKEN}.{service}", check) for service in SERVICES for check in CHECKS_FAILED_ON_BROKEN}
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert len(suites["mx1"].findall("testcase")) == len(SERVICES) * len(CHECKS)
    # DANE and MTA-STS come from mail_tls_dane_info (mail_tls_audit_dane_domains): skipped for these probes
    skipped = {case.get("name").split(":")[0] for case in suites["mx1"].iter("testcase")
               if case.find("skipped") is not None}
    assert skipped == set(DATA_CHECKS)
    assert suites["mx1"].get("failures") == "0"


# ---------------------------------------------------------------------------------------------------------------
# The HTML report in a real browser


def chromium() -> str:
    """The chromium command; installed from Debian's package when missing and root (as the lab is)."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and this is not root to install it (apt-get install chromium)")
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], env=environment, capture_output=True,
                          text=True, check=False, timeout=900)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=environment, capture_output=True, check=False, timeout=600)
        done = subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], env=environment, capture_output=True,
                              text=True, check=False, timeout=900)
    found = shutil.which("chromium")
    if not found:
        pytest.fail(f"apt-get install chromium failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr}")
    return found


def headless(page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--no-first-run", f"--user-data-dir={profile}", *args, page.as_uri()],
                              capture_output=True, text=True, timeout=120, check=False)


class RenderedMatrix(HTMLParser):
    """The matrix as the browser's DOM has it: (host, service) -> verdict, and the cells' visible words."""

    def __init__(self):
        super().__init__()
        self.host = None
        self.cell = None
        self.verdicts = {}
        self.words = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "tr" and "data-host" in attributes:
            self.host = attributes["data-host"]
        if tag == "td" and "data-service" in attributes:
            self.cell = (self.host, attributes["data-service"])
            self.verdicts[self.cell] = attributes["data-verdict"]
            self.words[self.cell] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None

    def handle_data(self, data):
        if self.cell:
            self.words[self.cell] += data


@pytest.fixture(scope="module")
def rendered(audits) -> RenderedMatrix:
    done = headless(audits[1] / "mail-tls-audit.html", "--dump-dom")
    assert done.returncode == 0 and "<table" in done.stdout, done.stderr[-2000:]
    matrix = RenderedMatrix()
    matrix.feed(done.stdout)
    return matrix


def test_browser_renders_the_matrix_with_the_right_verdicts(rendered):
    for host in BACKENDS:
        for service in SERVICES:
            expected = "fail" if host == BROKEN else "pass"
            assert rendered.verdicts[(host, service)] == expected, (host, service)
            words = rendered.words[(host, service)]
            assert ("Problem" if host == BROKEN else "OK") in words
            assert "expires in" in words and "certificate(s) sent" in words
    assert "name mismatch" in rendered.words[(BROKEN, "imaps")]
    assert "missing intermediate" in rendered.words[(BROKEN, "imaps")]
    assert {service for host, service in rendered.verdicts if host == "front"} == set(SERVICES)


def png_colours(data: bytes, rows: int) -> tuple[int, int, set]:
    """Width, height and the RGB colours of the first rows of an 8-bit RGB or RGBA PNG, as chromium writes them."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"  # IHDR always comes first
    width, height, depth, colour_type, _compression, _filter, interlace = struct.unpack(">IIBBBBB", data[16:29])
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, (depth, colour_type, interlace)
    position, compressed = 8, b""
    while position < len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        if data[position + 4:position + 8] == b"IDAT":
            compressed += data[position + 8:position + 8 + length]
        position += 12 + length
    channels = 3 if colour_type == 2 else 4
    stride = width * channels
    raw = zlib.decompressobj().decompress(compressed, (stride + 1) * rows)
    colours, previous = set(), bytearray(stride)
    for row in range(min(rows, height)):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):  # PNG filters (RFC 2083 6.3): None, Sub, Up, Average, Paeth
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                near = min((abs(estimate - left), 0, left), (abs(estimate - up), 1, up),
                           (abs(estimate - corner), 2, corner))[2]
                line[i] = (line[i] + near) & 0xFF
        colours.update(bytes(line[i:i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, colours


def test_browser_screenshot_of_the_report(audits, tmp_path):
    shot = tmp_path / "audit.png"
    done = headless(audits[1] / "mail-tls-audit.html", f"--screenshot={shot}", "--window-size=1400,1800")
    assert done.returncode == 0, done.stderr[-2000:]
    width, height, colours = png_colours(shot.read_bytes(), 500)
    assert (width, height) == (1400, 1800)
    # The banner at the top is painted in the background of a failed audit (#fdecea, which a passing report's first
    # 500 rows do not hold), and text was drawn (anti-aliasing gives hundreds of colours; a blank page has one).
    assert bytes.fromhex("fdecea") in colours and len(colours) > 100, len(colours)
    keep = os.environ.get("MAILOPS_AUDIT_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)


def test_a_load_balancer_is_sampled_until_its_bad_backend_answered(lab, tmp_path):
    """One backend of three (mx3) serves its leaf without the intermediate. The front alone is audited, marked as a
    load balancer of three backends: every port is probed one connection at a time up to the bound, so the bad
    backend cannot hide behind the good ones, and every report format says two different chains stood behind each
    port: the JSON, the summary, the JUnit XML, the HTML page as Chromium renders it and the metrics promtool reads."""
    bad = lab.backend("mx3")
    leaf = lab.pki.intermediate.leaf(NAME)
    lab.set_chain(bad, leaf.pem, leaf.key_pem())
    try:
        run = audit(lab, tmp_path, "--limit", "front", mail_tls_audit_backends=3,
                    mail_tls_audit_formats=["json", "junit", "html", "prometheus"])
    finally:
        lab.reset_chain(bad)
    assert run.returncode == 2, run.output
    document = json.loads((tmp_path / "reports" / "mail-tls-audit.json").read_text())
    assert report_schema.errors(document, report_schema.load_schema()) == []
    (front,) = document["hosts"]
    assert front["verdict"] == "fail"
    assert [(item["port"], item["probes"], item["answered"], item["chains"]) for item in front["sampled"]] == [
        (lab.ports[service], 18, 18, 2) for service in SERVICES]
    assert len(front["endpoints"]) == 18 * len(SERVICES)
    for service in SERVICES:
        probes = [e for e in front["endpoints"] if e["port"] == lab.ports[service]]
        incomplete = [e for e in probes if any(f["code"] == "missing_intermediate" for f in e["findings"])]
        assert len(incomplete) == 6, service  # round robin: every third probe reached mx3
        assert all(any(f["code"] == "backend_mismatch" for f in e["findings"]) for e in incomplete), service
    line = ("front: load balancer, different chains behind each port: "
            + ", ".join(f"{lab.ports[service]}: 2 in 18 probe(s)" for service in SERVICES))
    assert line in run.stdout
    reports = tmp_path / "reports"
    (suite,) = ET.parse(reports / "mail-tls-audit.xml").getroot().findall("testsuite")
    assert suite.find("system-out").text == line
    done = headless(reports / "mail-tls-audit.html", "--dump-dom")
    assert done.returncode == 0 and 'id="load-balancers"' in done.stdout, done.stderr[-2000:]
    table = RenderedLoadBalancers()
    table.feed(done.stdout)
    assert table.rows == [["front", str(lab.ports[service]), "18", "18", "2"] for service in SERVICES]
    metrics = (reports / "mail-tls-audit.prom").read_text()
    assert shutil.which("promtool"), "promtool (Debian package prometheus) comes with the lab: tests/lab/install.sh"
    checked = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for service in SERVICES:
        labels = f'host="front",endpoint="{lab.front_address}:{lab.ports[service]} (front)",port="{lab.ports[service]}"'
        assert f'mail_tls_load_balancer_chains{{{labels},key_type=""}} 2' in metrics.splitlines()


class RenderedLoadBalancers(HTMLParser):
    """The cells of the Load balancers table, row by row, as the browser's DOM has them."""

    def __init__(self):
        super().__init__()
        self.inside = False
        self.rows = []

    def handle_starttag(self, tag, attrs):
        self.inside = self.inside or (tag == "table" and dict(attrs).get("id") == "load-balancers")
        if self.inside and tag == "tr" and "data-port" in dict(attrs):
            self.rows.append([])
        if self.inside and tag == "td":
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        self.inside = self.inside and tag != "table"

    def handle_data(self, data):
        if self.inside and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data
