# SPDX-License-Identifier: GPL-3.0-or-later
"""The chains operators get wrong, built under one trusted root, for the client matrix (`make clients`).

Every scenario is a chain a server sends, the key that goes with its leaf, the name clients connect by and the
issue code it exercises (None for a chain that must work). The root is the one every client trusts (the lab's);
everything else is generated here at run time.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pki
from cryptography import x509

HOST = "mail.example.test"
BARE_DOMAIN = "example.test"
IDN_HOST = "bücher.example.test"
#: Every name a scenario connects by, as resolvers see them (A-labels).
HOST_NAMES = (HOST, BARE_DOMAIN, IDN_HOST.encode("idna").decode("ascii"))


@dataclass(frozen=True)
class Scenario:
    """One chain as served (leaf first), its leaf's key, the name to connect by and the code it exercises."""

    name: str
    title: str
    code: Optional[str]
    served: tuple
    host: str = HOST

    @property
    def chain_pem(self) -> bytes:
        return pki.pem_bundle(*self.served)

    @property
    def key_pem(self) -> bytes:
        return self.served[0].key_pem()


def _name_constraints_der(permitted_domain: str) -> bytes:
    """The DER value of a nameConstraints extension permitting one DNS subtree, for pki's raw_extensions (built by
    hand: cryptography 36 cannot encode an extension on its own). Short names only: one-byte lengths."""
    def tlv(tag: int, content: bytes) -> bytes:
        return bytes((tag, len(content))) + content

    subtree = tlv(0x30, tlv(0x82, permitted_domain.encode("ascii")))  # GeneralSubtree { dNSName }
    return tlv(0x30, tlv(0xA0, subtree))  # NameConstraints { permittedSubtrees [0] }


def build(root: pki.Issued, workdir: Path) -> list:
    """Every scenario, issued under root (the trust anchor every client is given), in the order served; workdir
    holds the openssl command's files for the SHA-1 CA (cryptography refuses to sign with SHA-1)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    day = datetime.timedelta(days=1)
    intermediate = root.issue("Client Matrix Intermediate CA", ca=True)
    upper = root.issue("Client Matrix Upper CA", ca=True)
    lower = upper.issue("Client Matrix Lower CA", ca=True)
    expired = root.issue("Client Matrix Expired CA", ca=True, not_before=now - 400 * day, not_after=now - 30 * day)
    sha1 = pki.openssl_ca(workdir, root, "Client Matrix SHA-1 CA")
    constrained = root.issue("Client Matrix example.org-only CA", ca=True,
                             raw_extensions=((x509.oid.ExtensionOID.NAME_CONSTRAINTS,
                                              _name_constraints_der("example.org")),))
    new_root = pki.root("Client Matrix New Root CA")
    new_root_by_old = pki.cross_sign(new_root, root)
    under_new_root = new_root.issue("Client Matrix Intermediate under the New Root", ca=True)
    good = intermediate.leaf(HOST)
    return [
        Scenario("correct", "a correct chain: leaf, intermediate (control)", None, (good, intermediate)),
        Scenario("missing_intermediate", "the leaf alone, its intermediate not sent", "missing_intermediate",
                 (intermediate.leaf(HOST),)),
        Scenario("wrong_order", "two intermediates sent top-down (leaf, upper, lower)", "wrong_order",
                 (lower.leaf(HOST), upper, lower)),
        Scenario("root_included", "the root sent after the intermediate", "root_included",
                 (intermediate.leaf(HOST), intermediate, root)),
        Scenario("cn_only", "the name only in the subject CN, no subjectAltName", "cn_only",
                 (intermediate.issue(HOST), intermediate)),
        Scenario("wildcard", f"*.{BARE_DOMAIN} for {HOST}", "wildcard_used",
                 (intermediate.leaf(f"*.{BARE_DOMAIN}"), intermediate)),
        Scenario("wildcard_bare_domain", f"*.{BARE_DOMAIN} for the bare {BARE_DOMAIN}", "name_mismatch",
                 (intermediate.leaf(f"*.{BARE_DOMAIN}"), intermediate), host=BARE_DOMAIN),
        Scenario("idn", f"an IDN name: {IDN_HOST} as its A-label, the client given the U-label", None,
                 (intermediate.leaf(HOST_NAMES[2]), intermediate), host=IDN_HOST),
        Scenario("name_constraints", f"a CA constrained to example.org issued {HOST}", "name_constraint_violation",
                 (constrained.leaf(HOST), constrained)),
        Scenario("expired_intermediate", "the intermediate expired (the leaf is valid)", "expired",
                 (expired.leaf(HOST, not_before=now - 60 * day), expired)),
        Scenario("cross_signed", "a path through a cross-signed root: leaf, intermediate, the new root signed by "
                 "the trusted one", None, (under_new_root.leaf(HOST), under_new_root, new_root_by_old)),
        Scenario("sha1_intermediate", "an intermediate signed with ECDSA-SHA-1", "weak_signature",
                 (sha1.leaf(HOST), sha1)),
        Scenario("rsa1024_leaf", "an RSA-1024 leaf", "weak_key",
                 (intermediate.leaf(HOST, key=pki.new_key("rsa", 1024)), intermediate)),
        Scenario("ca_as_leaf", "a CA certificate (CA:TRUE) as the server certificate", "ca_as_leaf",
                 (intermediate.issue(HOST, ca=True, dns_names=(HOST,)), intermediate)),
    ]
