# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_tls_endpoint_info and mail_tls_assert (endpoints) through the real ansible command, against the lab."""
from __future__ import annotations

import pytest
import yaml

# tests/integration is on sys.path (pytest's rootdir-relative import), tests/ too (tests/conftest.py's folder).
from test_endpoints_lab import BROKEN, NAME, lab_endpoints, serving
from unit.hostile_server import free_port
from unit.plugins.modules.ansible_adhoc import ANSIBLE_BIN, run_task

from ansible_collections.mailops.tls.plugins.module_utils.client_matrix import clients_note
from ansible_collections.mailops.tls.plugins.modules import mail_tls_endpoint_info

pytestmark = pytest.mark.skipif(not ANSIBLE_BIN.exists(), reason="ansible-core is not installed in this "
                                                                 "interpreter's environment")

INFO = "mailops.tls.mail_tls_endpoint_info"
ASSERT = "mailops.tls.mail_tls_assert"
RETURN = yaml.safe_load(mail_tls_endpoint_info.RETURN)


def option(endpoint) -> dict:
    """An Endpoint as the endpoints option gives it."""
    return {"address": endpoint.address, "port": endpoint.port, "server_name": endpoint.server_name,
            "label": endpoint.label}


def args(lab, endpoints, **more) -> dict:
    return {"endpoints": [option(e) for e in endpoints], "roots": [str(lab.root_file)], "system_roots": False,
            "timeout": 5, **more}


def assert_clean_failure(result: dict, words: str) -> None:
    """Failed with a message saying words, and no traceback anywhere."""
    assert result["failed"], result
    assert words in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"] + result["stderr_of_ansible"] + result.get("module_stderr", "")
    assert "exception" not in result and "module_stdout" not in result


@pytest.fixture
def broken_backend(lab):
    """mx2 serves its leaf without the intermediate until the test ends."""
    with serving(lab, BROKEN, [lab.pki.leaf], lab.pki.leaf) as backend:
        yield backend


def test_endpoint_info_returns_every_endpoint_in_input_order_with_the_documented_keys(lab, tmp_path):
    endpoints = lab_endpoints(lab)
    endpoints = [endpoints[-1], *endpoints[:-1]]  # not the order they are grouped in
    down = {"address": "127.0.0.1", "port": free_port(), "protocol": "smtp", "label": "down"}
    result = run_task(tmp_path, INFO, dict(args(lab, endpoints), endpoints=[option(e) for e in endpoints] + [down]),
                      check_mode=True)
    assert not result["failed"] and result["changed"] is False, result.get("msg")
    assert set(RETURN) <= set(result)
    documented = sorted(RETURN["endpoints"]["contains"])  # the ansible command prints keys sorted
    assert [sorted(entry) for entry in result["endpoints"]] == [documented] * (len(endpoints) + 1)
    assert sorted(result["summary"]) == sorted(RETURN["summary"]["contains"])
    assert [entry["name"] for entry in result["endpoints"]] == [f"{e} {e.dialect}" for e in endpoints] + [
        f"127.0.0.1:{down['port']} (down) smtp"]
    healthy, failed = result["endpoints"][:-1], result["endpoints"][-1]
    assert all(entry["ok"] and entry["issues"] == [] and entry["trusted"] for entry in healthy)
    assert {entry["sni"] for entry in healthy} == {NAME}
    assert failed["error"]["code"] == "connect_refused" and not failed["ok"]
    assert [i["code"] for i in result["issues"]] == ["connect_refused"]
    assert result["summary"] == {"probed": len(endpoints) + 1, "answered": len(endpoints), "clean": len(endpoints),
                                 "errors": 1, "warnings": 0}


def test_assert_passes_on_the_healthy_lab(lab, tmp_path):
    result = run_task(tmp_path, ASSERT, args(lab, lab_endpoints(lab)))
    assert not result["failed"], result.get("msg")
    assert result["passed"] is True and result["violations"] == [] and result["issues"] == []
    assert len(result["endpoints"]) == len(lab_endpoints(lab))


def test_assert_fails_on_a_broken_backend_with_one_line_per_endpoint_and_finding(lab, tmp_path, broken_backend):
    endpoints = lab_endpoints(lab)
    result = run_task(tmp_path, ASSERT, args(lab, endpoints))
    assert result["failed"] and result["passed"] is False
    failing = list(dict.fromkeys(v["endpoint"] for v in result["violations"]))  # in endpoint order
    expected = []
    for name in failing:
        violations = [v for v in result["violations"] if v["endpoint"] == name]
        expected.append(f"{name}: {len(violations)} policy violation(s):")
        for violation in violations:
            note = clients_note(violation["code"])
            expected.append(f"- [{violation['code']}] {violation['message']}" + (f". {note}" if note else ""))
    assert result["msg"].splitlines() == expected
    assert any(line.startswith("- [missing_intermediate] ") and "Refused in the client lab by fetchmail" in line
               for line in expected)
    broken = [f"{e} {e.dialect}" for e in endpoints if e.label == broken_backend.name]
    assert set(broken) <= set(failing)
    assert set(failing) - set(broken) <= {f"{e} {e.dialect}" for e in endpoints if e.label == "front"}
    for name in broken:
        assert sorted(v["code"] for v in result["violations"] if v["endpoint"] == name) == [
            "backend_mismatch", "missing_intermediate"]


def test_assert_ignoring_the_broken_backends_codes_passes(lab, tmp_path, broken_backend):
    result = run_task(tmp_path, ASSERT, args(lab, lab_endpoints(lab), ignore=["backend_mismatch",
                                                                              "missing_intermediate"]))
    assert not result["failed"], result.get("msg")
    assert result["passed"] is True and result["violations"] == []
    waived = {(w["endpoint"], w["code"]) for w in result["waived"]}
    for endpoint in lab_endpoints(lab):
        if endpoint.label == broken_backend.name:
            name = f"{endpoint} {endpoint.dialect}"
            assert {(name, "backend_mismatch"), (name, "missing_intermediate")} <= waived


@pytest.mark.parametrize(("module", "endpoint", "extra", "words"), [
    (INFO, {"port": 0}, {}, "endpoint 127.0.0.1:0: port must be a number from 1 to 65535"),
    (ASSERT, {"port": 0}, {}, "endpoint 127.0.0.1:0: port must be a number from 1 to 65535"),
    (INFO, {"port": 25, "protocol": "smtpx"}, {}, "value of protocol must be one of: smtp, lmtp, imap"),
    (INFO, {"port": 25}, {"timeout": 0}, "timeout must be more than 0 and at most 3600 seconds"),
], ids=["info-port-0", "assert-port-0", "info-unknown-protocol", "info-timeout-0"])
def test_bad_endpoint_input_fails_clearly_without_a_traceback(tmp_path, module, endpoint, extra, words):
    result = run_task(tmp_path, module, {"endpoints": [{"address": "127.0.0.1", **endpoint}], **extra})
    assert_clean_failure(result, words)
