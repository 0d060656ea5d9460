# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Path building: from an unordered pile, a pool and trust anchors to the chain a server must send.

Parenthood is proved by signature, never by names alone. Candidates come from an index on the raw
subject and on the subject key identifier, so the cost stays near-linear in the pool size, and pool
certificates are fully parsed only when they become candidates.
"""
from __future__ import annotations

import bisect
import hashlib
import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
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

DEFAULT_MAX_CHAIN_DEPTH = 8  # intermediates between the leaf and the anchor, as cryptography's verifier allows
MAX_PATHS = 32
MAX_SIGNATURE_CHECKS = 400


class Node:
    """One distinct certificate (by SHA-256) and every role it has in the input; parsed on first use."""

    def __init__(self, raw: derlib.RawCertificate, digest: bytes, order: int = 0) -> None:
        self.raw = raw
        self.digest = digest
        self.order = order  # first appearance among the certificates that are not given
        self.given: list[int] = []
        self.locations: list[str] = []
        self.other_location: Optional[str] = None
        self.in_pool = False
        self.anchor: Optional[str] = None
        self._cert = None
        self._public_key = None
        self._info: Optional[certlib.CertInfo] = None
        self.unreadable: Optional[ValueError] = None  # why its DER, key, names or extensions cannot be parsed
        self._self_signed: Optional[bool] = None
        self.has_signed = False  # its key verified a child's signature: tried first among same-name candidates
        self.twin: Optional[Node] = None  # the same certificate given in an earlier index on the same base
        self.rule_facts = None  # what pathrules reads of it, read once

    @property
    def cert(self):
        if self._cert is None:
            self._cert = self.twin.cert if self.twin else certlib.load_der(self.raw.der)
        return self._cert

    @property
    def public_key(self):
        """The certificate's public key, extracted once: a pool issuer may verify many children."""
        if self._public_key is None:
            self._public_key = certlib.read_public_key(self.cert)
        return self._public_key

    def readable(self) -> bool:
        """Whether it can be described: cryptography parses names, extensions and the public key only when they are
        read, and a description reads them all. The error is kept in self.unreadable."""
        if self._info is None and self.unreadable is None:
            try:
                self._info = self.twin.info if self.twin else certlib.describe(self.cert, self.raw, self.public_key,
                                                                               self.self_signed)
            except ValueError as exc:
                self.unreadable = exc
        return self.unreadable is None

    @property
    def info(self) -> certlib.CertInfo:
        """Its description; raises self.unreadable when it cannot be described (see readable())."""
        if not self.readable():
            raise self.unreadable
        return self._info

    @property
    def self_signed(self) -> bool:
        if self._self_signed is None:
            self._self_signed = self.twin.self_signed if self.twin else self.raw.self_issued and (
                certlib.signature_verifies(self.cert, self.raw.der, self.public_key))
        return self._self_signed

    @property
    def first_location(self) -> str:
        """Where the certificate was first found: a given file and block, else a pool or roots file."""
        return self.locations[0] if self.locations else self.other_location or "the system trust store"

    def copy_roles(self, other: Node) -> None:
        """Take over other's pool and anchor roles (other is the same certificate in a shared base index)."""
        self.in_pool = other.in_pool
        self.anchor = other.anchor
        if not self.locations:
            self.other_location = other.other_location


