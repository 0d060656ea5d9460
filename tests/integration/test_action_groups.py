# SPDX-License-Identifier: GPL-3.0-or-later
"""meta/runtime.yml's action groups through ansible-playbook: module_defaults for each group reach every module
of the group (no unsupported parameters), with community.crypto's option names as aliases; each module's
action_group attribute names the groups that hold it."""
from __future__ import annotations

import importlib
import json

import pki
import pytest
import yaml
from run_playbook import ANSIBLE_PLAYBOOK, REPO, run_playbook
from unit.hostile_server import free_port

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-core is not installed in this "
                                                                      "interpreter's environment")

GROUPS = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["action_groups"]
MODULES = sorted(path.stem for path in (REPO / "plugins" / "modules").glob("mail_tls_*.py"))
PASSPHRASE = "group defaults"
REGISTERED = ("facts", "gate", "write", "probe", "root", "report")


def test_each_module_declares_the_groups_that_hold_it():
    for module in MODULES:
        documentation = yaml.safe_load(importlib.import_module(
            f"ansible_collections.mailops.tls.plugins.modules.{module}").DOCUMENTATION)
        declared = documentation["attributes"]["action_group"]["membership"]
        assert declared == [f"mailops.tls.{group}" for group, members in GROUPS.items() if module in members], module


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A private CA's root, its intermediate, the chain of a leaf for mail.example.test, the leaf alone and its
    encrypted key, as files."""
    directory = tmp_path_factory.mktemp("groups")
    company = pki.hierarchy("mail.example.test")
    paths = {"root": company.root.pem, "pool": company.intermediates[0].pem, "bare": company.leaf.pem,
             "leaf": pki.pem_bundle(company.leaf, *company.intermediates),
             "key": company.leaf.key_pem(PASSPHRASE.encode())}
    for name, data in paths.items():
        (directory / f"{name}.pem").write_bytes(data)
    return directory


def play(group: str, defaults: dict, tasks: list) -> dict:
    """One play whose tasks get defaults through group/mailops.tls.<group> only."""
    return {"name": group, "hosts": "localhost", "gather_facts": False,
            "module_defaults": {f"group/mailops.tls.{group}": defaults}, "tasks": tasks}


def task(module: str, args: dict, register: str, **more) -> dict:
    return {"name": f"{module} {register}", f"mailops.tls.{module}": args, "register": register, **more}


def test_module_defaults_reach_every_module_of_each_group(files, tmp_path):
    trust = {"root_certificates": [str(files / "root.pem")], "intermediate_certificates": [str(files / "pool.pem")],
             "system_roots": False}
    judging = dict(trust, names=["mail.example.test"], expires_soon_days=36500)
    chain_files = {"path": [str(files / "leaf.pem")], "privatekey_path": str(files / "key.pem"),
                   "privatekey_passphrase": PASSPHRASE}
    closed = {"address": "127.0.0.1", "port": free_port(), "protocol": "smtp"}
    endpoints = {"endpoints": [closed], "key_types": ["ecdsa"], "timeout": 3, "concurrency": 1}
    bare = dict(trust, path=[str(files / "bare.pem")])  # the intermediate only in the pool: missing_intermediate
    plays = [
        play("trust", trust, [
            task("mail_tls_chain_facts", {"path": [str(files / "leaf.pem")]}, "facts"),
            task("mail_tls_assert", {"path": [str(files / "leaf.pem")]}, "gate"),
            task("mail_tls_chain", {"path": [str(files / "leaf.pem")], "fullchain_path": str(tmp_path / "full.pem")},
                 "write", check_mode=True),
            task("mail_tls_endpoint_info", {"endpoints": [closed], "timeout": 3}, "probe"),
            task("mail_tls_root_info", {"path": [str(files / "leaf.pem")]}, "root"),
        ]),
        play("judging", judging, [
            task("mail_tls_chain_facts", {"path": [str(files / "leaf.pem")]}, "facts"),
            task("mail_tls_assert", {"path": [str(files / "leaf.pem")], "fail_on": ["expires_soon"]}, "gate",
                 ignore_errors=True),
            task("mail_tls_chain", {"path": [str(files / "leaf.pem")], "fullchain_path": str(tmp_path / "full.pem")},
                 "write", check_mode=True),
            task("mail_tls_endpoint_info", {"endpoints": [closed], "timeout": 3}, "probe"),
        ]),
        play("chain_files", chain_files, [
            task("mail_tls_chain_facts", trust, "facts"),
            task("mail_tls_assert", trust, "gate"),
            task("mail_tls_chain", dict(trust, combined_path=str(tmp_path / "combined.pem")), "write",
                 check_mode=True),
        ]),
        play("endpoints", endpoints, [
            task("mail_tls_endpoint_info", {}, "probe"),
            task("mail_tls_assert", {}, "gate", ignore_errors=True),
        ]),
        play("policy", {"fail_on": ["expires_soon"], "ignore": ["missing_intermediate", "connect_refused"]}, [
            task("mail_tls_assert", dict(bare, expires_soon_days=36500), "gate", ignore_errors=True),
            task("mail_tls_chain", dict(bare, expires_soon_days=36500, fullchain_path=str(tmp_path / "full.pem")),
                 "write", check_mode=True, ignore_errors=True),
            task("mail_tls_report", {"hosts": [{"name": "mx1", "result": "{{ probe }}"}]}, "report"),
        ]),
    ]
    keep = "{{ {" + ", ".join(f"'{name}': {name} | default(None)" for name in REGISTERED) + "} | to_json }}"
    for each in plays:
        each["tasks"].append({"name": "Keep the results", "ansible.builtin.copy": {
            "dest": str(tmp_path / f"{each['name']}.json"), "mode": "0600", "content": keep}})
    run = run_playbook(tmp_path, plays, inventory={"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}})
    assert "Unsupported parameters" not in run.output
    assert run.returncode == 0, run.output
    results = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in GROUPS}

    # trust: the private root and the pool intermediate complete and anchor the chain in every module.
    trust_results = results["trust"]
    assert trust_results["facts"]["ansible_facts"]["mail_tls_chain"]["trusted"] is True
    assert not trust_results["gate"]["failed"]
    assert trust_results["write"]["changed"] is True
    assert trust_results["probe"]["endpoints"][0]["error"]["code"] == "connect_refused"
    assert "Test Root CA" in trust_results["root"]["root"]["subject"]

    # judging: the names are checked and expires_soon_days makes every certificate expire soon.
    judging_results = results["judging"]
    assert [entry["name"] for entry in judging_results["facts"]["ansible_facts"]["mail_tls_chain"]["names"]] == [
        "mail.example.test"]
    assert judging_results["gate"]["failed"] and "expires_soon" in judging_results["gate"]["msg"]
    assert judging_results["write"]["changed"] is True

    # chain_files: the leaf and its encrypted key, under community.crypto's option names.
    for result in (results["chain_files"]["facts"]["ansible_facts"]["mail_tls_chain"], results["chain_files"]["gate"]):
        assert result["key_matches"] is True
    assert results["chain_files"]["write"]["changed"] is True

    # endpoints: the endpoint list, key types and timeout of the group.
    probe = results["endpoints"]["probe"]["endpoints"]
    assert [(entry["port"], entry["key_type_requested"]) for entry in probe] == [(closed["port"], "ecdsa")]
    assert results["endpoints"]["gate"]["failed"] and "connect_refused" in results["endpoints"]["gate"]["msg"]

    # policy: fail_on fails the gate and the writer, ignore waives the pool intermediate (and, in the report of
    # the endpoints play's probe, the closed port).
    policy = results["policy"]
    for result in (policy["gate"], policy["write"]):
        assert result["failed"] and "expires_soon" in result["msg"], result
        assert "missing_intermediate" not in result["msg"]
    assert policy["report"]["passed"] is True
