# SPDX-License-Identifier: GPL-3.0-or-later
"""What the client matrix cannot measure, why the library keeps an error no measured client refuses, and where the
library is known to be looser than the clients.

The one place for all three: docs/clients.md is generated from it, and the comparison test
(tests/unit/plugins/module_utils/test_client_matrix.py) accepts an error that every measured client accepts only
when KEPT_ERRORS says why, and a chain the library passes but clients refuse only when LIBRARY_GAPS names it (as an
expected failure that must go away: the test fails once the library catches up and the entry is still here).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Documented:
    """A client that cannot run here: its TLS stack, its vendor-documented behaviour per scenario, the reference."""

    client: str
    stack: str
    behaviour: dict
    url: str
    title: str


#: Clients that cannot run here, as their vendors document them.
UNMEASURED = (
    Documented("Apple Mail (iOS 13+, macOS 10.15+)", "Apple Security framework", {
        "cn_only": "rejects: DNS names in the CommonName are no longer trusted, the SAN must hold the name",
        "sha1_intermediate": "rejects: certificates and issuing CAs must be signed with SHA-2",
        "rsa1024_leaf": "rejects: RSA keys below 2048 bits are no longer trusted for TLS",
    }, "https://support.apple.com/en-us/103769", "Requirements for trusted certificates in iOS 13 and macOS 10.15"),
    Documented("Outlook on Windows", "SChannel / CryptoAPI", {
        "missing_intermediate": "fetches a missing intermediate from the leaf's AIA caIssuers URL when it has one "
                                "(this scenario's leaf has none, as with most private CAs)",
    }, "https://social.technet.microsoft.com/wiki/contents/articles/3147.certificate-chaining-engine-cce.aspx",
        "Microsoft TechNet: Certificate Chaining Engine (CCE), building the certificate chain"),
    Documented("Android mail apps", "Conscrypt", {
        "missing_intermediate": "rejects (\"Trust anchor for certification path not found\") unless the intermediate "
                                "is cached from an earlier connection to another server",
    }, "https://developer.android.com/privacy-and-security/security-ssl#MissingCa",
        "Android developers: Security with network protocols, missing intermediate certificate authority"),
)

#: scenario -> what the measurements mean, where the matrix alone could mislead.
NOTES = {
    "cn_only": "Only Go refused: Python's `ssl` matches the CN when there is no SAN (`hostname_checks_common_name` is "
               "true by default), and so do curl and fetchmail (OpenSSL), GnuTLS and NSS. Apple documents a refusal "
               "(below).",
    "idn": "Clients that resolve names through the C library without converting them to A-labels first cannot "
           "even connect by the U-label; those that convert (curl, Python, mutt, gnutls-cli) verify the A-label "
           "in the certificate.",
    "rsa1024_leaf": "Dovecot (OpenSSL's default security level on Debian 12) will not load the key at all; Postfix "
                    "serves it, and the OpenSSL clients refuse it while GnuTLS and Go accept it.",
    "sha1_intermediate": "Dovecot will not load a chain with a SHA-1 signature; Postfix serves it, and every client "
                         "measured on it refuses it.",
}

#: scenario -> why the library reports an error although no client measured here refuses the chain.
KEPT_ERRORS = {
    "wrong_order": "TLS 1.2 (RFC 5246, section 7.4.2) says the server MUST send the leaf first and each certificate "
                   "directly followed by its issuer; the stacks measured here rebuild the path from whatever they "
                   "get, but a client may rely on the order the protocol promises. Fixing it costs nothing: "
                   "mail_tls_chain writes the right order.",
    "ca_as_leaf": "RFC 5280 (4.2.1.9) and the CA/Browser Forum rules forbid a CA certificate as the end entity, and "
                  "cryptography's verifier, rustls-webpki and Chromium refuse it; the OpenSSL, GnuTLS and Go based "
                  "clients measured here accept it. A server certificate is what the server needs, and any CA issues "
                  "one.",
}

#: scenario -> why the library still passes a chain that clients refuse (work tracked elsewhere; remove when fixed).
LIBRARY_GAPS: dict = {}
