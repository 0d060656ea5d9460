#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# `make demo`: bring the lab up (installing its packages when root), run tests/demo/demo.yml against it,
# and always stop the lab afterwards. usage: demo.sh VENV COLLECTIONS_ROOT
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=$(cd "$1" && pwd)
collections=$2
lab_dir=$repo/build/demo-lab
# A base of its own, so the demo does not collide with the integration tests' labs (.10, .30, ...).
base=${MAILOPS_DEMO_BASE:-127.0.0.230}
cd "$repo"

"$venv/bin/python" tests/demo/lab_deploy.py up --dir "$lab_dir" --base "$base"
trap '"$venv/bin/python" tests/demo/lab_deploy.py down --dir "$lab_dir"' EXIT

export ANSIBLE_COLLECTIONS_PATH=$collections PATH="$venv/bin:$PATH"
export ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PIPELINING=1
# Only changes, failures and our messages: the default callback without the ok/skipped noise.
export ANSIBLE_DISPLAY_OK_HOSTS=0 ANSIBLE_DISPLAY_SKIPPED_HOSTS=0
# Failure messages of the expected failures run to kilobytes on one line: cut long lines for the terminal.
ansible-playbook -i "$lab_dir/inventory.yml" tests/demo/demo.yml -e "demo_lab_dir=$lab_dir" \
    | awk '{ if (length($0) > 240) print substr($0, 1, 237) "..."; else print }'

