#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Install the lab's daemons (Postfix, Dovecot, HAProxy) and tools. Idempotent; run as root.
# Leaves nothing running: the lab starts and stops every daemon itself.
set -eu

PACKAGES="postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-managesieved haproxy openssl iproute2 util-linux ca-certificates"
# The Debian 13 lab's root (tests/lab/distro.py) and the modules' tests on Debian 12's own Python and cryptography.
PACKAGES="$PACKAGES mmdebstrap python3-cryptography"
# The DNS lab (tests/lab/dnslab.py): authoritative NSD, zones signed with ldns, a validating Unbound.
PACKAGES="$PACKAGES nsd ldnsutils unbound"
# Monitoring and renewal: promtool (prometheus), the ACME lab (pebble, certbot; tests/lab/acmelab.py).
PACKAGES="$PACKAGES prometheus pebble certbot"
# Re-fetch package lists when they are older than this many seconds (or missing).
STALE_AFTER=86400

missing_packages() {
    for pkg in $PACKAGES; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
        case "$status" in
            ii*) ;;
            *) printf '%s ' "$pkg" ;;
        esac
    done
}

lists_stale() {
    stamp=/var/lib/apt/periodic/update-success-stamp
    [ -f "$stamp" ] || stamp=/var/cache/apt/pkgcache.bin
    [ -f "$stamp" ] || return 0
    ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || return 0
    age=$(( $(date +%s) - $(stat -c %Y "$stamp") ))
    [ "$age" -gt "$STALE_AFTER" ]
}

stop_daemons() {
    # Packages may start daemons where an init system runs; the lab wants none of the stock ones.
    for init in postfix dovecot haproxy nsd unbound prometheus; do
        if [ -x "/etc/init.d/$init" ]; then
            "/etc/init.d/$init" stop >/dev/null 2>&1 || true
        fi
    done
    postfix stop >/dev/null 2>&1 || true
    doveadm stop >/dev/null 2>&1 || true
    if [ -f /run/haproxy.pid ]; then
        kill "$(cat /run/haproxy.pid)" 2>/dev/null || true
    fi
}

main() {
    if [ "$(id -u)" != 0 ]; then
        echo "install.sh: must run as root" >&2
        exit 1
    fi
    missing=$(missing_packages)
    if [ -z "$missing" ]; then
        echo "lab packages already installed"
        exit 0
    fi
    echo "installing: $missing"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    echo "postfix postfix/mailname string lab.example.test" | debconf-set-selections
    if lists_stale; then
        apt-get update -q
    fi
    # shellcheck disable=SC2086
    if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends $missing; then
        apt-get update -q
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends $missing
    fi
    stop_daemons
}

main "$@"
