# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Path building: from an unordered pile, a pool and trust anchors to the chain a server must send.

Parenthood is proved by signature, never by names alone. Candidates come from an index on the raw
subject and on the subject key identifier, so the cost stays near-linear in the pool size, and pool
certificates are fully parsed only when they become candidates.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils import certs as certlib
from ansible_collections.mailops.tls.plugins.module_utils import der as derlib
from ansible_collections.mailops.tls.plugins.module_utils.load import LoadedCertificate

GIVEN = "given"
POOL = "pool"
SUPPLIED_ANCHOR = "supplied"
SYSTEM_ANCHOR = "system"

ROLE_NAMES = {POOL: "pool", SUPPLIED_ANCHOR: "roots", SYSTEM_ANCHOR: "system trust store"}

TRUSTED = "trusted"
SELF_SIGNED = "self_signed"
INCOMPLETE = "incomplete"

MAX_DEPTH = 12
MAX_PATHS = 32
MAX_SIGNATURE_CHECKS = 400


class Node:
    """One distinct certificate (by SHA-256) and every role it has in the input; parsed on first use."""

    def __init__(self, raw: derlib.RawCertificate, digest: bytes) -> None:
        self.raw = raw
        self.digest = digest
        self.given: list[int] = []
        self.locations: list[str] = []
        self.other_location: Optional[str] = None
        self.in_pool = False
        self.anchor: Optional[str] = None
        self._cert = None
        self._info: Optional[certlib.CertInfo] = None
        self._self_signed: Optional[bool] = None

    @property
    def cert(self):
        if self._cert is None:
            self._cert = certlib.load_der(self.raw.der)
        return self._cert

    @property
    def info(self) -> certlib.CertInfo:
        if self._info is None:
            self._info = certlib.describe(self.cert, self.raw.der, self.self_signed)
        return self._info

    @property
    def self_signed(self) -> bool:
        if self._self_signed is None:
            self._self_signed = self.raw.self_issued and certlib.signature_verifies(
                self.cert, self.raw.der, self.cert.public_key())
        return self._self_signed

    @property
    def first_location(self) -> str:
        """Where the certificate was first found: a given file and block, else a pool or roots file."""
        return self.locations[0] if self.locations else self.other_location or "the system trust store"


