# SPDX-License-Identifier: GPL-3.0-or-later
"""ACME end to end on the lab: certbot obtains a certificate for the lab's public names from Pebble (HTTP-01,
Pebble's challenge test server as DNS), then renews it twice with the collection's deploy hook
(scripts/mail_tls_certbot_deploy), which runs playbooks/deploy.yml for the renewed lineage:

1. a renewal during which mx2 fails (its Dovecot reload does nothing, so the live verification sees the old
   chain): mx1 serves the renewed certificate, mx2 is rolled back and serves the previous chain again, mx3 is
   left alone, and every backend keeps serving; the hook fails and certbot says so;
2. after Pebble restarts with a new root and intermediate (a CA that changed its hierarchy), a renewal that the
   hook deploys to every backend: every port of every backend and of the load balancer serves the new leaf with
   the new intermediate.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import deploy_inventory
import lab as lablib
import pytest
from cryptography import x509

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_playbook import ANSIBLE_PLAYBOOK, REPO, collections_path

sys.path.insert(0, str(REPO / "tests" / "lab"))
from acmelab import AcmeLab

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-playbook is not installed here")
HOOK = REPO / "scripts" / "mail_tls_certbot_deploy"
LINEAGE = "mail"


def config_files(lab) -> dict:
    """Every file of each backend's Postfix and Dovecot configuration directories, with its content."""
    return {path: path.read_bytes() for backend in lab.backends
            for directory in (backend.postfix_dir, backend.dovecot_conf.parent)
            for path in directory.iterdir() if path.is_file()}


def restore(lab, before: dict) -> None:
    """The configuration files as they were (files the deployments added removed), reloaded, and the lab's
    default chain served again."""
    now = config_files(lab)
    for path in now.keys() - before.keys():
        path.unlink()
    for path, data in before.items():
        if now.get(path) != data:
            lablib.write_file(path, data, backdate=path.parent.name == "postfix")
    for backend in lab.backends:
        backend.reload()
    lab.reset_chains()


def served(lab, address: str) -> dict:
    """service -> the chain (DER, as sent) of each service of address."""
    return {service: tuple(lablib.served_chain(address, service)) for service in lablib.PORTS}


@pytest.fixture(scope="module")
def acme(lab):
    if shutil.which("pebble") is None or shutil.which("certbot") is None:
        pytest.fail("pebble and certbot are missing: tests/lab/install.sh installs them")
    directory = Path(tempfile.mkdtemp(prefix="mailops-acme-"))
    acme_lab = AcmeLab(directory)
    try:
        yield acme_lab.up()
    finally:
        acme_lab.down()
        shutil.rmtree(directory, ignore_errors=True)


def hook_settings(lab, directory: Path, roots: list, failing: str = "") -> dict:
    """The hook's environment (certbot hands its own to hooks): its settings file (inventory, vars with the roots
    Pebble issued under), the collection and ansible-playbook; `failing` names a backend whose Dovecot reload does
    nothing."""
    inventory = deploy_inventory.build_inventory(lab)
    if failing:
        inventory["all"]["children"][deploy_inventory.GROUP]["hosts"][failing].update(
            mail_tls_deploy_dovecot_reload_command=["true"], mail_tls_deploy_verify_retries=2)
    (directory / "inventory.json").write_text(json.dumps(inventory))
    (directory / "roots.pem").write_bytes(b"".join(roots))
    (directory / "vars.json").write_text(json.dumps({"mail_tls_deploy_roots": [str(directory / "roots.pem")],
                                                     "mail_tls_deploy_system_roots": False}))
    (directory / "deploy.conf").write_text(f"MAIL_TLS_INVENTORY={directory / 'inventory.json'}\n"
                                           f"MAIL_TLS_VARS={directory / 'vars.json'}\n")
    return {"MAIL_TLS_DEPLOY_CONFIG": str(directory / "deploy.conf"), "ANSIBLE_COLLECTIONS_PATH": collections_path(),
            "ANSIBLE_PLAYBOOK": str(ANSIBLE_PLAYBOOK), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PIPELINING": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}


@pytest.fixture(scope="module")
def renewals(lab, acme, tmp_path_factory):
    """Obtain, renew with mx2 failing, restart Pebble, renew again: what each step left, as chains served."""
    names = [*lablib.SERVICE_NAMES, *(backend.hostname for backend in lab.backends)]
    directory = tmp_path_factory.mktemp("acme")
    steps = {"before": {b.name: served(lab, b.address) for b in lab.backends}}
    original_config = config_files(lab)
    obtained = acme.obtain(LINEAGE, names)
    assert obtained.returncode == 0, obtained.stdout + obtained.stderr
    first_root = acme.root_pem()
    try:
        steps["renewal"] = acme.certbot("renew", "--force-renewal", "--no-random-sleep-on-renew", "--deploy-hook",
                                        str(HOOK), env=hook_settings(lab, directory, [first_root], failing="mx2"))
        steps["renewed"] = (acme.lineage(LINEAGE) / "fullchain.pem").read_bytes()
        steps["after_renewal"] = {b.name: served(lab, b.address) for b in lab.backends}

        acme.restart_pebble()
        second_root = acme.root_pem()
        # Pebble forgot the account with its restart: certbot registers again, then renews the same lineage.
        shutil.rmtree(acme.certbot_dir / "config" / "accounts")
        steps["rekeyed_ca"] = acme.obtain(LINEAGE, names, "--force-renewal", "--deploy-hook", str(HOOK),
                                          env=hook_settings(lab, directory, [first_root, second_root]))
        steps["changed"] = (acme.lineage(LINEAGE) / "fullchain.pem").read_bytes()
        steps["after_change"] = {address: served(lab, address) for address in lab.addresses}
        steps["intermediates"] = (first_root, second_root)
        yield steps
    finally:
        restore(lab, original_config)


def test_renewal_with_a_failing_backend_rolls_it_back_while_the_others_serve(lab, renewals):
    run = renewals["renewal"]
    output = run.stdout + run.stderr
    assert "mail_tls_certbot_deploy: deploying" in output, output
    assert "the deployment of" in output and "failed" in output, output
    renewed = tuple(lablib.chain_ders(renewals["renewed"]))
    before = renewals["before"]
    after = renewals["after_renewal"]
    assert all(chain == renewed for chain in after["mx1"].values()), "mx1 serves the renewed chain"
    assert after["mx2"] == before["mx2"], "mx2 was rolled back to its previous chain"
    assert after["mx3"] == before["mx3"], "mx3 was not touched after mx2 failed"
    assert renewed not in set(before["mx2"].values())


def test_renewal_after_the_ca_changed_its_intermediate_is_served_everywhere(lab, renewals):
    run = renewals["rekeyed_ca"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert "mail_tls_certbot_deploy: deploying" in run.stdout + run.stderr
    changed = tuple(lablib.chain_ders(renewals["changed"]))
    renewed = tuple(lablib.chain_ders(renewals["renewed"]))
    assert len(changed) == 2 and changed[1] != renewed[1], "the new chain has another intermediate"
    issuer = x509.load_der_x509_certificate(changed[1]).issuer
    assert issuer == x509.load_pem_x509_certificate(renewals["intermediates"][1]).subject
    for address, services in renewals["after_change"].items():
        for service, chain in services.items():
            assert chain == changed, (address, service)
