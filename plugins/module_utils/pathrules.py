# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The rules of path validation beyond signatures, validity, basicConstraints and pathLen (chain.py).

The Web PKI reading of RFC 5280, as cryptography's verifier, rustls-webpki and Chromium apply it: certificate
version, critical extensions, criticality of basicConstraints and subjectAltName, CA certificates as leaves,
extendedKeyUsage on intermediates, name constraints (within a work budget) and the chain depth. Each rule is one
function over a candidate path and yields violations; path ranking counts them, the checks report them.
docs/validation.md lists the rules and which clients enforce them.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils import certs as certlib
from ansible_collections.mailops.tls.plugins.module_utils.chain import (
    DEFAULT_MAX_CHAIN_DEPTH,
    INCOMPLETE,
    Node,
    Path,
    path_problems,
)
from ansible_collections.mailops.tls.plugins.module_utils.deps import CRYPTOGRAPHY_IMPORT_ERROR
from ansible_collections.mailops.tls.plugins.module_utils.findings import CertificateRef, Finding, finding

if CRYPTOGRAPHY_IMPORT_ERROR is None:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

# Comparisons of a name with a constraint in one analysis: a crafted set (thousands of subtrees against thousands
# of names) stops here with its own finding instead of making the analysis slow.
NAME_CONSTRAINT_BUDGET = 1 << 16

# Extensions whose meaning the library and the clients know: a critical extension of any other kind makes
# clients reject the certificate (RFC 5280 4.2).
UNDERSTOOD_EXTENSIONS = frozenset({
    "2.5.29.19",  # basicConstraints
    "2.5.29.15",  # keyUsage
    "2.5.29.37",  # extendedKeyUsage
    "2.5.29.17",  # subjectAltName
    "2.5.29.30",  # nameConstraints
    "2.5.29.14",  # subjectKeyIdentifier
    "2.5.29.35",  # authorityKeyIdentifier
    "2.5.29.32",  # certificatePolicies
    "2.5.29.36",  # policyConstraints
    "2.5.29.54",  # inhibitAnyPolicy
    "2.5.29.33",  # policyMappings
    "1.3.6.1.5.5.7.1.1",  # authorityInfoAccess
    "2.5.29.31",  # cRLDistributionPoints
})


def label(node: Node) -> str:
    """How messages name a certificate: its subject and where it was found."""
    return f"'{node.info.subject}' ({node.first_location})"


def ref(node: Node) -> CertificateRef:
    return CertificateRef(node.given[0] if node.given else None, node.info.sha256, node.info.subject)


@dataclass(frozen=True)
class Rules:
    """How strictly names and depth are judged (the modules' cn_fallback and max_chain_depth)."""

    cn_fallback: bool = False
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH


DEFAULT_RULES = Rules()


class PathJudge:
    """Applies the rules to the candidate paths of one analysis: each path once, one name constraint budget."""

    def __init__(self, rules: Rules, valid_at) -> None:
        self.rules = rules
        self.valid_at = valid_at
        self.budget = NAME_CONSTRAINT_BUDGET
        self._found: dict[tuple[bytes, ...], tuple[Finding, ...]] = {}

    def findings(self, path: Path) -> tuple[Finding, ...]:
        """Every violation of the rules on path, as error findings."""
        key = tuple(node.digest for node in path.nodes)
        if key not in self._found:
            self._found[key] = tuple(item for rule in RULES for item in rule(self, path))
        return self._found[key]

    def problems(self, path: Path) -> int:
        """What ranks a path: its validity, issuer and weak-signature problems and its rule violations."""
        return path_problems(path, self.valid_at) + len(self.findings(path))

    def spend(self, comparisons: int) -> bool:
        """Take comparisons from the budget; False once it is spent."""
        self.budget -= comparisons
        return self.budget >= 0


def _role(path: Path, position: int) -> str:
    if position == 0:
        return "leaf"
    return "root" if position == len(path.nodes) - 1 and path.kind != INCOMPLETE else "intermediate"


@dataclass(frozen=True)
class _RuleFacts:
    """What the rules read of one certificate, read once: cryptography builds new objects at every access."""

    version_1: bool
    unknown_critical: tuple[str, ...]
    basic_constraints_not_critical: bool  # of a CA
    san_critical: Optional[bool]  # None without subjectAltName
    subject_empty: bool
    name_constraints: object  # x509.NameConstraints or None
    names: tuple[tuple[str, object], ...]  # (kind, value) of every name constraints apply to, the CN aside


def _facts(node: Node) -> _RuleFacts:
    """node's facts, kept on the node (a pool certificate is read once for every analysis on its index)."""
    owner = node.twin or node
    if owner.rule_facts is None:
        owner.rule_facts = _read_facts(owner.cert)
    return owner.rule_facts


