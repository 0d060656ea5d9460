# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_tls_root_info and mail_tls_root_files keep a private key given in content out of every log line at -vvv,
and still return a root given alone as it is, through the ansible command itself."""
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
VERBOSE = {"ANSIBLE_VERBOSITY": "3"}


def _key_body(key_pem: bytes) -> str:
    """A line from the middle of the key's base64: what a leak of the key would show."""
    return key_pem.decode().splitlines()[3]


@pytest.mark.parametrize("module, extra", [
    ("mailops.tls.mail_tls_root_info", {"system_roots": False}),
    ("mailops.tls.mail_tls_root_files", {"basename": "root", "formats": ["pem"]}),
])
def test_a_private_key_in_content_never_reaches_the_output(tmp_path, module, extra):
    root = pki.root()
    combined = root.key_pem().decode() + root.pem.decode()
    args = dict(extra, content=combined)
    if module.endswith("root_files"):
        args["dest"] = str(tmp_path)
    result = run_task(tmp_path, module, args, env=VERBOSE)
    output = result["stderr_of_ansible"] + result["diff_text"] + str(result)
    assert "module_args" in result["diff_text"] + str(result)  # -vvv printed the invocation
    assert _key_body(root.key_pem()) not in output
    assert "PRIVATE KEY" not in output


def test_root_info_returns_a_root_given_alone_unmasked(tmp_path):
    root = pki.root()
    for content in (root.pem.decode(), root.pem.decode().strip()):
        result = run_task(tmp_path, "mailops.tls.mail_tls_root_info", {"content": content, "system_roots": False},
                          env=VERBOSE)
        assert not result["failed"], result.get("msg")
        assert result["pem"] == root.pem.decode()
