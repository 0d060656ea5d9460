# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""One function per kind of finding. Each takes the facts of one analysis and yields findings."""
from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils import certs as certlib
from ansible_collections.mailops.tls.plugins.module_utils.chain import (
    INCOMPLETE,
    SELF_SIGNED,
    TRUSTED,
    CertificateIndex,
    Node,
    Path,
    SearchResult,
    intermediates_below,
    signature_checked,
)
from ansible_collections.mailops.tls.plugins.module_utils.expiry import CRITICAL_STAGE, ExpiryPolicy
from ansible_collections.mailops.tls.plugins.module_utils.findings import INFO, Finding, finding
from ansible_collections.mailops.tls.plugins.module_utils.load import LoadedKey
from ansible_collections.mailops.tls.plugins.module_utils.names import NameMatch
from ansible_collections.mailops.tls.plugins.module_utils.pathrules import PathJudge, label, ref

MINIMUM_RSA_BITS = 2048
MINIMUM_EC_BITS = 256


@dataclass(frozen=True)
class Facts:
    """Everything the checks look at for one analysis."""

    index: CertificateIndex
    leaf: Node
    path: Path
    alternatives: tuple[Path, ...]
    search: SearchResult
    keys: tuple[LoadedKey, ...]
    key_matches: Optional[bool]
    names: tuple[NameMatch, ...]
    valid_at: datetime.datetime
    expiry: ExpiryPolicy
    judge: PathJudge


def check_duplicates(facts: Facts) -> Iterator[Finding]:
    for node in facts.index.nodes.values():
        if len(node.given) > 1:
            yield finding("duplicate_certificate",
                          f"{label(node)} appears {len(node.given)} times (at {', '.join(node.locations)}): "
                          "keep one copy", ref(node))


def check_order(facts: Facts) -> Iterator[Finding]:
    given_positions = [node.given[0] for node in facts.path.nodes if node.given]
    if given_positions == sorted(given_positions) and (not facts.leaf.given or facts.leaf.given[0] == 0):
        return
    given = ", ".join(f"'{node.info.subject}'" for node in facts.index.given)
    wanted = ", then ".join(f"'{node.info.subject}'" for node in facts.path.served)
    if facts.path.kind == INCOMPLETE:
        wanted += ", then each missing issuer after the certificate it signed"
    yield finding("wrong_order", f"the certificates are not in serving order (given: {given}); serve them as: "
                  f"{wanted}", ref(facts.leaf))


def check_missing_intermediate(facts: Facts) -> Iterator[Finding]:
    path = facts.path
    if path.kind == INCOMPLETE and not path.cycle_skipped and not path.too_deep:
        top = path.nodes[-1]
        aia = top.info.aia_ca_issuers
        hint = f"; its CA publishes it at {aia[0]}" if aia else ""
        yield finding("missing_intermediate",
                      f"the issuer '{top.info.issuer}' of {label(top)} is missing: add that intermediate "
                      f"certificate after it{hint}; if it is the root of a private CA, give it in roots instead",
                      ref(top))
    for position, node in enumerate(path.served):
        if position and not node.given:
            below = path.served[position - 1]
            yield finding("missing_intermediate",
                          f"the intermediate {label(node)} that issued '{below.info.subject}' is not in the bundle: "
                          f"add it after '{below.info.subject}'", ref(node))


def check_root_included(facts: Facts) -> Iterator[Finding]:
    root = facts.path.root
    if root is not None and root.given and len(facts.path.nodes) > 1:
        yield finding("root_included", f"the root {label(root)} is in the bundle; clients must already have it, so "
                      "servers need not send it (remove it to save bytes, or keep it: it is harmless)", ref(root))


def check_unrelated(facts: Facts) -> Iterator[Finding]:
    # A cross-sign on another valid path of the leaf belongs to it (cross_signed names that path), and so does a
    # cross-certificate of the path's root (its name and key signed by an older CA, which legacy clients need;
    # clients that trust the root find it first). A twin of a served intermediate is surplus: a client that takes it
    # first may never find the root.
    on_path = set(facts.path.nodes).union(*(path.nodes for path in facts.alternatives))
    root = facts.path.root
    root_twin = (root.raw.subject, root.raw.spki) if root is not None and len(facts.path.nodes) > 1 else None
    # Above a missing intermediate, the bundle's CA certificates may well belong to the chain: say nothing.
    incomplete = facts.path.kind == INCOMPLETE
    for node in facts.index.nodes.values():
        if node.given and node not in on_path and not (incomplete and node.info.is_ca) and (
                node.raw.subject, node.raw.spki) != root_twin:
            yield finding("unrelated_certificate", f"{label(node)} is not part of the chain of the leaf "
                          f"'{facts.leaf.info.subject}': remove it from the bundle", ref(node))


