#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Install the Postfix/Dovecot/HAProxy lab (tests/lab/install.sh, when present) and run tests/integration.
# usage: integration.sh VENV COLLECTIONS_ROOT
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=$(cd "$1" && pwd)
collections=$2
cd "$repo"

if [ -f tests/lab/install.sh ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing the lab: tests/lab/install.sh"
        bash tests/lab/install.sh
    else
        echo "NOTICE: not root: not running tests/lab/install.sh (the lab's packages must already be installed)"
    fi
fi

export ANSIBLE_COLLECTIONS_PATH="$collections"
export PATH="$venv/bin:$PATH"
exec bash tests/tools/run_pytest.sh --if-tests "$venv/bin/python" tests/integration
