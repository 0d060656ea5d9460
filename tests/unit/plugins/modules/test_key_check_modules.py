# SPDX-License-Identifier: GPL-3.0-or-later
"""A private_key_path that holds no key fails mail_tls_assert, through the ansible command itself: a directory, a
certificate file, a directory whose key has a suffix no certificate file has."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import pki
from ansible_adhoc import ANSIBLE_BIN, run_task

pytestmark = pytest.mark.skipif(not ANSIBLE_BIN.exists(),
                                reason="ansible-core is not installed in this interpreter's environment "
                                       "(make unit installs it; make unit-oldest tests the library only)")


@pytest.mark.parametrize("key_path, words", [
    ("keys", "private_key_path {tmp}/keys is a directory: name the leaf's private key file itself"),
    ("keys/mail.crt", "[no_private_key] private_key_path {tmp}/keys/mail.crt holds no private key, only 1 "
                      "certificate(s)"),
    ("keys/mail.key", None),
], ids=["directory-with-a-.key-file", "certificate-file", "the-key-itself"])
def test_assert_fails_unless_the_key_is_checked(tmp_path, company, key_path, words):
    upper, lower = company.intermediates
    (tmp_path / "fullchain.pem").write_bytes(pki.pem_bundle(company.leaf, lower, upper))
    (tmp_path / "root.pem").write_bytes(company.root.pem)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "mail.key").write_bytes(company.leaf.key_pem())
    (tmp_path / "keys" / "mail.crt").write_bytes(company.leaf.pem)
    result = run_task(tmp_path, "mailops.tls.mail_tls_assert",
                      {"path": [str(tmp_path / "fullchain.pem")], "roots": [str(tmp_path / "root.pem")],
                       "system_roots": False, "private_key_path": str(tmp_path / key_path)})
    if words is None:
        assert not result["failed"] and result["passed"] is True, result.get("msg")
        return
    assert result["failed"] and "Traceback" not in result["msg"]
    assert words.format(tmp=tmp_path) in result["msg"]
