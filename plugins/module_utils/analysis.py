# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""One analysis: loaded certificates, pool, anchors, keys and names in; chain, findings and facts out."""
from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils import certs as certlib
from ansible_collections.mailops.tls.plugins.module_utils import chain as chainlib
from ansible_collections.mailops.tls.plugins.module_utils import names as nameslib
from ansible_collections.mailops.tls.plugins.module_utils import pathrules
from ansible_collections.mailops.tls.plugins.module_utils import tlsa as tlsalib
from ansible_collections.mailops.tls.plugins.module_utils.checks import Facts, run_checks
from ansible_collections.mailops.tls.plugins.module_utils.deps import require_cryptography
from ansible_collections.mailops.tls.plugins.module_utils.der import DerError
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.expiry import DEFAULT_EXPIRY, ExpiryPolicy
from ansible_collections.mailops.tls.plugins.module_utils.findings import ERROR, WARNING, Finding, finding
from ansible_collections.mailops.tls.plugins.module_utils.load import (
    HASHED_NAME,
    Loaded,
    LoadedCertificate,
    LoadedKey,
    files_in,
    load_bytes,
    load_paths,
    read_file,
)

# Where distributions keep the system trust store as one bundle: Debian/Ubuntu, RHEL/Fedora, SUSE, Alpine/BSD.
# Only consulted when the Python's OpenSSL knows no store of its own (a Python built against another OpenSSL).
SYSTEM_TRUST_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


def system_trust_store() -> Optional[str]:
    """The trust store TLS clients of this host use, as OpenSSL finds it: the SSL_CERT_FILE bundle, else the
    SSL_CERT_DIR hashed directory, else OpenSSL's default bundle or directory, else a distribution's bundle;
    None when there is none."""
    import ssl  # here: only modules that read the system store pay for importing it

    paths = ssl.get_default_verify_paths()  # applies SSL_CERT_FILE and SSL_CERT_DIR when they name what exists
    if os.environ.get(paths.openssl_cafile_env) and paths.cafile:
        return paths.cafile
    if os.environ.get(paths.openssl_capath_env) and paths.capath:
        return paths.capath
    return paths.cafile or next((path for path in SYSTEM_TRUST_BUNDLES if os.path.isfile(path)), None) or paths.capath


def load_trust_store(path: Optional[str]) -> Loaded:
    """The certificates of a trust store bundle, or of a hashed directory (only its hash-named files, as OpenSSL
    reads it: the bundle and the named copies beside them would repeat every certificate)."""
    if not path:
        return Loaded()
    if os.path.isdir(path):
        return load_paths([name for name in files_in(path) if HASHED_NAME.match(os.path.basename(name))],
                          check=False)
    return load_paths([path], check=False)


@dataclass(frozen=True)
class Request:
    """What to analyse. certificates are the ones given (the bundle); pool and roots only help."""

    certificates: Loaded
    pool: Loaded = field(default_factory=Loaded)
    roots: Loaded = field(default_factory=Loaded)
    system_roots: Loaded = field(default_factory=Loaded)
    keys: tuple[LoadedKey, ...] = ()
    names: tuple[str, ...] = ()
    valid_at: Optional[datetime.datetime] = None
    expiry: ExpiryPolicy = DEFAULT_EXPIRY
    rules: pathrules.Rules = field(default_factory=pathrules.Rules)
    # pool and roots already indexed (pool_index): Judgement.request passes its own, so many leaves share one
    indexed: Optional[chainlib.CertificateIndex] = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ChainEntry:
    """One certificate of the built chain or the root: its facts, where it came from and its DER."""

    info: certlib.CertInfo
    index: Optional[int]
    source: str
    der: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True)
