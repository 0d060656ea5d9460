#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Install the Debian packages a test step needs when a command of theirs is missing (as root; others are told).
# usage: need_packages.sh COMMAND=PACKAGE...      e.g. need_packages.sh openssl=openssl
set -euo pipefail

missing=()
for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "NOTICE: ${missing[*]} missing and not root: the tests that need them are skipped"
    exit 0
fi
echo "installing ${missing[*]} with apt-get"
apt-get -o DPkg::Lock::Timeout=900 update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}"