class CertificateIndex:
    """Every certificate of the input, deduplicated, indexed by raw subject and subject key identifier.

    Pool and anchor certificates added with add_lazily() stay raw DER until a search needs them: a byte
    search for the issuer's raw subject (or key identifier) over all of them finds the few that can matter,
    so a pool of thousands costs little more than reading it. An index made on a base (base=) holds only
    the given certificates and shares the base's pool and anchors: index a pool once, build many chains.
    """

    def __init__(self, base: Optional[CertificateIndex] = None) -> None:
        self.nodes: dict[bytes, Node] = {}
        self.given: list[Node] = []
        self.damaged: list[tuple[int, str, Exception]] = []  # (order, location, error), in order
        self._by_subject: dict[bytes, list[Node]] = defaultdict(list)
        self._by_key_id: Optional[dict[bytes, list[Node]]] = None
        self._base = base
        self._lazy: Optional[_LazyCertificates] = None
        self._count = 0
        # (child digest, parent digest) -> signature verified: shared with the base, so pool and anchor links
        # are verified once for all the chains built on it (each search still counts them as checks)
        self.signatures: dict[tuple[bytes, bytes], bool] = base.signatures if base is not None else {}
        # digest -> the first node given on this base: later indexes on it (the next endpoint serving the same
        # chain) reuse its parse, description and self-signature check
        self._given_before: dict[bytes, Node] = {}

    @property
    def base_damaged(self) -> list[tuple[int, str, Exception]]:
        """Damage found so far among the pool and anchor certificates (of the base, for an index on one)."""
        return self._base.damaged if self._base is not None else self.damaged

    def add(self, loaded: LoadedCertificate, role: str) -> Node:
        """Add a certificate in a role; raises ValueError (derlib.DerError, certlib.UnreadableCertificate) when it
        is damaged. A given certificate is described at once, so that damage shows here."""
        digest = hashlib.sha256(loaded.der).digest()
        node = self.nodes.get(digest)
        if node is None:
            node = Node(derlib.parse_certificate(loaded.der), digest, self._count)
            if role == GIVEN and self._base is not None:
                same = next((n for n in self._base.subject_nodes(node.raw.subject) if n.digest == digest), None)
                if same is not None:
                    node.copy_roles(same)
                node.twin = same or self._base._given_before.get(digest)
            if role == GIVEN and not node.readable():
                raise node.unreadable
            if role == GIVEN and self._base is not None and node.twin is None:
                self._base._given_before[digest] = node
            self._register(node)
            self._count += 1
            if role == GIVEN and self._base is None and self._lazy is not None:
                self._lazy.find_subject(node.raw.subject)  # its roles in the pool or among the anchors
        if role == GIVEN:
            node.given.append(len(self.given))
            node.locations.append(loaded.location)
            self.given.append(node)
            return node
        if self._base is not None:
            raise ValueError("an index on a base takes only given certificates")
        _add_role(node, loaded, role)
        return node

    def add_lazily(self, groups: Sequence[tuple[Sequence[LoadedCertificate], str]]) -> None:
        """Add pool and anchor certificates, as (certificates, role) groups in role order (pool, supplied,
        system), parsed when a search needs them. Damage found then goes to self.damaged as (position,
        certificate, role, error)."""
        if any(role == GIVEN for _group, role in groups):
            raise ValueError("given certificates are added with add()")
        if self._lazy is not None:
            raise ValueError("add_lazily takes all pool and anchor certificates at once")
        certificates = [loaded for group, _role in groups for loaded in group]
        starts = list(itertools.accumulate((len(group) for group, _role in groups), initial=0))
        roles = [(start, role) for start, (_group, role) in zip(starts, groups)]
        ders = [loaded.der for loaded in certificates]
        # Exactly one SEQUENCE with a two-byte length (nearly every certificate) can wait for a search;
        # anything else is read at once, as add() does.
        odd = [number for number, der in enumerate(ders)
               if len(der) < 5 or der[0] != derlib.SEQUENCE or der[1] != 0x82 or (der[2] << 8 | der[3]) + 4 != len(der)]
        lazy = _LazyCertificates(self._count, certificates, ders, roles, set(odd), self._materialize, self._damaged)
        for number in odd:
            try:
                self._materialize(self._count + number, certificates[number], lazy.role(number))
            except ValueError as exc:
                self._damaged(self._count + number, certificates[number], lazy.role(number), exc)
        self._count += len(certificates)
        if len(odd) < len(certificates):
            self._lazy = lazy
            for node in list(self.given):
                self._lazy.find_subject(node.raw.subject)

    def _register(self, node: Node) -> None:
        self.nodes[node.digest] = node
        self._by_subject[node.raw.subject].append(node)
        self._by_key_id = None

    def _materialize(self, order: int, loaded: LoadedCertificate, role: str,
                     raw: Optional[derlib.RawCertificate] = None) -> None:
        """Add a pool or anchor certificate now (raises derlib.DerError when raw is None and it is damaged)."""
        digest = hashlib.sha256(loaded.der).digest()
        node = self.nodes.get(digest)
        if node is None:
            node = Node(raw or derlib.parse_certificate(loaded.der), digest, order)
            self._register(node)
        _add_role(node, loaded, role)

    def _damaged(self, order: int, loaded: LoadedCertificate, role: str, error: Exception) -> None:
        self._record_damage(order, _role_location(loaded, role), error)

    def _record_damage(self, order: int, location: str, error: Exception) -> None:
        self.damaged.append((order, location, error))
        self.damaged.sort(key=lambda item: item[0])

    def unreadable_found(self, node: Node) -> None:
        """Record that a pool or anchor certificate a search reached cannot be read (node.unreadable says why)."""
        owner = self._base if self._base is not None else self
        owner._record_damage(node.order, node.first_location, node.unreadable)

    def subject_nodes(self, subject: bytes) -> list[Node]:
        """Every certificate whose raw subject is subject, in input order (given first)."""
        if self._lazy is not None:
            self._lazy.find_subject(subject)
        nodes = list(self._by_subject.get(subject, ()))
        if self._base is not None:
            nodes += [node for node in self._base.subject_nodes(subject) if node.digest not in self.nodes]
        return sorted(nodes, key=_input_order)

    def key_id_nodes(self, key_id: bytes) -> list[Node]:
        """Every certificate whose subject key identifier is key_id."""
        if self._lazy is not None:
            self._lazy.find_key_id(key_id)
        if self._by_key_id is None:
            self._by_key_id = defaultdict(list)
            for node in self.nodes.values():
                if node.raw.subject_key_id:
                    self._by_key_id[node.raw.subject_key_id].append(node)
        nodes = list(self._by_key_id.get(key_id, ()))
        if self._base is not None:
            nodes += [node for node in self._base.key_id_nodes(key_id) if node.digest not in self.nodes]
        return nodes

    def issuer_candidates(self, child: Node) -> list[Node]:
        """Certificates whose subject says they may have issued child."""
        return _plausible(self.subject_nodes(child.raw.issuer), child)

    def key_id_candidates(self, child: Node) -> list[Node]:
        """Certificates found only by child's authority key identifier (their subject is encoded differently,
        but the names must still chain). Rarely needed, so looked up only then."""
        key_id = child.raw.authority_key_id
        if not key_id:
            return []
        by_name = self.subject_nodes(child.raw.issuer)
        return _plausible([n for n in self.key_id_nodes(key_id) if n not in by_name and _same_name(n, child)],
                          child)

    def name_only_candidates(self, child: Node) -> list[Node]:
        return self.subject_nodes(child.raw.issuer)


