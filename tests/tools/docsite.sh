#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Generate the docsite pages (docs/docsite/rst/*.rst) from the Markdown guides in docs/, so the guides
# appear beside the plugin docs on docs.ansible.com and in antsibull-docs builds.
# usage: docsite.sh [OUTPUT_DIR]   (default docs/docsite/rst; `make release-check` compares a fresh copy)
# The guides stay Markdown (they read well on any forge); this keeps the docsite copy in step.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$repo/docs/docsite/rst}
guides=(audit deploying-chains publish-root issue-codes dane clients input-guarantees monitoring acme)

if ! command -v pandoc >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing pandoc with apt-get (Markdown guides to docsite RST)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends pandoc >/dev/null
    else
        echo "docsite.sh: pandoc is needed (Debian/Ubuntu: apt-get install pandoc)" >&2
        exit 1
    fi
fi

mkdir -p "$out"
for guide in "${guides[@]}"; do
    {
        echo ".. _ansible_collections.mailops.tls.docsite.${guide//-/_}:"
        echo
        pandoc --from gfm-gfm_auto_identifiers --to rst --wrap=none \
            --lua-filter "$repo/tests/tools/md_links_to_refs.lua" "$repo/docs/$guide.md"
    } >"$out/$guide.rst"
done
echo "docsite: ${#guides[@]} guides written to $out"
