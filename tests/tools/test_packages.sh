#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Install the Debian packages the unit tests use, so that none of them skips on CI's machine (with CI=true a skip
# not on tests/skip_policy.py's allowlist fails the run): the system Public Suffix List, the openssl command (an
# independent oracle and the Python 3.9 probe backend) and the system trust store. As root only; otherwise it says
# what is missing and the tests that need it skip.
set -euo pipefail

packages=(publicsuffix openssl ca-certificates)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null | grep -q '^ii'; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "test packages already installed: ${packages[*]}"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "NOTICE: not root: not installing ${missing[*]} (the tests that need them skip)"
    exit 0
fi
apt_get() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 "$@"
}
echo "installing: ${missing[*]}"
if ! apt_get install -y -q --no-install-recommends "${missing[@]}"; then
    apt_get update -q
    apt_get install -y -q --no-install-recommends "${missing[@]}"
fi