def _read_facts(cert) -> _RuleFacts:
    """describe() has parsed the extensions already, so reading them cannot raise here."""
    by_oid = {extension.oid: extension for extension in cert.extensions}
    constraints = by_oid.get(ExtensionOID.BASIC_CONSTRAINTS)
    san = by_oid.get(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    name_constraints = by_oid.get(ExtensionOID.NAME_CONSTRAINTS)
    subject = cert.subject
    return _RuleFacts(
        version_1=cert.version != x509.Version.v3,
        unknown_critical=tuple(sorted(oid.dotted_string for oid, extension in by_oid.items()
                                      if extension.critical and oid.dotted_string not in UNDERSTOOD_EXTENSIONS)),
        basic_constraints_not_critical=bool(constraints and constraints.value.ca and not constraints.critical),
        san_critical=None if san is None else san.critical, subject_empty=len(subject) == 0,
        name_constraints=name_constraints.value if name_constraints else None,
        names=_constrained_names(san.value if san else (), subject))


# The rules below apply to the trust anchor too: cryptography's verifier and `openssl verify -x509_strict` check the
# anchor's version, critical extensions, basicConstraints and extendedKeyUsage like any other certificate's.

def rule_version(judge: PathJudge, path: Path) -> Iterator[Finding]:
    for position, node in enumerate(path.nodes):
        if _facts(node).version_1:
            yield finding("certificate_version", f"{label(node)} is an X.509 version 1 certificate used as the "
                          f"{_role(path, position)}: strict clients require version 3 (with extensions) for every "
                          "certificate, even a root; get a current certificate from the CA", ref(node))


def rule_critical_extensions(judge: PathJudge, path: Path) -> Iterator[Finding]:
    for node in path.nodes:
        unknown = _facts(node).unknown_critical
        if unknown:
            yield finding("unknown_critical_extension", f"{label(node)} has critical extension(s) {', '.join(unknown)} "
                          "that clients do not understand, so they must reject it: reissue it without them or with "
                          "them marked non-critical", ref(node))


def rule_basic_constraints_critical(judge: PathJudge, path: Path) -> Iterator[Finding]:
    for position, node in enumerate(path.nodes[1:], 1):
        if _facts(node).basic_constraints_not_critical:
            yield finding("basic_constraints_not_critical", f"{label(node)} is a CA ({_role(path, position)}) whose "
                          "basicConstraints extension is not marked critical, which RFC 5280 requires and strict "
                          "clients enforce: get a corrected CA certificate", ref(node))


def rule_san_criticality(judge: PathJudge, path: Path) -> Iterator[Finding]:
    leaf = path.nodes[0]
    facts = _facts(leaf)
    if facts.san_critical is None:
        return
    empty = facts.subject_empty
    if empty and not facts.san_critical:
        yield finding("san_criticality", f"the leaf {label(leaf)} has an empty subject and a non-critical "
                      "subjectAltName, which must then be critical (RFC 5280 4.2.1.6): reissue it", ref(leaf))
    elif not empty and facts.san_critical:
        yield finding("san_criticality", f"the leaf {label(leaf)} has a subject and a critical subjectAltName, which "
                      "must then be non-critical (CA/Browser Forum Baseline Requirements 7.1.2.7.12): reissue it",
                      ref(leaf))


def rule_ca_as_leaf(judge: PathJudge, path: Path) -> Iterator[Finding]:
    leaf = path.nodes[0]
    if leaf.info.is_ca and len(path.nodes) > 1:
        yield finding("ca_as_leaf", f"the leaf {label(leaf)} is a CA certificate issued by "
                      f"'{path.nodes[1].info.subject}': clients refuse a CA certificate as a server certificate; use "
                      "a server (end-entity) certificate", ref(leaf))


def rule_issuer_server_auth(judge: PathJudge, path: Path) -> Iterator[Finding]:
    for position, node in enumerate(path.nodes[1:], 1):
        if node.info.server_auth is False:
            yield finding("issuer_missing_server_auth", f"{label(node)} is a CA ({_role(path, position)}) whose "
                          "extendedKeyUsage excludes serverAuth: clients refuse server certificates below it; use the "
                          "CA's intermediate for TLS servers", ref(node))


def rule_chain_depth(judge: PathJudge, path: Path) -> Iterator[Finding]:
    intermediates = len(path.nodes) - (1 if path.kind == INCOMPLETE else 2)
    limit = judge.rules.max_chain_depth
    if path.too_deep or intermediates > limit:
        yield finding("chain_too_deep", f"the chain of '{path.nodes[0].info.subject}' has more than {limit} "
                      f"intermediate certificate(s) (max_chain_depth): clients stop building such paths; use the "
                      "CA's shorter path or raise max_chain_depth", ref(path.nodes[0]))


def rule_name_constraints(judge: PathJudge, path: Path) -> Iterator[Finding]:
    for position, ca in enumerate(path.nodes[1:], 1):
        constraints = _facts(ca).name_constraints
        if constraints is None:
            continue
        for node in path.nodes[:position]:
            if node is not path.nodes[0] and node.raw.self_issued:
                continue  # RFC 5280 6.1.4 (g): self-issued intermediates are exempt
            names = _facts(node).names
            if node is path.nodes[0] and judge.rules.cn_fallback and not any(kind in ("dns", "ip")
                                                                             for kind, _value in names):
                names += tuple(("dns", value) for value in node.info.common_names if "." in value and " " not in value)
            broken = _violation(judge, constraints, names)
            if broken == _OVER_BUDGET:
                yield finding("name_constraints_too_complex", f"checking the name constraints of {label(ca)} took "
                              f"more than {NAME_CONSTRAINT_BUDGET} comparisons: such constraints are refused as an "
                              "attack on the verifier; ask the CA for simpler ones", ref(ca))
                return
            if broken is not None:
                yield finding("name_constraint_violation", f"{label(node)} has the name {broken} that the name "
                              f"constraints of the CA {label(ca)} do not allow: get a certificate from a CA allowed "
                              "to issue for that name, or a CA certificate whose constraints include it", ref(node))


_OVER_BUDGET = "over budget"


def _constrained_names(entries, subject) -> tuple[tuple[str, object], ...]:
    """(kind, value) of every name constraints apply to: subjectAltName entries and the subject as a directoryName
    (the CN of a certificate without subjectAltName is added where CN matching is on)."""
    names: list[tuple[str, object]] = []
    for entry in entries:
        if isinstance(entry, x509.DNSName):
            names.append(("dns", entry.value))
        elif isinstance(entry, x509.IPAddress):
            names.append(("ip", entry.value))
        elif isinstance(entry, x509.RFC822Name):
            names.append(("email", entry.value))
        elif isinstance(entry, x509.DirectoryName):
            names.append(("directory", entry.value))
    if len(subject):
        names.append(("directory", subject))
    return tuple(names)


def _constraint(subtree) -> Optional[tuple[str, object]]:
    """(kind, value) of a subtree; None for kinds no client checks here (URI, otherName, registeredID)."""
    if isinstance(subtree, x509.DNSName):
        return "dns", subtree.value
    if isinstance(subtree, x509.IPAddress):
        return "ip", subtree.value
    if isinstance(subtree, x509.RFC822Name):
        return "email", subtree.value
    if isinstance(subtree, x509.DirectoryName):
        return "directory", subtree.value
    return None


def _violation(judge: PathJudge, constraints, names: Sequence[tuple[str, object]]) -> Optional[str]:
    """The first name that constraints do not allow (as text), _OVER_BUDGET, or None when all are allowed."""
    permitted = [c for c in map(_constraint, constraints.permitted_subtrees or ()) if c is not None]
    excluded = [c for c in map(_constraint, constraints.excluded_subtrees or ()) if c is not None]
    if not judge.spend(len(names) * (len(permitted) + len(excluded))):
        return _OVER_BUDGET
    permitted_kinds = {kind for kind, _value in permitted}
    for kind, value in names:
        same = [constraint for constraint_kind, constraint in permitted if constraint_kind == kind]
        if kind in permitted_kinds and not any(_within(kind, value, constraint) for constraint in same):
            return _name_text(kind, value)
        if any(excluded_kind == kind and (_within(kind, value, constraint)
                                          or _wildcard_reaches(kind, value, constraint))
               for excluded_kind, constraint in excluded):
            return _name_text(kind, value)
    return None


def _within(kind: str, name, constraint) -> bool:
    if kind == "dns":
        return _dns_within(name, constraint)
    if kind == "ip":
        return _ip_within(name, constraint)
    if kind == "email":
        return _email_within(name, constraint)
    return list(name.rdns)[:len(constraint.rdns)] == list(constraint.rdns)


def _dns_within(name: str, constraint: str) -> bool:
    """RFC 5280 4.2.1.10: the name is the constraint or below it; a leading dot means strictly below (OpenSSL)."""
    name, constraint = name.lower().rstrip("."), constraint.lower().rstrip(".")
    if not constraint:
        return True
    if constraint.startswith("."):
        return name.endswith(constraint)
    return name == constraint or name.endswith("." + constraint)


def _wildcard_reaches(kind: str, name, constraint) -> bool:
    """A wildcard dNSName covers the excluded name one label below its parent (*.example.org covers an excluded
    mail.example.org), as cryptography's verifier reads it."""
    if kind != "dns" or not name.startswith("*."):
        return False
    return constraint.lower().rstrip(".").lstrip(".").partition(".")[2] == name[2:].lower().rstrip(".")


def _ip_within(address, network) -> bool:
    return address.version == network.version and address in network


def _email_within(address: str, constraint: str) -> bool:
    """A mailbox, a host (every mailbox at it) or a domain with a leading dot (every host below it)."""
    if "@" in constraint:
        return address.lower() == constraint.lower()
    host = address.rpartition("@")[2].lower()
    constraint = constraint.lower()
    return host.endswith(constraint) if constraint.startswith(".") else host == constraint


def _name_text(kind: str, value) -> str:
    if kind == "directory":
        return f"directoryName '{certlib.printable(value.rfc4514_string())}'"
    if kind == "ip":
        return f"iPAddress {ipaddress.ip_address(value)}"
    words = {"dns": "dNSName", "email": "rfc822Name"}[kind]
    return f"{words} {certlib.printable(str(value))}"


RULES = (rule_version, rule_critical_extensions, rule_basic_constraints_critical, rule_san_criticality,
         rule_ca_as_leaf, rule_issuer_server_auth, rule_chain_depth, rule_name_constraints)