def _input_order(node: Node) -> tuple[bool, int]:
    return not node.given, node.given[0] if node.given else node.order


def _role_location(loaded: LoadedCertificate, role: str) -> str:
    """Where a pool or anchor certificate is, with the option it was given in: 'block 7 of bundle.pem (pool)'. A
    certificate analysed again keeps its origin's option (which that location names) instead of the role it has
    here."""
    return loaded.location if loaded.origin else f"{loaded.location} ({ROLE_NAMES[role]})"


def _add_role(node: Node, loaded: LoadedCertificate, role: str) -> None:
    if not node.locations and not node.other_location:
        node.other_location = _role_location(loaded, role)
    if role == POOL:
        node.in_pool = True
    elif node.anchor != SUPPLIED_ANCHOR:
        node.anchor = role


class _LazyCertificates:
    """Pool and anchor certificates as one byte string, searched for raw names and key identifiers.

    A certificate whose subject is S contains the bytes of S, so searching all certificates at once for S
    (at C speed) and parsing only the certificates it hits finds every one. Hits in an issuer field (followed
    by the validity, a SEQUENCE of times) are skipped without parsing: a CA's name is in all it issued.
    """

    def __init__(self, first: int, certificates: list[LoadedCertificate], ders: list[bytes],
                 roles: list[tuple[int, str]], odd: set[int], found, damaged) -> None:
        self.first = first  # the order of certificates[0] in its index
        self.certificates = certificates
        self.roles = roles  # (first number, role) of each group
        self.odd = odd  # read at once by the index, never here
        self.found = found  # (order, certificate, role, raw): it is needed
        self.damaged = damaged  # (order, certificate, role, error): it cannot be read
        self.blob = b"".join(ders)
        self.starts = list(itertools.accumulate(map(len, ders), initial=0))
        self.raw: dict[int, Optional[derlib.RawCertificate]] = {}
        self.done: set[int] = set()
        self.subjects: set[bytes] = set()
        self.key_ids: set[bytes] = set()

    def role(self, number: int) -> str:
        return self.roles[bisect.bisect_right(self.roles, (number, "~")) - 1][1]

    def _parsed(self, number: int) -> Optional[derlib.RawCertificate]:
        if number in self.odd:
            return None
        if number not in self.raw:
            loaded = self.certificates[number]
            try:
                self.raw[number] = derlib.parse_certificate(loaded.der)
            except ValueError as exc:
                self.raw[number] = None
                self.damaged(self.first + number, loaded, self.role(number), exc)
        return self.raw[number]

    def _hits(self, needle: bytes):
        """Yield (certificate number, offset after the needle) for each occurrence inside one certificate."""
        blob, starts = self.blob, self.starts
        position = blob.find(needle)
        while position >= 0:
            number = bisect.bisect_right(starts, position) - 1
            after = position + len(needle)
            if after <= starts[number + 1]:
                yield number, after
            position = blob.find(needle, position + 1)

    def find_subject(self, subject: bytes) -> None:
        if subject in self.subjects:
            return
        self.subjects.add(subject)
        examined = set()
        for number, after in self._hits(subject):
            if number in examined or _followed_by_validity(self.blob, after, self.starts[number + 1]):
                continue
            examined.add(number)
            raw = self._parsed(number)
            if raw is not None and raw.subject == subject:
                self._found(number, raw)

    def find_key_id(self, key_id: bytes) -> None:
        if key_id in self.key_ids:
            return
        self.key_ids.add(key_id)
        examined = set()
        for number, after in self._hits(key_id):
            # A subject key identifier is an OCTET STRING (04 len id); [0] (80 len id) is an authority key id.
            position = after - len(key_id)
            if number in examined or self.blob[position - 2:position] != bytes((derlib.OCTET_STRING, len(key_id))):
                continue
            examined.add(number)
            raw = self._parsed(number)
            if raw is not None and raw.subject_key_id == key_id:
                self._found(number, raw)

    def _found(self, number: int, raw: derlib.RawCertificate) -> None:
        if number not in self.done:
            self.done.add(number)
            self.found(self.first + number, self.certificates[number], self.role(number), raw)


