# SPDX-License-Identifier: GPL-3.0-or-later
"""The deploy role's DANE safety on a real Postfix: a key rollover the published TLSA records lag behind is refused
before anything is touched, naming the records to publish and the TTL; once they are published the same rollover
goes through, Postfix agrees (posttls-finger) and the old key's record is reported as left over."""
from __future__ import annotations

import deploy_inventory
import dnslab
import lab as lablib
import pytest
from run_playbook import run_playbook
from test_dane_lab import assert_posttls_finger_agrees

from ansible_collections.mailops.tls.plugins.module_utils import dane

MX = "mx1.example.test"


@pytest.fixture
def new_key(lab, dns_lab, tmp_path):
    """A certificate for a new key from the lab CA, as files to deploy to mx1; mx1 and the records are restored."""
    leaf = lab.pki.intermediate.leaf(*lablib.SERVICE_NAMES, *(b.hostname for b in lab.backends))
    (tmp_path / "chain.pem").write_bytes(leaf.pem + lab.pki.intermediate_pem)
    (tmp_path / "key.pem").write_bytes(leaf.key_pem())
    (tmp_path / "root.pem").write_bytes(lab.pki.root_pem)
    yield leaf
    lab.reset_chain(0)
    dns_lab.restore()


def deploy(lab, directory, **extra):
    plays = [{"name": "Deploy to mx1", "hosts": "mx1", "gather_facts": False,
              "roles": [{"role": "mailops.tls.deploy"}]}]
    variables = {"mail_tls_deploy_certificates": [str(directory / "chain.pem")],
                 "mail_tls_deploy_private_key": str(directory / "key.pem"),
                 "mail_tls_deploy_roots": [str(directory / "root.pem")], "mail_tls_deploy_system_roots": False,
                 "mail_tls_deploy_verify_ports": [25], "mail_tls_deploy_dovecot": False,  # DANE is about port 25
                 "mail_tls_deploy_dane_resolver": dnslab.RESOLVER, "mail_tls_deploy_dane_domain": dnslab.SIGNED,
                 "mail_tls_deploy_dane_mx": [MX], **extra}
    inventory = deploy_inventory.build_inventory(lab, extra_group_vars=variables)
    return run_playbook(directory, plays, inventory=inventory, env={"ANSIBLE_PIPELINING": "1"})


def test_a_lagging_rollover_is_refused_then_deployed_once_the_records_are_published(lab, dns_lab, new_key, tmp_path):
    current, upcoming = dnslab.spki_record(lab.pki.leaf), dnslab.spki_record(new_key)
    dns_lab.publish({"mx1": [current]})
    chain_file = lab.backends[0].chain_key_file
    before = chain_file.read_bytes()

    refused = deploy(lab, tmp_path)
    assert refused.returncode != 0, refused.output
    assert "do not authenticate the new chain yet" in refused.output and upcoming in refused.output, refused.output
    assert f"wait {dnslab.TLSA_TTL} seconds" in " ".join(refused.output.split())
    assert chain_file.read_bytes() == before  # nothing was touched
    assert lablib.served_leaf(lab.backends[0].address, "smtp") == lab.pki.leaf.der

    dns_lab.publish({"mx1": [current, upcoming]})  # current + next, as the refusal said
    deployed = deploy(lab, tmp_path)
    assert deployed.returncode == 0, deployed.output
    assert lablib.served_leaf(lab.backends[0].address, "smtp") == new_key.der
    assert_posttls_finger_agrees(MX, dane.VERIFIED)
    # The old key's record is reported for removal.
    report = " ".join(deployed.output.split())
    assert "match no certificate of the deployed chain" in report and current in report