class Analysis:
    """The result of one analysis; as_dict() is the stable schema every module returns."""

    certificates: tuple[ChainEntry, ...]
    chain: tuple[ChainEntry, ...]
    root: Optional[ChainEntry]
    findings: tuple[Finding, ...]
    names: tuple[nameslib.NameMatch, ...]
    complete: bool
    ordered: bool
    trusted: bool
    key_matches: Optional[bool]
    alternatives: tuple[tuple[ChainEntry, ...], ...]
    signature_checks: int
    valid_at: datetime.datetime

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == ERROR)

    def as_dict(self) -> dict:
        leaf = self.chain[0].info.sha256 if self.chain else None

        def entry(item: ChainEntry) -> dict:
            # The TLSA records that would match it: DANE-EE for the leaf, DANE-TA for every other certificate.
            usage = tlsalib.DANE_EE if item.info.sha256 == leaf else tlsalib.DANE_TA
            return dict(item.info.as_dict(self.valid_at), index=item.index, source=item.source,
                        tlsa=[str(record) for record in tlsalib.certificate_records(item.der, usage)])

        return {
            "certificates": [entry(item) for item in self.certificates],
            "chain": [entry(item) for item in self.chain],
            "root": entry(self.root) if self.root else None,
            "issues": [f.as_dict() for f in self.findings],
            "names": [_name_dict(match) for match in self.names],
            "complete": self.complete, "ordered": self.ordered, "trusted": self.trusted,
            "key_matches": self.key_matches,
            "alternatives": [[item.info.sha256 for item in path] for path in self.alternatives],
            "signature_checks": self.signature_checks,
        }


def _name_dict(match: nameslib.NameMatch) -> dict:
    return {"name": match.name, "normalized": match.normalized, "matches": match.matches,
            "matched_by": match.matched_by, "source": match.source, "wildcard": match.wildcard,
            "cn_only": match.cn_only, "reason": match.reason}


@dataclass(frozen=True)
class Judgement:
    """Everything that judges a chain besides the chain itself: pool, anchors, names, time and policy period."""

    pool: Loaded = field(default_factory=Loaded)
    roots: Loaded = field(default_factory=Loaded)
    system_roots: Loaded = field(default_factory=Loaded)
    names: tuple[str, ...] = ()
    valid_at: Optional[datetime.datetime] = None
    expiry: ExpiryPolicy = DEFAULT_EXPIRY
    rules: pathrules.Rules = field(default_factory=pathrules.Rules)

    @cached_property
    def index(self) -> chainlib.CertificateIndex:
        """The pool and the trust anchors, indexed once for every request made from this judgement."""
        return pool_index(self.pool, self.roots, self.system_roots)

    def request(self, certificates: Loaded, keys: tuple[LoadedKey, ...] = (),
                names: Optional[Sequence[str]] = None) -> Request:
        """An analysis request for certificates judged this way (names, when given, replace self.names)."""
        return Request(certificates=certificates, pool=self.pool, roots=self.roots, system_roots=self.system_roots,
                       keys=keys, names=tuple(self.names if names is None else names), valid_at=self.valid_at,
                       expiry=self.expiry, rules=self.rules, indexed=self.index)


def pool_index(pool: Loaded, roots: Loaded, system_roots: Loaded) -> chainlib.CertificateIndex:
    """Pool and trust anchors indexed for path building; read lazily, and shareable by many analyses."""
    index = chainlib.CertificateIndex()
    index.add_lazily([(pool.certificates, chainlib.POOL), (roots.certificates, chainlib.SUPPLIED_ANCHOR),
                      (system_roots.certificates, chainlib.SYSTEM_ANCHOR)])
    return index


def load_judgement(pool: Sequence[str] = (), roots: Sequence[str] = (), system_roots: bool = True,
                   names: Sequence[str] = (), valid_at: Optional[datetime.datetime] = None,
                   expiry: ExpiryPolicy = DEFAULT_EXPIRY, rules: pathrules.Rules = pathrules.DEFAULT_RULES
                   ) -> Judgement:
    """Read the pool and the trust anchors once; raises InputError for unreadable files."""
    require_cryptography()
    return Judgement(pool=load_paths(pool, check=False), roots=load_paths(roots),
                     system_roots=load_trust_store(system_trust_store()) if system_roots else Loaded(),
                     names=tuple(names),
                     valid_at=valid_at, expiry=expiry, rules=rules)


def load_certificates(paths: Sequence[str] = (), content: Optional[str] = None, private_key_path: Optional[str] = None,
                      passphrases: Sequence[Optional[bytes]] = ()) -> tuple[Loaded, tuple[LoadedKey, ...]]:
    """The certificates given (with their parse findings) and every private key found among the inputs."""
    require_cryptography()
    given = load_paths(paths, passphrases)
    if content:
        given = given + load_bytes(content.encode(), "content", passphrases)
    key_source = _private_key_file(private_key_path, passphrases) if private_key_path else Loaded()
    return Loaded(given.certificates, (), given.findings + key_source.findings), given.keys + key_source.keys