def _followed_by_validity(blob: bytes, offset: int, end: int) -> bool:
    """True when the element at offset is a SEQUENCE starting with a UTCTime or GeneralizedTime (a Validity):
    the name before it is an issuer, as a subject is followed by a SubjectPublicKeyInfo."""
    if offset + 2 >= end or blob[offset] != derlib.SEQUENCE or blob[offset + 1] >= 0x80:
        return False
    return blob[offset + 2] in (0x17, 0x18)


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
        return certlib.read_name(parent.cert, "subject") == certlib.read_name(child.cert, "issuer")
    except ValueError:
        return False


def _candidate_order(node: Node) -> tuple:
    role = 0 if node.anchor == SUPPLIED_ANCHOR else 1 if node.given else 2 if node.in_pool else 3
    return role, not node.has_signed, node.digest


@dataclass(frozen=True)
class Path:
    """Leaf first, upward. kind says how it ends: at a trust anchor, a self-signed root, or nowhere."""

    nodes: tuple[Node, ...]
    kind: str
    cycle_skipped: bool = False
    too_deep: bool = False  # an issuer above was found but is beyond the depth limit

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
    def __init__(self, index: CertificateIndex, max_checks: int, max_depth: int) -> None:
        self.index = index
        self.max_checks = max_checks
        self.max_nodes = max_depth + 2  # the leaf, the intermediates and the anchor
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
            result = self.index.signatures.get(key)
            if result is None:
                result = self._signed(child, parent)
                self.index.signatures[key] = result
            self.verified[key] = result
            if result:
                parent.has_signed = True
            elif parent.unreadable is None:
                self.failed.append((child, parent))
        return self.verified[key]

    def _signed(self, child: Node, parent: Node) -> bool:
        """Whether parent's key verifies child's signature. A parent that cannot be read issued nothing usable: its
        damage is recorded instead. Only a parent whose key verified is described, as a path then needs it."""
        if parent.unreadable is not None:  # recorded when a search first reached it
            return False
        try:
            verified = certlib.signature_verifies(child.cert, child.raw.der, parent.public_key)
        except ValueError as exc:  # the parent's DER or public key
            parent.unreadable = exc
            verified = False
        if parent.unreadable is None and (not verified or parent.readable()):
            return verified
        self.index.unreadable_found(parent)
        return False

    def visit(self, path: tuple[Node, ...]) -> None:
        if len(self.paths) >= MAX_PATHS:
            return
        current = path[-1]
        if current.self_signed:
            self.paths.append(Path(path, TRUSTED if current.anchor else SELF_SIGNED))
            return
        found_before = len(self.paths)
        extended = cycle = too_deep = False
        trusted_key = None  # the key of an issuer through which current already reaches an anchor
        for candidates in (self.index.issuer_candidates, self.index.key_id_candidates):
            if extended or cycle:
                break
            for candidate in candidates(current):
                if candidate in path:
                    # A cycle only if it really signed current: a self-issued CA (a key rollover) names itself.
                    cycle = cycle or (candidate is not current and self.issued_by(current, candidate))
                    continue
                if trusted_key is not None and candidate.raw.spki != trusted_key:
                    # current's signature verified under trusted_key and that issuer leads to an anchor: under another
                    # key it cannot verify, so a look-alike (same name and key identifier) costs no check. Only after
                    # a trusted path, so a key forged to match one signature cannot hide the real issuer.
                    continue
                if not self.issued_by(current, candidate):
                    continue
                if len(path) + 1 > self.max_nodes - (0 if candidate.anchor or candidate.self_signed else 1):
                    too_deep = True  # only the anchor may follow the last intermediate allowed
                    continue
                extended = True
                reached_before = len(self.paths)
                self.visit((*path, candidate))
                if trusted_key is None and any(p.kind == TRUSTED for p in self.paths[reached_before:]):
                    trusted_key = candidate.raw.spki
        # An anchor that is not a self-signed root (an intermediate among the roots) ends a path only when no
        # trusted path goes on above it: clients that trust only the root need it served.
        if len(path) > 1 and current.anchor and not any(p.kind == TRUSTED for p in self.paths[found_before:]):
            self.paths.append(Path(path, TRUSTED))
        elif not extended:
            self.paths.append(Path(path, INCOMPLETE, cycle, too_deep))


