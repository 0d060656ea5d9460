#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Build the collection tarball from the work tree and check it as Galaxy, docs.ansible.com and
# ansible-builder would: no development files in it, plugin and docsite docs that antsibull-docs accepts,
# galaxy-importer's checks (without its container step), an execution environment definition that
# ansible-builder accepts, and the docsite pages in step with the Markdown guides.
# usage: release_check.sh VENV OUT_DIR     (VENV holds tests/requirements-release.txt)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
export PATH="$venv/bin:$PATH"
cd "$repo"

echo "-- docsite pages in step with docs/*.md"
rm -rf "$out/docsite"
bash tests/tools/docsite.sh "$out/docsite" >/dev/null
if ! diff -ru docs/docsite/rst "$out/docsite"; then
    echo "docs/docsite/rst is older than the Markdown guides: run 'make docsite' and commit the result" >&2
    exit 1
fi

echo "-- build the tarball from the work tree"
rm -rf "$out/dist" "$out/collections"
ansible-galaxy collection build --output-path "$out/dist" .
tarball=$(ls "$out"/dist/mailops-tls-*.tar.gz)
python tests/tools/check_tarball.py "$tarball"

echo "-- antsibull-docs lint-collection-docs --plugin-docs on the installed tarball"
ANSIBLE_COLLECTIONS_PATH="$out/collections" ansible-galaxy collection install --offline -p "$out/collections" "$tarball" >/dev/null
ANSIBLE_COLLECTIONS_PATH="$out/collections" antsibull-docs lint-collection-docs --plugin-docs \
    "$out/collections/ansible_collections/mailops/tls"
echo "antsibull-docs: no errors"

echo "-- galaxy-importer (no ansible-test container)"
log="$out/galaxy-importer.log"
(cd "$out/dist" && GALAXY_IMPORTER_CONFIG="$repo/tests/tools/galaxy-importer.cfg" \
    GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP="$out/ansible-tmp" python -m galaxy_importer.main "$tarball") >"$log" 2>&1 \
    || { cat "$log" >&2; echo "galaxy-importer failed" >&2; exit 1; }
if grep -E '^(WARNING|ERROR|CRITICAL):' "$log" >&2; then
    echo "galaxy-importer reported the problems above ($log)" >&2
    exit 1
fi
tail -1 "$log"

echo "-- ansible-builder: the example execution environment and the collection's dependencies"
rm -rf "$out/ee"
ansible-builder create -f docs/ee/execution-environment.yml --context "$out/ee" >/dev/null
echo "ansible-builder create: build context in $out/ee"
ansible-builder introspect --sanitize "$out/collections" | tee "$out/ee-introspect.txt"
for needed in 'cryptography>=36.0' 'ca-certificates' 'publicsuffix'; do
    grep -q -- "$needed" "$out/ee-introspect.txt" \
        || { echo "ansible-builder does not see '$needed' in meta/execution-environment.yml's files" >&2; exit 1; }
done
