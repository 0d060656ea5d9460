# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_tls_chain_facts, mail_tls_assert and mail_tls_root_info through ansible-playbook itself, on generated PKIs."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import pki
from ansible_adhoc import ANSIBLE_BIN, run_task

from ansible_collections.mailops.tls.plugins.modules import mail_tls_root_info

pytestmark = pytest.mark.skipif(not ANSIBLE_BIN.exists(),
                                reason="ansible-core is not installed in this interpreter's environment "
                                       "(make unit installs it; make unit-oldest tests the library only)")


@pytest.fixture()
def files(tmp_path: Path, company) -> dict:
    upper, lower = company.intermediates
    paths = {
        "good": pki.pem_bundle(company.leaf, lower, upper),
        "messy": pki.pem_bundle(upper, company.root, company.leaf, lower),
        "root": company.root.pem,
        "key": company.leaf.key_pem(b"s3cret-passphrase"),
        "other_key": pki.root().key_pem(),
    }
    written = {}
    for name, data in paths.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(data)
        written[name] = str(path)
    return written


def test_facts_module_builds_the_chain_from_a_messy_bundle(tmp_path, files, company):
    result = run_task(tmp_path, "mailops.tls.mail_tls_chain_facts",
                      {"path": [files["messy"]], "roots": [files["root"]], "system_roots": False,
                       "names": ["mail.example.test"], "private_key_path": files["key"],
                       "private_key_passphrase": "s3cret-passphrase"}, check_mode=True)
    facts = result["ansible_facts"]["mail_tls_chain"]
    assert result["changed"] is False and not result.get("failed")
    served = [c.subject for c in company.served_chain]
    assert [c["subject"] for c in facts["chain"]] == [name.rfc4514_string() for name in served]
    assert facts["root"]["subject"] == company.root.cert.subject.rfc4514_string()
    assert {i["code"] for i in facts["issues"]} == {"wrong_order", "root_included"}
    assert facts["trusted"] and facts["complete"] and not facts["ordered"] and facts["key_matches"]
    assert "s3cret-passphrase" not in json.dumps(result)
    assert "PRIVATE KEY" not in json.dumps(result)


def test_assert_module_passes_a_good_chain(tmp_path, files):
    result = run_task(tmp_path, "mailops.tls.mail_tls_assert",
                      {"path": [files["good"]], "roots": [files["root"]], "system_roots": False,
                       "names": ["mail.example.test", "imap.example.test"]})
    assert not result.get("failed"), result.get("msg")
    assert result["passed"] is True and result["violations"] == []


def test_assert_module_lists_every_violation_on_its_own_line(tmp_path, files):
    result = run_task(tmp_path, "mailops.tls.mail_tls_assert",
                      {"path": [files["messy"]], "roots": [files["root"]], "system_roots": False,
                       "names": ["smtp.example.test"], "private_key_path": files["other_key"],
                       "fail_on": ["root_included"]})
    assert result["failed"] is True and result["passed"] is False
    lines = result["msg"].splitlines()
    codes = sorted(line.split("]")[0].lstrip("- [") for line in lines[1:])
    assert codes == ["key_mismatch", "name_mismatch", "root_included", "wrong_order"]
    assert lines[0].endswith("4 policy violation(s):")


@pytest.mark.parametrize(("verbose", "details"), [(False, False), (True, False), (False, True)])
def test_a_failing_gate_returns_its_violations_and_the_details_only_with_v_or_when_asked(tmp_path, files, verbose,
                                                                                         details):
    args = {"path": [files["messy"]], "roots": [files["root"]], "system_roots": False,
            "names": ["smtp.example.test"], "fail_on": ["root_included"], "details": details}
    result = run_task(tmp_path, "mailops.tls.mail_tls_assert", args, verbose=verbose)
    assert result["failed"] is True
    shown = {key for key in result if key not in ("failed", "stderr_of_ansible", "diff_text")}
    with_details = verbose or details
    assert shown == {"msg", "changed", "passed", "violations", "waived"} | ({"details"} if with_details else set())
    assert len(result["violations"]) == len(result["msg"].splitlines()) - 1
    if with_details:
        assert {"issues", "certificates", "chain", "root", "names"} <= set(result["details"])
        assert len(result["details"]["certificates"]) == len(result["details"]["chain"]) + 1  # the root given too


