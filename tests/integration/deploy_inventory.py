# SPDX-License-Identifier: GPL-3.0-or-later
"""An Ansible inventory for the lab: one host per lab backend, for the mailops.tls.deploy role.

Each host (mx1, mx2, ...) runs with ``ansible_connection: local`` and points the role at its own
Postfix config directory, Dovecot config file, drop-in, TLS directory and address; the role's default
reload commands (``postfix -c DIR reload``, ``doveadm -c FILE reload``) then reload its own instances.
The group ``mail_backends`` holds them; its vars name the public names, the lab's ports (LMTP 24
included) and the lab's HAProxy front as the load balancer.

Used by tests/integration/test_deploy_role.py, and by anything else that drives the role against a lab:

    python3 tests/integration/deploy_inventory.py --lab-dir build/lab > build/lab/inventory.yml

The certificates to deploy are not part of the inventory: give them as extra vars.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Optional

LAB_PY = Path(__file__).resolve().parent.parent / "lab" / "lab.py"
GROUP = "mail_backends"


def lab_module():
    """tests/lab/lab.py as module ``lab`` (the one already imported, if any)."""
    if "lab" in sys.modules:
        return sys.modules["lab"]
    spec = importlib.util.spec_from_file_location("lab", LAB_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules["lab"] = module
    spec.loader.exec_module(module)
    return module


def dropin_path(backend) -> Path:
    """Where the role writes each backend's Dovecot drop-in: beside its dovecot.conf."""
    return backend.dovecot_conf.parent / "mailops-tls.conf"


def host_vars(backend) -> dict:
    """The role variables that point at one lab backend.

    A backend of another distribution (a chrooted Debian 13) is managed through that root's own Python: with
    pipelining every module, and every command the role runs, then runs in the root, as on such a host. Its
    temporary files go under /tmp, which the root shares with the host."""
    interpreter = {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    if backend.distro.foreign:
        interpreter = {"ansible_python_interpreter": backend.distro.python, "ansible_pipelining": True,
                       "ansible_remote_tmp": "/tmp/.ansible-mailops-lab"}
    return {
        "ansible_connection": "local",
        **interpreter,
        "mail_tls_deploy_verify_address": backend.address,
        "mail_tls_deploy_tls_dir": str(backend.tls_dir),
        # The lab's own file names, so lab.reset_chain() and the role write the same files.
        "mail_tls_deploy_postfix_chain_file": str(backend.chain_key_file),
        "mail_tls_deploy_dovecot_cert_file": str(backend.cert_file),
        "mail_tls_deploy_dovecot_key_file": str(backend.key_file),
        "mail_tls_deploy_postfix_config_dir": str(backend.postfix_dir),
        "mail_tls_deploy_dovecot_config_file": str(backend.dovecot_conf),
        "mail_tls_deploy_dovecot_dropin": str(dropin_path(backend)),
        # The reload commands are the role's defaults, which reload the instance of the config dir and file.
    }


def build_inventory(lab, *, extra_group_vars: Optional[dict] = None) -> dict:
    """The inventory for a lab (a ``lab.Lab``) as a dict (write it as JSON or YAML)."""
    lablib = lab_module()
    ports = sorted(set(lab.ports.values()))
    group_vars = {
        "mail_tls_deploy_names": list(lablib.SERVICE_NAMES),
        "mail_tls_deploy_verify_ports": ports,
        "mail_tls_deploy_load_balancer": {"address": lab.front_address, "ports": ports,
                                          "probes": 2 * len(lab.backends)},
        **(extra_group_vars or {}),
    }
    return {"all": {"children": {GROUP: {"hosts": {b.name: host_vars(b) for b in lab.backends},
                                         "vars": group_vars}}}}


def write_inventory(lab, path: Path, **kwargs) -> Path:
    """Write the inventory (JSON, which Ansible's YAML inventory plugin reads) to path."""
    path.write_text(json.dumps(build_inventory(lab, **kwargs), indent=2) + "\n")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--lab-dir", default="build/lab", help="the lab directory (default build/lab)")
    args = parser.parse_args(argv)
    lab = lab_module().Lab(args.lab_dir)
    if not lab.backends:
        print(f"no lab in {args.lab_dir}: bring it up first (python3 tests/lab/lab.py up)", file=sys.stderr)
        return 2
    print(json.dumps(build_inventory(lab), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