class CertificateIndex:
    """Every certificate of the input, deduplicated, indexed by raw subject and subject key identifier."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, Node] = {}
        self.given: list[Node] = []
        self._by_subject: dict[bytes, list[Node]] = defaultdict(list)
        self._by_key_id: Optional[dict[bytes, list[Node]]] = None

    def add(self, loaded: LoadedCertificate, role: str) -> Node:
        """Add a certificate in a role; raises derlib.DerError when its DER is damaged."""
        digest = hashlib.sha256(loaded.der).digest()
        node = self.nodes.get(digest)
        if node is None:
            node = Node(derlib.parse_certificate(loaded.der), digest)
            self.nodes[digest] = node
            self._by_subject[node.raw.subject].append(node)
            self._by_key_id = None
        if role == GIVEN:
            node.given.append(len(self.given))
            node.locations.append(loaded.location)
            self.given.append(node)
            return node
        if not node.locations and not node.other_location:
            node.other_location = f"{loaded.location} ({ROLE_NAMES[role]})"
        if role == POOL:
            node.in_pool = True
        elif node.anchor != SUPPLIED_ANCHOR:
            node.anchor = role
        return node

    def issuer_candidates(self, child: Node) -> list[Node]:
        """Certificates whose subject says they may have issued child."""
        return _plausible(self._by_subject.get(child.raw.issuer, ()), child)

    def key_id_candidates(self, child: Node) -> list[Node]:
        """Certificates found only by child's authority key identifier (their subject is encoded differently,
        but the names must still chain). The index is built on first use: it is rarely needed."""
        key_id = child.raw.authority_key_id
        if not key_id:
            return []
        if self._by_key_id is None:
            self._by_key_id = defaultdict(list)
            for node in self.nodes.values():
                if node.raw.subject_key_id:
                    self._by_key_id[node.raw.subject_key_id].append(node)
        by_name = self._by_subject.get(child.raw.issuer, ())
        return _plausible([n for n in self._by_key_id.get(key_id, ()) if n not in by_name and _same_name(n, child)],
                          child)

    def name_only_candidates(self, child: Node) -> list[Node]:
        return list(self._by_subject.get(child.raw.issuer, ()))


def _plausible(candidates, child: Node) -> list[Node]:
    """Candidates in search order; a differing key identifier rules one out without a signature check, as
    OpenSSL does."""
    key_id = child.raw.authority_key_id
    if key_id:
        candidates = [n for n in candidates if n.raw.subject_key_id is None or n.raw.subject_key_id == key_id]
    return sorted(candidates, key=_candidate_order)


def _same_name(parent: Node, child: Node) -> bool:
    """parent's subject is child's issuer once parsed (RFC 5280 name chaining, whatever the string types)."""
    try:
        return parent.cert.subject == child.cert.issuer
    except ValueError:
        return False


def _candidate_order(node: Node) -> tuple:
    role = 0 if node.anchor == SUPPLIED_ANCHOR else 1 if node.given else 2 if node.in_pool else 3
    return role, node.digest


@dataclass(frozen=True)
class Path:
    """Leaf first, upward. kind says how it ends: at a trust anchor, a self-signed root, or nowhere."""

    nodes: tuple[Node, ...]
    kind: str
    cycle_skipped: bool = False

    @property
    def served(self) -> tuple[Node, ...]:
        """What a server sends: the path without its root (but never without the leaf)."""
        if self.kind in (TRUSTED, SELF_SIGNED) and len(self.nodes) > 1:
            return self.nodes[:-1]
        return self.nodes

    @property
    def root(self) -> Optional[Node]:
        if self.kind in (TRUSTED, SELF_SIGNED) and (len(self.nodes) > 1 or self.nodes[0].self_signed):
            return self.nodes[-1]
        return None

    @property
    def operator_anchor(self) -> bool:
        return self.kind == TRUSTED and self.nodes[-1].anchor == SUPPLIED_ANCHOR


@dataclass(frozen=True)
class SearchResult:
    paths: tuple[Path, ...]
    signature_checks: int
    budget_exhausted: bool
    failed_signatures: tuple[tuple[Node, Node], ...]


class _Search:
    def __init__(self, index: CertificateIndex, max_checks: int) -> None:
        self.index = index
        self.max_checks = max_checks
        self.checks = 0
        self.exhausted = False
        self.paths: list[Path] = []
        self.verified: dict[tuple[bytes, bytes], bool] = {}
        self.failed: list[tuple[Node, Node]] = []

    def issued_by(self, child: Node, parent: Node) -> bool:
        key = (child.digest, parent.digest)
        if key not in self.verified:
            if self.checks >= self.max_checks:
                self.exhausted = True
                return False
            self.checks += 1
            try:
                result = certlib.signature_verifies(child.cert, child.raw.der, parent.cert.public_key())
            except ValueError:
                result = False
            self.verified[key] = result
            if not result:
                self.failed.append((child, parent))
        return self.verified[key]

    def visit(self, path: tuple[Node, ...]) -> None:
        if len(self.paths) >= MAX_PATHS:
            return
        current = path[-1]
        if current.self_signed:
            self.paths.append(Path(path, TRUSTED if current.anchor else SELF_SIGNED))
            return
        found_before = len(self.paths)
        extended = cycle = False
        for candidates in (self.index.issuer_candidates, self.index.key_id_candidates):
            if extended or cycle:
                break
            for candidate in candidates(current):
                if candidate in path:
                    # A cycle only if it really signed current: a self-issued CA (a key rollover) names itself.
                    cycle = cycle or (candidate is not current and self.issued_by(current, candidate))
                    continue
                if len(path) >= MAX_DEPTH or not self.issued_by(current, candidate):
                    continue
                extended = True
                self.visit((*path, candidate))
        # An anchor that is not a self-signed root (an intermediate among the roots) ends a path only when no
        # trusted path goes on above it: clients that trust only the root need it served.
        if len(path) > 1 and current.anchor and not any(p.kind == TRUSTED for p in self.paths[found_before:]):
            self.paths.append(Path(path, TRUSTED))
        elif not extended:
            self.paths.append(Path(path, INCOMPLETE, cycle))


def search_paths(index: CertificateIndex, leaf: Node, max_signature_checks: int = MAX_SIGNATURE_CHECKS
                 ) -> SearchResult:
    """Every path from leaf upward (bounded), each proved by signatures."""
    search = _Search(index, max_signature_checks)
    search.visit((leaf,))
    return SearchResult(tuple(search.paths), search.checks, search.exhausted, tuple(search.failed))


def path_problems(path: Path, valid_at) -> int:
    """How many certificates of the path are outside their validity or act as an issuer they may not be."""
    problems = 0
    for position, node in enumerate(path.nodes):
        info = node.info
        if not info.not_before <= valid_at <= info.not_after:
            problems += 1
        if position > 0 and not issuer_allowed(node, path.nodes[:position]):
            problems += 1
    return problems


def issuer_allowed(issuer: Node, below: Sequence[Node]) -> bool:
    """basicConstraints cA, keyCertSign and pathLenConstraint allow issuer to sign what is below it."""
    info = issuer.info
    ca_ok = info.is_ca or (not info.has_basic_constraints and issuer.anchor is not None)
    if not ca_ok or not info.can_sign_certificates:
        return False
    return info.path_length is None or intermediates_below(below) <= info.path_length


def intermediates_below(below: Sequence[Node]) -> int:
    """Non-self-issued CA certificates between the leaf and an issuer (RFC 5280 6.1.4 (l))."""
    return sum(1 for node in below[1:] if not node.raw.self_issued)


def rank(path: Path, valid_at) -> tuple:
    """Order paths: ending at an anchor, then without problems, then at an operator's anchor, then valid
    longest, then shortest; the fingerprints break ties so the choice is deterministic."""
    kind_rank = {TRUSTED: 0, SELF_SIGNED: 1, INCOMPLETE: 2}[path.kind]
    expires = min(node.info.not_after for node in path.nodes)
    return (kind_rank, path_problems(path, valid_at), not path.operator_anchor, -expires.timestamp(),
            len(path.nodes), tuple(node.digest for node in path.nodes))


def best_path(result: SearchResult, valid_at) -> tuple[Path, tuple[Path, ...]]:
    """The chosen path and the other complete ones."""
    ordered = sorted(result.paths, key=lambda p: rank(p, valid_at))
    best = ordered[0]
    others = tuple(p for p in ordered[1:] if p.kind != INCOMPLETE)
    return best, others
