# SPDX-License-Identifier: GPL-3.0-or-later
"""Every module through ansible-playbook on the oldest managed host the collection supports: Python 3.9 with
cryptography 36.0 (a virtualenv of tests/requirements-oldest-target.txt). Python 3.9 comes from PATH
(python3.9) or pyenv; a machine with neither skips, saying so."""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess

import pki
import pytest
from run_playbook import ANSIBLE_PLAYBOOK, REPO, run_playbook
from unit.hostile_server import Behaviour, HostileServer, server_context

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-core is not installed in this "
                                                                      "interpreter's environment")
OLDEST = "3.9"
VENV = REPO / ".venv-oldest-target"
NAME = "mail.example.test"


def oldest_python():
    """A working Python 3.9: python3.9 on PATH, else pyenv's newest 3.9.x; None when there is none. Each candidate
    is run, since pyenv puts shims on PATH for versions that are not active."""
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which(f"python{OLDEST}"),
                  *reversed(sorted(glob.glob(f"{pyenv_root}/versions/{OLDEST}.*/bin/python{OLDEST}")))]
    for candidate in filter(None, candidates):
        done = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == OLDEST:
            return candidate
    return None


@pytest.fixture(scope="module")
def target_python() -> str:
    python = oldest_python()
    if python is None:
        pytest.skip(f"no Python {OLDEST} here (python{OLDEST} on PATH or pyenv): the modules were not run on the "
                    "oldest supported Python")
    done = subprocess.run(["bash", str(REPO / "tests/tools/mkvenv.sh"), str(VENV),
                           str(REPO / "tests/requirements-oldest-target.txt")], env=dict(os.environ, PYTHON=python),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(VENV / "bin" / "python")


@pytest.fixture(scope="module")
def company():
    return pki.hierarchy(NAME)


def test_every_module_runs_on_python_3_9_with_cryptography_36(target_python, company, tmp_path):
    files = {"chain": pki.pem_bundle(company.leaf, *company.intermediates), "root": company.root.pem,
             "key": company.leaf.key_pem()}
    for name, data in files.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
    (tmp_path / "dovecot.conf").write_text("protocols = imap\n")
    out = tmp_path / "out"
    out.mkdir()
    trust = {"roots": [str(tmp_path / "root.pem")], "system_roots": False}
    chain = dict(trust, path=[str(tmp_path / "chain.pem")], names=[NAME])
    with HostileServer(server_context(company.served_chain), Behaviour("smtp")) as server:
        endpoint = {"address": "127.0.0.1", "port": server.port, "protocol": "smtp", "server_name": NAME}
        tasks = [
            {"name": "Interpreter", "ansible.builtin.command": f"{target_python} -c \"import sys, cryptography; "
             "print(sys.version_info[0], sys.version_info[1], cryptography.__version__)\"", "register": "versions",
             "changed_when": False},
            {"name": "facts", "mailops.tls.mail_tls_chain_facts": chain, "register": "facts"},
            {"name": "assert", "mailops.tls.mail_tls_assert": dict(chain, endpoints=[endpoint], timeout=10),
             "register": "gate"},
            {"name": "chain", "mailops.tls.mail_tls_chain": dict(chain, private_key_path=str(tmp_path / "key.pem"),
                                                                 combined_path=str(out / "combined.pem")),
             "register": "written"},
            {"name": "probe", "mailops.tls.mail_tls_endpoint_info": dict(trust, endpoints=[endpoint], timeout=10),
             "register": "probe"},
            {"name": "root", "mailops.tls.mail_tls_root_info": dict(trust, path=[str(tmp_path / "chain.pem")]),
             "register": "root"},
            {"name": "root files", "mailops.tls.mail_tls_root_files": {
                "content": "{{ root.pem }}", "dest": str(out), "basename": "{{ root.slug }}"}, "register": "published"},
            {"name": "report", "mailops.tls.mail_tls_report": {
                "hosts": [{"name": "mx1", "result": "{{ probe }}"}], "json_path": str(out / "report.json")},
             "register": "report"},
            {"name": "deploy", "mailops.tls.mail_tls_deploy": {
                "certificates": [str(tmp_path / "chain.pem")], "private_key": str(tmp_path / "key.pem"),
                "names": [NAME], **trust, "tls_dir": str(out / "tls"), "postfix": {"enabled": False},
                "dovecot": {"config_file": str(tmp_path / "dovecot.conf"), "dropin": str(out / "tls.conf"),
                            "version": "2.4.1"}},
             "check_mode": True, "register": "deployed"},
            {"name": "Keep the results", "ansible.builtin.copy": {
                "dest": str(tmp_path / "results.json"), "mode": "0600",
                "content": "{{ {'versions': versions.stdout, 'facts': facts, 'gate': gate, 'written': written,"
                           " 'probe': probe, 'root': root, 'published': published, 'report': report,"
                           " 'deployed': deployed} | to_json }}"}},
        ]
        run = run_playbook(tmp_path, [{"name": "oldest", "hosts": "localhost", "connection": "local",
                                       "gather_facts": False, "tasks": tasks}],
                           inventory={"all": {"hosts": {"localhost": {"ansible_python_interpreter": target_python}}}})
    assert run.returncode == 0, run.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["versions"] == f"{OLDEST.replace('.', ' ')} 36.0.2"
    assert results["facts"]["ansible_facts"]["mail_tls_chain"]["trusted"] is True
    assert results["gate"]["passed"] is True
    assert results["written"]["changed"] is True and (out / "combined.pem").is_file()
    [probed] = results["probe"]["endpoints"]
    assert probed["ok"] and probed["trusted"] and probed["peer_address"] == "127.0.0.1"  # openssl s_client on 3.9
    assert results["root"]["root"]["subject"] == company.root.cert.subject.rfc4514_string()
    assert results["published"]["changed"] is True and results["report"]["passed"] is True
    deployed = results["deployed"]
    assert deployed["changed"] and deployed["dovecot_include_added"] and deployed["transferred"] == 3, deployed
    assert sorted(deployed["written"]) == [str(out / "tls" / "fullchain.pem"), str(out / "tls" / "key.pem")]
