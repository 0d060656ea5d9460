# SPDX-License-Identifier: GPL-3.0-or-later
"""The client matrix's fast subset on the lab: real clients still behave as docs/clients.md records.

Serves some scenarios of tests/clients/scenarios.py on backend mx1 and runs the clients that install quickly
(Python, curl, gnutls-cli, fetchmail); every result must be the one `make clients` measured and the library ships
(client_matrix.MEASURED), so findings never name clients that behave otherwise.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLIENTS_DIR = Path(__file__).resolve().parent.parent / "clients"
sys.path.insert(0, str(CLIENTS_DIR))

import clients as clientlib  # noqa: E402
import measure  # noqa: E402
import scenarios as scenariolib  # noqa: E402

from ansible_collections.mailops.tls.plugins.module_utils.client_matrix import MEASURED  # noqa: E402

FAST_CLIENTS = ("fetchmail", "gnutls-cli", "curl IMAPS", "Python smtplib", "Python imaplib")
SCENARIOS = ("correct", "missing_intermediate", "cn_only", "wildcard_bare_domain", "name_constraints",
             "expired_intermediate")


@pytest.fixture(scope="module")
def measured(lab, tmp_path_factory) -> dict:
    """The fast clients' results on the lab for the chosen scenarios (mx1 serves the lab's chain again after)."""
    if os.geteuid() != 0:
        pytest.skip("the client lab needs root (mount namespaces, package installs)")
    done = subprocess.run(["sh", str(CLIENTS_DIR / "install.sh"), "--fast"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, f"tests/clients/install.sh --fast failed:\n{done.stdout}{done.stderr}"
    clients = [c for c in clientlib.CLIENTS if c.name in FAST_CLIENTS]
    work = tmp_path_factory.mktemp("clients")
    scenarios = [s for s in scenariolib.build(lab.pki.root, work) if s.name in SCENARIOS]
    workspace = clientlib.prepare(work / "workspace", lab.pki.root_pem, lab.backend(0).address,
                                  scenariolib.HOST_NAMES, clients)
    try:
        return measure.measure(lab, workspace, scenarios, clients)
    finally:
        lab.reset_chain(0)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("client", FAST_CLIENTS)
def test_client_behaves_as_recorded(measured, scenario, client):
    outcome = measured[scenario]["clients"][client]
    shipped = MEASURED[scenario]
    recorded = (clientlib.REJECT if client in shipped["refused_by"] else
                clientlib.ACCEPT if client in shipped["accepted_by"] else "no verdict")
    assert outcome["result"] == recorded, f"{client} on {scenario}: {outcome} now, {recorded} in docs/clients.md " \
                                          "(run `make clients` again if the clients changed)"