def _private_key_file(path: str, passphrases: Sequence[Optional[bytes]]) -> Loaded:
    """The keys of the file private_key_path names; a no_private_key finding when it holds none and nothing in it
    is a damaged or locked key (parse_error says that already)."""
    if os.path.isdir(path):
        raise InputError(f"private_key_path {path} is a directory: name the leaf's private key file itself, for "
                         "example /etc/ssl/private/mail.key")
    loaded = load_bytes(read_file(path), path, passphrases)
    if loaded.keys or any(f.code == "parse_error" for f in loaded.findings):
        return Loaded((), loaded.keys, loaded.findings)
    held = f"{len(loaded.certificates)} certificate(s)" if loaded.certificates else "no key block"
    return Loaded(findings=(*loaded.findings, finding(
        "no_private_key", f"private_key_path {path} holds no private key, only {held}: no key was checked against "
        "the leaf; name the file of the leaf's private key (PEM, DER or PKCS#12)")))


def load_request(paths: Sequence[str] = (), content: Optional[str] = None, pool: Sequence[str] = (),
                 roots: Sequence[str] = (), system_roots: bool = True, private_key_path: Optional[str] = None,
                 passphrases: Sequence[Optional[bytes]] = (), names: Sequence[str] = (),
                 valid_at: Optional[datetime.datetime] = None, expiry: ExpiryPolicy = DEFAULT_EXPIRY,
                 rules: pathrules.Rules = pathrules.DEFAULT_RULES) -> Request:
    """Read every input the modules accept into a Request; raises InputError for unreadable files."""
    certificates, keys = load_certificates(paths, content, private_key_path, passphrases)
    judgement = load_judgement(pool, roots, system_roots, names, valid_at, expiry, rules)
    return judgement.request(certificates, keys)


def analyze(request: Request) -> Analysis:
    """Build the chain for the leaf among request.certificates and check everything about it."""
    require_cryptography()
    valid_at = certlib.utc(request.valid_at or datetime.datetime.now(datetime.timezone.utc))
    index, given_findings = _index(request)
    if not index.given:
        problem = finding("no_certificate", "no certificate was found in the input: give the server certificate "
                          "(and its intermediates) as PEM, DER, PKCS#7 or PKCS#12")
        return Analysis((), (), None, (*_load_findings(request, index, given_findings), problem), (), False, False,
                        False, None, (), 0, valid_at)
    leaf = _choose_leaf(index, request)
    search = chainlib.search_paths(index, leaf, max_depth=request.rules.max_chain_depth)
    judge = pathrules.PathJudge(request.rules, valid_at)
    path, alternatives = chainlib.best_path(search, judge.problems)
    key_matches = _key_matches(request.keys, leaf)
    names = _match_names(request, leaf)
    # Alternatives are the other valid paths: to an anchor, without validity, constraint or other rule problems.
    valid = tuple(p for p in alternatives if p.kind == chainlib.TRUSTED and not judge.problems(p))
    facts = Facts(index, leaf, path, valid if path.kind == chainlib.TRUSTED else (), search, request.keys,
                  key_matches, names, valid_at, request.expiry, judge)
    checked = run_checks(facts)
    # Pool and anchor certificates are read when a search needs them: their damage is known only now.
    findings = _load_findings(request, index, given_findings) + checked
    codes = {f.code for f in findings}
    return Analysis(
        certificates=tuple(_entry(node, position) for position, node in enumerate(index.given)),
        chain=tuple(_entry(node) for node in path.served), root=_entry(path.root) if path.root else None,
        findings=findings, names=names,
        complete=path.kind != chainlib.INCOMPLETE and "missing_intermediate" not in codes,
        ordered="wrong_order" not in codes, trusted=path.kind == chainlib.TRUSTED and not judge.findings(path),
        key_matches=key_matches,
        alternatives=tuple(tuple(_entry(n) for n in p.served) for p in facts.alternatives),
        signature_checks=search.signature_checks, valid_at=valid_at)