def test_assert_module_waives_ignored_codes_and_warns(tmp_path, files, company):
    stale = pki.hierarchy("old.example.test").leaf
    bundle = tmp_path / "extra.pem"
    bundle.write_bytes(pki.pem_bundle(company.leaf, *reversed(company.intermediates), stale))
    result = run_task(tmp_path, "mailops.tls.mail_tls_assert",
                      {"path": [str(bundle)], "roots": [files["root"]], "system_roots": False,
                       "names": ["www.example.test"], "ignore": ["name_mismatch"]})
    assert not result.get("failed"), result.get("msg")
    assert [w["code"] for w in result["waived"]] == ["name_mismatch"]
    assert "[unrelated_certificate]" in result["stderr_of_ansible"]


@pytest.mark.parametrize(("args", "expected"), [
    ({"path": ["/nonexistent/chain.pem"]}, "/nonexistent/chain.pem does not exist"),
    ({"content": "no certificate here", "fail_on": ["no_such_code"]},
     "fail_on lists unknown issue code(s) no_such_code"),
    ({"content": "no certificate here", "valid_at": "next tuesday"}, "valid_at 'next tuesday' is not an ISO 8601 date"),
    ({"content": "no certificate here", "names": ["bad name"]}, "names:"),
    ({"names": []}, "one of the following is required: path, content"),
])
def test_bad_input_fails_with_a_clear_message_and_no_traceback(tmp_path, args, expected):
    result = run_task(tmp_path, "mailops.tls.mail_tls_assert", args)
    assert result["failed"] is True
    assert expected in result["msg"]
    assert "Traceback" not in json.dumps(result)


def test_facts_module_reports_a_certificate_it_cannot_read_whole_and_builds_from_the_rest(tmp_path, files, company):
    spoiled = company.intermediates[-1].leaf("mail.example.test", raw_extensions=pki.UNPARSABLE_EXTENSION)
    bundle = tmp_path / "spoiled.pem"
    bundle.write_bytes(spoiled.pem + Path(files["good"]).read_bytes())
    result = run_task(tmp_path, "mailops.tls.mail_tls_chain_facts",
                      {"path": [str(bundle)], "roots": [files["root"]], "system_roots": False})
    facts = result["ansible_facts"]["mail_tls_chain"]
    assert not result.get("failed") and facts["trusted"], result
    (issue,) = [i for i in facts["issues"] if i["code"] == "parse_error"]
    assert issue["message"].startswith(f"block 1 of {bundle} cannot be read: the certificate's extensions cannot be "
                                       "parsed"), issue
    assert "Traceback" not in json.dumps(result)


def test_root_info_refuses_a_root_it_cannot_read_whole_with_the_reason(tmp_path):
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root(raw_extensions=pki.UNPARSABLE_EXTENSION).pem)
    result = run_task(tmp_path, "mailops.tls.mail_tls_root_info", {"path": [str(root)], "system_roots": False})
    assert result["failed"] is True
    assert result["msg"].startswith(f"block 1 of {root} cannot be published: the certificate's extensions cannot be "
                                    "parsed"), result["msg"]
    assert "Traceback" not in json.dumps(result)


def test_root_info_returns_every_documented_key_and_only_those(tmp_path, files):
    documented = yaml.safe_load(mail_tls_root_info.RETURN)
    result = run_task(tmp_path, "mailops.tls.mail_tls_root_info",
                      {"path": [files["good"]], "roots": [files["root"]], "system_roots": False})
    assert not result["failed"], result.get("msg")
    assert set(documented) <= set(result)
    assert sorted(result["root"]) == sorted(documented["root"]["contains"])
    assert sorted(result["root"]["fingerprints"]) == sorted(documented["root"]["contains"]["fingerprints"]["contains"])
