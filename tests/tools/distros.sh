#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Run the modules' tests through Ansible on each distribution's own Python and cryptography, besides the pinned
# virtualenvs: Debian 12's /usr/bin/python3 with python3-cryptography, and Debian 13's in the lab's cached root
# (tests/lab/distro.py). Needs root (packages, the chroot); without it the step says so and passes.
# usage: distros.sh VENV
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=$(cd "$1" && pwd)
cd "$repo"

if [ "$(id -u)" -ne 0 ]; then
    echo "NOTICE: not root: the modules are not run on the distributions' interpreters (needs apt and a chroot)"
    exit 0
fi
bash tests/lab/install.sh
trixie_root=$(python3 tests/lab/distro.py ensure trixie)

for python in /usr/bin/python3 "$trixie_root.python3"; do
    echo "== modules through Ansible on $("$python" -c 'import sys, cryptography; print(f"Python {sys.version.split()[0]}, cryptography {cryptography.__version__}")') ($python)"
    MAILOPS_MODULE_PYTHON=$python bash tests/tools/run_pytest.sh "$venv/bin/python" tests/unit/plugins/modules -q
done
