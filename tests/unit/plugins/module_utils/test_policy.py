# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for policy.py: which findings fail a gate, which are waived, which stay warnings."""
from __future__ import annotations

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils import analysis, load
from ansible_collections.mailops.tls.plugins.module_utils.client_matrix import clients_note
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.findings import CODES, CertificateRef, finding
from ansible_collections.mailops.tls.plugins.module_utils.policy import Verdict, check_codes, evaluate, failure_message

LEAF = CertificateRef(0, "AA:BB", "CN=mail.example.test")
EXPIRED = finding("expired", "'CN=mail.example.test' expired", LEAF)            # error
MISSING = finding("missing_intermediate", "the issuer is missing", LEAF)        # error
SOON = finding("expires_soon", "'CN=mail.example.test' expires in 9 days", LEAF)  # warning
WILDCARD = finding("wildcard_used", "mail.example.test matches only *.example.test", LEAF)  # warning
ROOT = finding("root_included", "the root is in the bundle")                     # info
FINDINGS = (EXPIRED, MISSING, SOON, WILDCARD, ROOT)


def codes(items) -> list[str]:
    return [f.code for f in items]


@pytest.mark.parametrize(("fail_on", "ignore", "violations", "warnings", "waived"), [
    ((), (), ["expired", "missing_intermediate"], ["expires_soon", "wildcard_used"], []),
    (["expires_soon"], (), ["expired", "missing_intermediate", "expires_soon"], ["wildcard_used"], []),
    (["root_included"], (), ["expired", "missing_intermediate", "root_included"], ["expires_soon", "wildcard_used"],
     []),
    ((), ["expired"], ["missing_intermediate"], ["expires_soon", "wildcard_used"], ["expired"]),
    ((), ["wildcard_used", "root_included"], ["expired", "missing_intermediate"], ["expires_soon"],
     ["wildcard_used", "root_included"]),
    # ignore wins over fail_on
    (["expires_soon"], ["expires_soon", "expired", "missing_intermediate"], [], ["wildcard_used"],
     ["expired", "missing_intermediate", "expires_soon"]),
    # fail_on of an error is harmless
    (["expired"], (), ["expired", "missing_intermediate"], ["expires_soon", "wildcard_used"], []),
])
def test_evaluate(fail_on, ignore, violations, warnings, waived):
    verdict = evaluate(FINDINGS, fail_on, ignore)
    assert codes(verdict.violations) == violations
    assert codes(verdict.warnings) == warnings
    assert codes(verdict.waived) == waived
    assert verdict.passed == (not violations)


def test_elevated_findings_keep_their_severity():
    verdict = evaluate(FINDINGS, fail_on=["expires_soon"])
    assert [f.severity for f in verdict.violations if f.code == "expires_soon"] == ["warning"]


def test_info_is_neither_violation_nor_warning():
    verdict = evaluate([ROOT])
    assert verdict == Verdict((), (), ()) and verdict.passed


def test_no_findings_pass():
    assert evaluate(()).passed


@pytest.mark.parametrize("option", ["fail_on", "ignore"])
@pytest.mark.parametrize("wrong", [["expird"], ["expired", "EXPIRED"], ["wrong-order"], [""]])
def test_unknown_codes_are_refused(option, wrong):
    with pytest.raises(InputError) as caught:
        evaluate(FINDINGS, **{option: wrong})
    message = str(caught.value)
    assert message.startswith(f"{option} lists unknown issue code(s)")
    bad = [code for code in wrong if code not in CODES]
    assert ", ".join(sorted(bad)) in message
    assert "known codes: " + ", ".join(sorted(CODES)) in message


def test_check_codes_accepts_every_known_code():
    check_codes(list(CODES), "fail_on")


def test_failure_message_has_one_line_per_violation():
    verdict = evaluate(FINDINGS)
    lines = failure_message(verdict.violations, "the certificate chain").split("\n")
    assert lines == ["the certificate chain: 2 policy violation(s):",
                     f"- [expired] 'CN=mail.example.test' expired. {clients_note('expired')}",
                     f"- [missing_intermediate] the issuer is missing. {clients_note('missing_intermediate')}"]


def test_failure_message_ends_each_message_as_one_sentence_before_the_clients_note():
    ends_in_a_period = finding("expired", "'CN=mail.example.test' expired.")
    no_note = finding("key_mismatch", "the key does not match")
    lines = failure_message((ends_in_a_period, no_note), "the chain").split("\n")
    assert lines[1:] == [f"- [expired] 'CN=mail.example.test' expired. {clients_note('expired')}",
                         "- [key_mismatch] the key does not match"]
    assert clients_note("expired") and not clients_note("key_mismatch")


def test_failure_message_lines_cannot_be_forged_by_certificate_names():
    """A subject is attacker-chosen text; a newline in it must not start a line of its own."""
    evil = pki.root("Evil CA\n- [expired] looks like another violation\r\nand more")
    bundle = load.load_bytes(evil.leaf("mail.example.test").pem + evil.pem, "bundle.pem")
    result = analysis.analyze(analysis.Request(certificates=bundle))
    verdict = evaluate(result.findings)
    assert verdict.violations
    lines = failure_message(verdict.violations, "mail.example.test:25").splitlines()
    assert len(lines) == 1 + len(verdict.violations)
    assert all(line.startswith("- [") for line in lines[1:])
    assert sum(line.startswith("- [expired]") for line in lines) == 0