def search_paths(index: CertificateIndex, leaf: Node, max_signature_checks: int = MAX_SIGNATURE_CHECKS,
                 max_depth: int = DEFAULT_MAX_CHAIN_DEPTH) -> SearchResult:
    """Every path from leaf upward with at most max_depth intermediates (and at most MAX_PATHS paths), each proved
    by signatures."""
    search = _Search(index, max_signature_checks, max_depth)
    search.visit((leaf,))
    return SearchResult(tuple(search.paths), search.checks, search.exhausted, tuple(search.failed))


def path_problems(path: Path, valid_at) -> int:
    """How many certificates of the path are outside their validity, act as an issuer they may not be, or carry a
    weak signature clients check."""
    problems = 0
    for position, node in enumerate(path.nodes):
        info = node.info
        if not info.not_before <= valid_at <= info.not_after:
            problems += 1
        if position > 0 and not issuer_allowed(node, path.nodes[:position]):
            problems += 1
        if info.signature_hash in certlib.WEAK_HASHES and signature_checked(path, position):
            problems += 1
    return problems


def signature_checked(path: Path, position: int) -> bool:
    """Whether clients check the signature of the certificate at position: all but a trust anchor's own and a
    self-signed root's, a self-signed server certificate that is its own anchor included (OpenSSL accepts one signed
    with SHA-1 at every security level)."""
    node = path.nodes[position]
    return not (position == len(path.nodes) - 1 and (node.self_signed or path.kind == TRUSTED))


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


def rank(path: Path, problems: Callable[[Path], int]) -> tuple:
    """Order paths: ending at an anchor, then with the fewest problems (a path with none before any with one), then
    at an operator's anchor, then valid longest, then shortest; the fingerprints break ties so the choice is
    deterministic."""
    kind_rank = {TRUSTED: 0, SELF_SIGNED: 1, INCOMPLETE: 2}[path.kind]
    expires = min(node.info.not_after for node in path.nodes)
    return (kind_rank, problems(path), not path.operator_anchor, -expires.timestamp(),
            len(path.nodes), tuple(node.digest for node in path.nodes))


def best_path(result: SearchResult, problems: Callable[[Path], int]) -> tuple[Path, tuple[Path, ...]]:
    """The chosen path and the other complete ones; problems(path) counts what is wrong with a path."""
    # Complete paths always rank first: incomplete ones (look-alikes of the pool) are ranked only when there is
    # nothing else, which spares describing every look-alike.
    ordered = sorted([p for p in result.paths if p.kind != INCOMPLETE] or result.paths, key=lambda p: rank(p, problems))
    best = ordered[0]
    others = tuple(p for p in ordered[1:] if p.kind != INCOMPLETE)
    return best, others
