#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Create or refresh a virtualenv from a pinned requirements file.
# usage: mkvenv.sh VENV_DIR REQUIREMENTS_FILE      (interpreter: $PYTHON, default python3)
#
# A stamp file in the venv records a hash of the requirements file and of the interpreter; when both
# are unchanged and the venv's python still runs, nothing is done. Otherwise the venv is rebuilt from
# scratch. If the interpreter cannot make venvs (Debian/Ubuntu without python3-venv) and we are
# root, python3-venv is installed with apt-get first.
set -euo pipefail

venv=$1
requirements=$2
python=${PYTHON:-python3}
stamp=$venv/.mailops-requirements.sha256

# Several people may run make in one work tree at once: one venv update at a time.
lockdir="$(cd "$(dirname "$0")/../.." && pwd)/build/locks"
mkdir -p "$lockdir"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$lockdir/$(basename "$venv").lock"
    if ! flock -n 9; then
        echo "another make is updating $venv: waiting for it"
        flock 9
    fi
fi

command -v "$python" >/dev/null || { echo "mkvenv: $python not found" >&2; exit 1; }
key="$(sha256sum <"$requirements" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.splitlines()[0])' | tr ' ' _)"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] \
    && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    echo "$venv is up to date with $requirements"
    exit 0
fi

make_venv() {
    rm -rf "$venv"
    "$python" -m venv "$venv" && [ -x "$venv/bin/pip" ]
}

echo "creating $venv with $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
if ! make_venv; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "mkvenv: '$python -m venv' failed; install your distribution's venv package (Debian/Ubuntu: python3-venv)" >&2
        exit 1
    fi
    pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    echo "'$python -m venv' failed: installing python3-venv with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv || apt-get install -y -qq "python$pyver-venv"
    make_venv
fi

# pip's own config may name local wheel folders that do not exist on every machine: drop that noise.
"$venv/bin/python" -m pip install --quiet --progress-bar off --disable-pip-version-check \
    --require-virtualenv -r "$requirements" 2>&1 \
    | sed '/is ignored: it is neither a file nor a directory/d'
"$venv/bin/python" -m pip check --disable-pip-version-check
echo "$key" >"$stamp"
echo "$venv ready: $("$venv/bin/python" -m pip freeze --disable-pip-version-check | wc -l) packages pinned by $requirements"
