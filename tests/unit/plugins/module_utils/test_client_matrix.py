# SPDX-License-Identifier: GPL-3.0-or-later
"""The library's verdicts held to the measured clients (docs/clients.md, `make clients`).

Each scenario chain is built again here and judged by the library as it is now; the clients' results are the ones
shipped in client_matrix.MEASURED. Fails when (a) a client refused a chain the library calls OK (no error and no
warning; a warning says some clients refuse it), or (b) every measured client accepted a chain the library calls an
error and tests/clients/documented.py does not say why the error is kept. Known gaps (documented.LIBRARY_GAPS) are
strict expected failures, so fixing the library without removing the entry fails too.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pki
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "clients"))

import documented
import measure
import scenarios as scenariolib

from ansible_collections.mailops.tls.plugins.module_utils import client_matrix
from ansible_collections.mailops.tls.plugins.module_utils.findings import CODES


@pytest.fixture(scope="module")
def judged(tmp_path_factory) -> dict:
    """scenario name -> (scenario, the library's verdict on its chain under a fresh root)."""
    root = pki.root("Client Matrix Test Root")
    built = scenariolib.build(root, tmp_path_factory.mktemp("scenarios"))
    return {s.name: (s, measure.library_verdict(s, root.pem)) for s in built}


def test_every_scenario_was_measured(judged):
    assert set(judged) == set(client_matrix.MEASURED), "run `make clients` after changing tests/clients/scenarios.py"


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=documented.LIBRARY_GAPS[name]))
    if name in documented.LIBRARY_GAPS else name for name in client_matrix.MEASURED])
def test_no_client_refuses_a_chain_the_library_calls_ok(judged, name):
    _scenario, library = judged[name]
    refused = client_matrix.MEASURED[name]["refused_by"]
    if library["verdict"] == "ok":
        assert not refused, f"{name}: the library finds nothing wrong, but {', '.join(refused)} refused the chain"


@pytest.mark.parametrize("name", list(client_matrix.MEASURED))
def test_an_error_is_refused_by_a_client_or_its_reason_documented(judged, name):
    _scenario, library = judged[name]
    measured = client_matrix.MEASURED[name]
    if library["verdict"] != "error" or not measured["accepted_by"]:
        assert name not in documented.KEPT_ERRORS, f"{name}: KEPT_ERRORS explains an error the library no longer " \
                                                   "reports or that clients could not judge: remove the entry"
        return
    if name in documented.KEPT_ERRORS:
        assert not measured["refused_by"], f"{name}: clients refuse it now; remove its KEPT_ERRORS entry"
    else:
        assert measured["refused_by"], f"{name}: the library reports {library['codes']} but every measured client " \
                                       "accepted the chain: relax the check or say in documented.KEPT_ERRORS why not"


@pytest.mark.parametrize("name", list(client_matrix.MEASURED))
def test_the_library_reports_the_code_each_scenario_shows(judged, name):
    scenario, library = judged[name]
    if scenario.code is None:
        assert library["verdict"] != "error", f"{name} must be a working chain, the library says {library['codes']}"
    elif scenario.code not in CODES:
        pytest.skip(f"the library has no issue code {scenario.code} yet")
    else:
        assert scenario.code in library["codes"], library
        assert client_matrix.MEASURED[name]["code"] == scenario.code


def test_clients_note_names_the_refusing_clients():
    refused = client_matrix.refused_by("missing_intermediate")
    assert refused, "every measured client accepted a missing intermediate?"
    note = client_matrix.clients_note("missing_intermediate")
    assert all(client in note for client in refused) and "docs/clients.md" in note
    assert client_matrix.clients_note("key_mismatch") == ""


def test_documented_entries_name_scenarios():
    for table in (documented.KEPT_ERRORS, documented.LIBRARY_GAPS):
        assert set(table) <= set(client_matrix.MEASURED)
