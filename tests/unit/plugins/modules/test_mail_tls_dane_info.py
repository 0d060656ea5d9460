# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_tls_dane_info through ansible-playbook itself, offline: given MX hosts, given TLSA records and a planned
chain (the deploy role's pre-change check); the DNS and live paths run against the lab in tests/integration."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import pki
from ansible_adhoc import ANSIBLE_BIN, run_task

from ansible_collections.mailops.tls.plugins.module_utils.tlsa import record_for

pytestmark = pytest.mark.skipif(not ANSIBLE_BIN.exists(),
                                reason="ansible-core is not installed in this interpreter's environment "
                                       "(make unit installs it; make unit-oldest tests the library only)")
MX = "mx1.example.test"


@pytest.fixture(scope="module")
def ca():
    return pki.hierarchy(MX)


def planned(tmp_path, ca, *, tlsa, **options):
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki.pem_bundle(ca.intermediates[0], ca.leaf))  # out of order: the chain is built first
    return run_task(tmp_path, "mailops.tls.mail_tls_dane_info",
                    {"domain": "example.test", "mx": [MX], "tlsa": tlsa, "path": [str(chain)], "mta_sts": False,
                     "resolver": "127.0.0.1", **options}, check_mode=True)


def test_a_planned_chain_the_records_cover_passes(tmp_path, ca):
    result = planned(tmp_path, ca, tlsa=[str(record_for(ca.leaf.der))])
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False and result["records_to_publish"] == []
    endpoint = result["endpoints"][0]
    assert endpoint["name"] == f"{MX}:25 (planned chain)" and endpoint["dane"]["status"] == "verified"
    assert result["summary"]["verified"] == 1 and result["summary"]["errors"] == 0


def test_a_planned_chain_the_records_lag_behind_lists_what_to_publish(tmp_path, ca):
    old = pki.hierarchy(MX).leaf
    result = planned(tmp_path, ca, tlsa=[f"_25._tcp.{MX}. 3600 IN TLSA {record_for(old.der)}"], ports=[25, 587])
    assert [e["dane"]["status"] for e in result["endpoints"]] == ["mismatch", "mismatch"]
    assert result["records_to_publish"][1] == {
        "name": f"_587._tcp.{MX}", "ttl": None,
        "records": [str(record_for(ca.leaf.der)), str(record_for(ca.intermediates[0].der, 2, 1, 1))]}
    assert {issue["code"] for issue in result["issues"]} == {"tlsa_mismatch"}


@pytest.mark.parametrize("options, message", [
    ({"tlsa": ["3 1 1 xyz"]}, "tlsa item 1 '3 1 1 xyz' is not a TLSA record"),
    ({"resolver": "dns.example.net"}, "is not an IP address"),
    ({"ports": [0]}, "port 0 is not from 1 to 65535"),
    ({"timeout": 0}, "timeout must be more than 0"),
])
def test_bad_options_fail_clearly(tmp_path, ca, options, message):
    result = planned(tmp_path, ca, **{"tlsa": [str(record_for(ca.leaf.der))], **options})
    assert result.get("failed") and message in result["msg"]
