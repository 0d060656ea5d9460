# SPDX-License-Identifier: GPL-3.0-or-later
"""Bring the lab up or down for a deployment with the mailops.tls.deploy role (molecule and `make demo`).

    lab_deploy.py up --dir DIR [--base 127.0.0.210] [--distro trixie]
                                                          install (when root), start 3 backends + HAProxy
                                                          (this machine's, or Debian 13's from a cached root),
                                                          write DIR/pile/, renewed/, broken-key/
    lab_deploy.py down --dir DIR                          stop the lab (nothing is left running)
    lab_deploy.py inventory --dir DIR --list              the lab's inventory (an Ansible inventory script)

Each pile directory holds a messy pile from the lab CA (intermediate first, an unrelated certificate and the
lab root in the same file, the leaf last) and `vars.json`, the role's variables for it. `broken-key/` has a
key that does not match its leaf; `renewed/` is a second good pile
(another leaf). The piles and the inventory come from the integration tests' helpers
(tests/integration/test_deploy_role.py `make_pile`, tests/integration/deploy_inventory.py).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
for _sub in ("", "lab", "integration"):
    if str(TESTS / _sub) not in sys.path:
        sys.path.insert(0, str(TESTS / _sub))

import deploy_inventory  # noqa: E402
import lab as lablib  # noqa: E402
from test_deploy_role import make_pile  # noqa: E402

TOOLS = ("postfix", "dovecot", "doveadm", "haproxy", "ip", "script", "ss")
NOT_ROOT = """\
The lab needs root: it adds 127.0.0.x addresses to lo and runs its own Postfix, Dovecot and HAProxy
instances (on loopback only). It also needs these Debian packages:
    postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-managesieved haproxy openssl iproute2 util-linux
Run it as root (`sudo make demo`); as root the packages are installed for you (tests/lab/install.sh).
"""


def ensure_installed() -> None:
    """tests/lab/install.sh when root; otherwise explain what is needed and stop."""
    if os.geteuid() != 0:
        missing = [tool for tool in TOOLS if shutil.which(tool) is None]
        sys.stderr.write(NOT_ROOT + (f"Missing here: {', '.join(missing)}\n" if missing else ""))
        raise SystemExit(2)
    subprocess.run(["sh", str(TESTS / "lab" / "install.sh")], check=True)


def write_piles(lab, directory: Path) -> None:
    good = make_pile(lab, directory / "pile")
    (directory / "pile" / "vars.json").write_text(json.dumps(good["vars"], indent=2) + "\n")
    renewed = make_pile(lab, directory / "renewed")
    (directory / "renewed" / "vars.json").write_text(json.dumps(renewed["vars"], indent=2) + "\n")
    other = lab.pki.intermediate.leaf(*lablib.SERVICE_NAMES)
    broken = make_pile(lab, directory / "broken-key", key_of=other)
    (directory / "broken-key" / "vars.json").write_text(json.dumps(broken["vars"], indent=2) + "\n")


def cmd_up(args) -> int:
    ensure_installed()
    directory = Path(args.dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    lab = lablib.Lab(directory, base=args.base, distro=args.distro).up(backends=3)
    deploy_inventory.write_inventory(lab, directory / "inventory.yml")
    write_piles(lab, directory)
    print(f"lab up in {directory}: front {lab.front_address}, "
          + ", ".join(f"{b.name} {b.address}" for b in lab.backends))
    return 0


def cmd_down(args) -> int:
    lab = lablib.Lab(Path(args.dir).resolve())
    if lab.backends:
        lab.down()
        print(f"lab in {lab.dir} stopped")
    return 0


def cmd_inventory(args) -> int:
    """An inventory script: the lab's hosts when it is up, an empty group before."""
    if args.host:
        print("{}")
        return 0
    lab = lablib.Lab(Path(args.dir).resolve())
    running = bool(lab.backends) and lab.status()["state"] != "down"
    if not running:
        print(json.dumps({deploy_inventory.GROUP: {"hosts": []}}))
        return 0
    inventory = deploy_inventory.build_inventory(lab)["all"]["children"][deploy_inventory.GROUP]
    hostvars = inventory.pop("hosts")
    print(json.dumps({deploy_inventory.GROUP: {"hosts": sorted(hostvars), "vars": inventory["vars"]},
                      "_meta": {"hostvars": hostvars}}))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("command", choices=("up", "down", "inventory"))
    parser.add_argument("--dir", default=str(TESTS.parent / "build" / "demo-lab"))
    parser.add_argument("--base", default=None, help="the lab's front address (backends follow it)")
    parser.add_argument("--distro", default=None, help="where the daemons come from: host (default) or trixie")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--host")
    args = parser.parse_args(argv)
    try:
        return {"up": cmd_up, "down": cmd_down, "inventory": cmd_inventory}[args.command](args)
    except lablib.LabError as error:
        print(f"lab: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
