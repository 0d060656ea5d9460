#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Run `ansible-test sanity` on a copy of the collection, offline.
# usage: sanity.sh VENV BUILD_ROOT [EXTRA ansible-test ARGS...]
#   VENV        virtualenv holding ansible-core (ansible-test)
#   BUILD_ROOT  the copy goes to BUILD_ROOT/ansible_collections/mailops/tls
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=$(cd "$1" && pwd)
build_root=$2
shift 2

python="$venv/bin/python"
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
dest="$build_root/ansible_collections/mailops/tls"

# Several people may run `make sanity` in one work tree at once: one copy, one run at a time.
mkdir -p "$build_root"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$build_root/.lock"
    if ! flock -n 9; then
        echo "another sanity run is using $build_root: waiting for it"
        flock 9
    fi
fi

# The shellcheck sanity test is skipped with only a warning when shellcheck is missing: install it.
if ! command -v shellcheck >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing shellcheck with apt-get (for the shellcheck sanity test)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq shellcheck >/dev/null
    else
        echo "WARNING: shellcheck is not installed: ansible-test will skip its shellcheck test" >&2
    fi
fi

# ansible-test would download a get-pip script for each sanity virtualenv: put our offline one in its cache.
"$python" "$repo/tests/tools/seed_ansible_test.py"
"$python" "$repo/tests/tools/stage_collection.py" "$repo" "$dest"
# ansible-test lists a collection's files with git when it finds a .git directory in or above it; the
# repository's own .git would hide the copy (build/ is ignored), so the copy gets a repository of its own.
git -C "$dest" init -q
git -C "$dest" add -A

cd "$dest"
export PATH="$venv/bin:$PATH"
color=yes
if [ -n "${CI:-}" ] || [ ! -t 1 ]; then
    color=no
fi
echo "ansible-test sanity --local --python $pyver in $dest"
# pip's own config may name local wheel folders that do not exist on every machine: drop that noise.
"$venv/bin/ansible-test" sanity --local --python "$pyver" --color "$color" "$@" 2>&1 \
    | sed -u '/is ignored: it is neither a file nor a directory/d'