def _index(request: Request) -> tuple[chainlib.CertificateIndex, tuple[Finding, ...]]:
    """The given certificates indexed over the request's (shared) pool and anchors, and their parse errors."""
    base = request.indexed or pool_index(request.pool, request.roots, request.system_roots)
    index = chainlib.CertificateIndex(base)
    findings: list[Finding] = list(request.certificates.findings)
    for loaded in request.certificates.certificates:
        try:
            index.add(loaded, chainlib.GIVEN)
        except (DerError, ValueError) as exc:
            findings.append(_damaged(loaded.location, exc, ERROR))
    return index, tuple(findings)


def _load_findings(request: Request, index: chainlib.CertificateIndex, given_findings: tuple[Finding, ...]
                   ) -> tuple[Finding, ...]:
    """The given certificates' parse errors, then the pool's and anchors' damage found so far (warnings)."""
    base_damage = [_damaged(location, exc, WARNING) for _order, location, exc in index.base_damaged]
    # Damage outside the bundle only helps less: a warning, as for certificates that fail to index above.
    load_damage = [dataclasses.replace(f, severity=WARNING) for f in request.pool.findings + request.roots.findings
                   if f.code == "parse_error"]
    return (*given_findings, *base_damage, *load_damage)


def _damaged(location: str, exc: Exception, severity: str) -> Finding:
    reason = exc if isinstance(exc, certlib.UnreadableCertificate) else f"the certificate is damaged ({exc})"
    return finding("parse_error", f"{location} cannot be read: {reason}",
                   severity=severity)


def _choose_leaf(index: chainlib.CertificateIndex, request: Request) -> chainlib.Node:
    """The server certificate: not a CA and issuing no other given certificate; ties go to the one the key
    matches, then the one valid for the names, then the one whose issuers the bundle holds most of (an old
    certificate left in the pile rarely brings its chain), then the first given."""
    distinct = list(dict.fromkeys(index.given))
    issuers = {node.raw.issuer for node in distinct if not node.raw.self_issued}
    candidates = [n for n in distinct if not n.info.is_ca] or [n for n in distinct if n.raw.subject not in issuers] \
        or distinct
    by_subject = {node.raw.subject: node for node in distinct if node.info.is_ca}

    def issuers_given(node: chainlib.Node) -> int:
        seen = {node.raw.subject}
        while node.raw.issuer in by_subject and node.raw.issuer not in seen:
            node = by_subject[node.raw.issuer]
            seen.add(node.raw.subject)
        return len(seen) - 1

    def preference(node: chainlib.Node) -> tuple:
        names = _match_names(request, node)
        return (_key_matches(request.keys, node) is False, sum(not m.matches for m in names), -issuers_given(node),
                node.given[0])

    return min(candidates, key=preference)


def _match_names(request: Request, node: chainlib.Node) -> tuple[nameslib.NameMatch, ...]:
    info = node.info
    return nameslib.match_names(request.names, info.dns_names, info.ip_addresses, info.common_names,
                                cn_fallback=request.rules.cn_fallback)


def _key_matches(keys: Sequence[LoadedKey], leaf: chainlib.Node) -> Optional[bool]:
    if not keys:
        return None
    return any(certlib.key_matches(key.key, leaf.cert) for key in keys)


def _entry(node: chainlib.Node, position: Optional[int] = None) -> ChainEntry:
    index = position if position is not None else (node.given[0] if node.given else None)
    if node.given:
        source = node.locations[node.given.index(position)] if position is not None else node.locations[0]
    else:
        source = node.first_location
    return ChainEntry(node.info, index, source, node.raw.der)


def loaded_certificates(ders: Sequence[bytes], source: str, origins: Sequence[str] = ()) -> Loaded:
    """Certificates already in DER, as a server sent them or as a chain would be written, for analysis: certificate N
    of source; origins (none, or one per certificate) say where each was read first."""
    origins = origins or [""] * len(ders)
    return Loaded(tuple(LoadedCertificate(der, source, n, "certificate", origin)
                        for n, (der, origin) in enumerate(zip(ders, origins), 1)))


def loaded_root(root: ChainEntry, source: str) -> Loaded:
    """An analysis' root, to analyse again as source ('the root of the chain to write'): messages name it so and
    by where it was read ('..., from block 1 of root.pem (roots)')."""
    return Loaded((LoadedCertificate(root.der, source, None, origin=root.source),))
