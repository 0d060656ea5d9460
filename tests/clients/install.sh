#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Install the client matrix's mail clients and TLS tools from Debian's packages. Idempotent; run as root.
# usage: install.sh [--fast]   --fast: only the clients the test in `make test` runs (Python, curl, gnutls-cli,
#                              fetchmail); without it every client of `make clients` (adds mutt, NSS, Go, Java).
set -eu

FAST="python3 curl gnutls-bin fetchmail util-linux"
PACKAGES="$FAST mutt libnss3-tools golang-go default-jdk-headless"
if [ "${1:-}" = --fast ]; then
    PACKAGES=$FAST
fi

if [ "$(id -u)" != 0 ]; then
    echo "tests/clients/install.sh: must run as root" >&2
    exit 1
fi
missing=""
for pkg in $PACKAGES; do
    case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)" in
        ii*) ;;
        *) missing="$missing $pkg" ;;
    esac
done
if [ -z "$missing" ]; then
    echo "client packages already installed"
    exit 0
fi
echo "installing:$missing"
# shellcheck disable=SC2086
if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends $missing; then
    apt-get -o DPkg::Lock::Timeout=900 update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends $missing
fi
