# SPDX-License-Identifier: GPL-3.0-or-later
"""Control characters from certificates (ESC, newline) are escaped in every reason and message, as subjects are: a
hostile certificate cannot forge lines or terminal escapes in results, logs and reports."""
from __future__ import annotations

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils import analysis, load

HOSTILE = "mail\x1b[31m.example.test\nok: everything verified"
ESCAPED = "mail\\x1b[31m.example.test\\x0aok: everything verified"


def _analyse(leaf, h, names):
    request = analysis.Request(certificates=load.load_bytes(pki.pem_bundle(leaf, *h.intermediates), "bundle.pem"),
                               roots=load.load_bytes(h.root.pem, "roots.pem"), names=tuple(names))
    return analysis.analyze(request)


@pytest.mark.parametrize("dns_names, common_name", [
    ((HOSTILE,), None),
    ((HOSTILE, "*." + HOSTILE), None),
    ((), HOSTILE),
], ids=["san", "san-and-wildcard", "cn-only"])
def test_hostile_names_are_escaped_in_reasons_and_findings(dns_names, common_name):
    h = pki.hierarchy("mail.example.test")
    leaf = h.intermediates[-1].issue(common_name or "hostile", dns_names=dns_names)
    result = _analyse(leaf, h, ["mail.example.test", "imap.example.test"])
    reasons = [match.reason for match in result.names]
    messages = [f.message for f in result.findings]
    assert "name_mismatch" in {f.code for f in result.findings}
    assert all(text.isprintable() for text in reasons + messages), reasons + messages
    assert any(ESCAPED in text for text in reasons + messages)


def test_a_hostile_end_label_is_escaped_in_the_parse_error():
    h = pki.hierarchy("mail.example.test")
    body = h.leaf.pem.decode().split("-----")[2]
    data = f"-----BEGIN CERTIFICATE-----{body}-----END CERT\x1b[2J\rIFICATE-----\n".encode()
    [error] = load.load_bytes(data, "bundle.pem").findings
    assert error.code == "parse_error" and error.message.isprintable()
    assert "END CERT\\x1b[2J\\x0dIFICATE" in error.message