def check_trust(facts: Facts) -> Iterator[Finding]:
    path = facts.path
    if path.kind == SELF_SIGNED:
        root = path.nodes[-1]
        yield finding("untrusted_root", f"the chain ends in the self-signed {label(root)}, which is not among the "
                      "trust anchors: give it in roots if it is your private CA, and publish it for your users",
                      ref(root))
    if path.kind == INCOMPLETE and path.cycle_skipped:
        top = path.nodes[-1]
        yield finding("chain_cycle", f"the issuers above {label(top)} lead back to certificates already in the "
                      "path and never to a root: add the CA's real intermediate or root", ref(top))
    if facts.search.budget_exhausted and path.kind == TRUSTED:
        yield finding("chain_search_limit", f"the search for alternative paths stopped after "
                      f"{facts.search.signature_checks} signature checks (the pool has many look-alike issuers); the "
                      "chain found is sound, but cross-signed alternatives may be missing", ref(facts.leaf),
                      severity=INFO)
    elif facts.search.budget_exhausted:
        yield finding("chain_search_limit", f"path building stopped after {facts.search.signature_checks} signature "
                      "checks: the pool has too many look-alike issuers; give a smaller pool or the intermediates "
                      "themselves", ref(facts.leaf))


def check_cross_signed(facts: Facts) -> Iterator[Finding]:
    if not facts.alternatives:
        return
    chosen = " -> ".join(f"'{n.info.subject}'" for n in facts.path.nodes)
    others = "; ".join(" -> ".join(f"'{n.info.subject}'" for n in p.nodes) for p in facts.alternatives)
    yield finding("cross_signed", f"{len(facts.alternatives) + 1} paths exist; chosen: {chosen}. "
                  f"Alternatives: {others}", ref(facts.leaf))


def check_validity(facts: Facts) -> Iterator[Finding]:
    for node in facts.path.nodes:
        info = node.info
        if info.not_after < facts.valid_at:
            yield finding("expired", f"{label(node)} expired on {info.not_after:%Y-%m-%d}: renew it, or use the CA's "
                          "current certificate", ref(node))
        elif info.not_before > facts.valid_at:
            yield finding("not_yet_valid", f"{label(node)} is valid only from {info.not_before:%Y-%m-%d %H:%M} UTC: "
                          "check the clock, or wait", ref(node))


def check_expiry(facts: Facts) -> Iterator[Finding]:
    """Valid certificates of the path past the warning or critical threshold (expired ones are check_validity's)."""
    for node in facts.path.nodes:
        info = node.info
        if not info.not_before <= facts.valid_at <= info.not_after:
            continue
        crossed = facts.expiry.stage(info.not_before, info.not_after, facts.valid_at)
        if crossed:
            stage, threshold = crossed
            days = (info.not_after - facts.valid_at).days
            yield finding("expires_critical" if stage == CRITICAL_STAGE else "expires_soon",
                          f"{label(node)} expires in {days} days, on {info.not_after:%Y-%m-%d}, within the {stage} "
                          f"threshold of {threshold.describe(info.not_before, info.not_after)}: renew it", ref(node))


def check_ca_constraints(facts: Facts) -> Iterator[Finding]:
    nodes = facts.path.nodes
    for position in range(1, len(nodes)):
        node, info = nodes[position], nodes[position].info
        if not (info.is_ca or (not info.has_basic_constraints and node.anchor)) or not info.can_sign_certificates:
            why = "its keyUsage lacks keyCertSign" if info.is_ca else "it is not a CA (basicConstraints cA is false)"
            yield finding("not_a_ca", f"{label(node)} signed '{nodes[position - 1].info.subject}' but {why}: "
                          "clients reject this chain; get the certificate from a real CA", ref(node))
        elif info.path_length is not None and intermediates_below(nodes[:position]) > info.path_length:
            yield finding("path_length_exceeded", f"{label(node)} allows {info.path_length} intermediate(s) below "
                          f"it but has {intermediates_below(nodes[:position])}", ref(node))


def check_bad_signature(facts: Facts) -> Iterator[Finding]:
    if facts.path.kind != INCOMPLETE:
        return
    top = facts.path.nodes[-1]
    failed = {parent for child, parent in facts.search.failed_signatures if child is top}
    # A same-name certificate whose key identifier differs was ruled out before any signature check.
    ruled_out = set(facts.index.name_only_candidates(top)) - set(facts.index.issuer_candidates(top))
    for parent in facts.index.name_only_candidates(top):
        if parent is not top and (parent in failed or parent in ruled_out) and (
                parent.given or parent.anchor == "supplied") and parent.readable():
            yield finding("bad_signature", f"{label(top)} names '{parent.info.subject}' as its issuer, but the key of "
                          f"{label(parent)} did not sign it: that is another certificate with the same name (a "
                          "re-keyed or look-alike CA); get the intermediate that really issued it", ref(top))


def check_names(facts: Facts) -> Iterator[Finding]:
    leaf = ref(facts.leaf)
    for match in facts.names:
        if not match.matches:
            yield finding("name_mismatch", f"the leaf '{facts.leaf.info.subject}' is not valid for {match.name}: "
                          f"{match.reason}; get a certificate whose subjectAltName lists {match.normalized}", leaf)
            if match.cn_only:
                yield finding("cn_only", f"{match.name} is only in the subject CN and the certificate has no "
                              "subjectAltName: only legacy clients that still read the CN (OpenSSL's default host "
                              "check, as in fetchmail, mutt and Postfix's SMTP client) accept it, current Thunderbird, "
                              "Apple Mail, Outlook on current Windows, Python, Go and rustls do not; reissue with the "
                              "name in subjectAltName, or set cn_fallback to judge for legacy clients", leaf)
        elif match.wildcard:
            yield finding("wildcard_used", f"{match.name} matches only the wildcard {match.matched_by}; some mail "
                          f"clients reject wildcards: add {match.normalized} to the subjectAltName", leaf)
        elif match.cn_only:
            yield finding("cn_only", f"{match.name} is only in the subject CN and the certificate has no "
                          "subjectAltName: modern clients reject it; reissue with the name in subjectAltName", leaf)


def check_key(facts: Facts) -> Iterator[Finding]:
    if facts.key_matches is False:
        sources = ", ".join(key.source for key in facts.keys)
        yield finding("key_mismatch", f"the private key ({sources}) does not belong to the leaf "
                      f"'{facts.leaf.info.subject}': give the key the certificate was requested with", ref(facts.leaf))


def check_weak_crypto(facts: Facts) -> Iterator[Finding]:
    nodes = facts.path.nodes
    for position, node in enumerate(nodes):
        info = node.info
        minimum = {"rsa": MINIMUM_RSA_BITS, "dsa": MINIMUM_RSA_BITS, "ecdsa": MINIMUM_EC_BITS}.get(info.key_type, 0)
        if info.key_size < minimum:
            yield finding("weak_key", f"{label(node)} has a {info.key_size}-bit {info.key_type.upper()} key; at least "
                          f"{minimum} bits are needed", ref(node))
        weak = certlib.WEAK_HASHES.get(info.signature_hash or "")
        if weak and signature_checked(facts.path, position):
            yield finding("weak_signature", f"{label(node)} is signed with {weak}, which clients reject: reissue it "
                          "with SHA-256", ref(node))


def check_leaf_usage(facts: Facts) -> Iterator[Finding]:
    info = facts.leaf.info
    if info.server_auth is False:
        yield finding("missing_server_auth", f"the leaf '{info.subject}' has an extendedKeyUsage without "
                      "serverAuth: TLS clients refuse it; reissue it for TLS server authentication", ref(facts.leaf))
    if info.is_ca and len(facts.path.nodes) == 1:  # issued by another CA, it is ca_as_leaf (pathrules)
        yield finding("leaf_is_ca", f"the leaf '{info.subject}' is a CA certificate; some clients refuse CA "
                      "certificates as server certificates: use a server certificate", ref(facts.leaf))


def check_path_rules(facts: Facts) -> Iterator[Finding]:
    yield from facts.judge.findings(facts.path)


CHECKS = (check_duplicates, check_order, check_missing_intermediate, check_root_included, check_unrelated,
          check_trust, check_cross_signed, check_validity, check_expiry, check_ca_constraints, check_bad_signature,
          check_names, check_key, check_weak_crypto, check_leaf_usage, check_path_rules)


def run_checks(facts: Facts, checks: Sequence = CHECKS) -> tuple[Finding, ...]:
    return tuple(item for check in checks for item in check(facts))
