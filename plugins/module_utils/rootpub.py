# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""A CA root for publication: found in files, at the top of a chain or by fingerprint, described for the pages
users and support staff read, and rendered as the PEM and DER files they download."""
from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils import certs as certlib
from ansible_collections.mailops.tls.plugins.module_utils import der as derlib
from ansible_collections.mailops.tls.plugins.module_utils.analysis import ChainEntry, Judgement, analyze
from ansible_collections.mailops.tls.plugins.module_utils.chainfiles import pem_certificate
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.load import Loaded, LoadedCertificate, load_bytes

# File formats users download: PEM as .pem (Linux, fetchmail) and .crt (Android, macOS), DER as .cer (Windows).
FORMATS = ("pem", "crt", "cer")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class PublishedRoot:
    """The certificate to publish, how to name it, and what the operator should know before publishing it."""

    entry: ChainEntry
    name: str
    slug: str
    publicly_trusted: bool
    trust_store: Optional[str]
    notes: tuple[str, ...]

    @property
    def pem(self) -> str:
        return pem_certificate(self.entry.der).decode("ascii")

    def as_dict(self, now: datetime.datetime) -> dict:
        record = dict(self.entry.info.as_dict(now), index=self.entry.index, source=self.entry.source)
        return {"root": record, "pem": self.pem, "name": self.name, "slug": self.slug,
                "self_signed": self.entry.info.self_signed, "publicly_trusted": self.publicly_trusted,
                "trust_store": self.trust_store, "notes": list(self.notes)}


def display_name(info: certlib.CertInfo) -> str:
    """How people call the CA: its subject CN, else its organization, else the whole subject."""
    if info.common_names:
        return certlib.printable(info.common_names[0])
    organization = re.search(r"(?:^|,)O=((?:[^,\\]|\\.)+)", info.subject)
    return organization.group(1).replace("\\", "") if organization else info.subject


def slugify(name: str, fallback: str = "root-ca") -> str:
    """A file name from the CA's name: ASCII letters and digits joined by '-', lowercase, at most 64 characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = _SLUG_UNSAFE.sub("-", ascii_name).strip("-")[:64].strip("-")
    return slug or fallback


def normalize_fingerprint(value: str) -> str:
    """A SHA-256 fingerprint as colon-separated uppercase hex, from any case, with or without colons or spaces."""
    digits = re.sub(r"[\s:]", "", value).upper()
    if not re.fullmatch(r"[0-9A-F]{64}", digits):
        raise InputError(f"sha256 {value!r} is not a SHA-256 fingerprint: give 64 hex digits, with or without colons, "
                         "as in the fingerprints.sha256 of mail_tls_chain_facts results")
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2))


def describe_der(der: bytes, source: str, index: Optional[int] = None) -> ChainEntry:
    """A ChainEntry for one certificate; InputError when it is damaged."""
    try:
        cert = certlib.load_der(der)
        raw = derlib.parse_certificate(der)
        public_key = certlib.read_public_key(cert)
        self_signed = raw.subject == raw.issuer and certlib.signature_verifies(cert, der, public_key)
        return ChainEntry(certlib.describe(cert, raw, public_key, self_signed), index, source, der)
    except certlib.UnreadableCertificate as exc:
        raise InputError(f"{source} cannot be published: {exc}") from None
    except ValueError as exc:
        raise InputError(f"the certificate in {source} is damaged ({exc}); get a fresh copy from the CA") from None


def _distinct(certificates: Sequence[LoadedCertificate]) -> list[LoadedCertificate]:
    seen, distinct = set(), []
    for loaded in certificates:
        if loaded.der not in seen:
            seen.add(loaded.der)
            distinct.append(loaded)
    return distinct


def select_root(given: Loaded, judgement: Judgement,
                sha256: Optional[str] = None) -> tuple[ChainEntry, tuple[str, ...]]:
    """The certificate to publish and notes about how it was chosen.

    With sha256: the certificate with that fingerprint among the given ones, the roots, the pool and the system
    trust store (for a root record from mail_tls_chain_facts). Otherwise: the only certificate given, or the root
    at the top of the chain the given certificates build (completed from pool, roots and the system store)."""
    if sha256:
        wanted = normalize_fingerprint(sha256)
        places = (given.certificates, judgement.roots.certificates, judgement.pool.certificates,
                  judgement.system_roots.certificates)
        for loaded in (item for place in places for item in place):
            if certlib.sha256_hex(loaded.der) == wanted:
                return describe_der(loaded.der, loaded.location), ()
        raise InputError(f"no certificate with SHA-256 {wanted} was found in path, content, roots, pool or the system "
                         "trust store: give the file that holds the root in path or roots")
    distinct = _distinct(given.certificates)
    if not distinct:
        reasons = "; ".join(f.message for f in given.findings) or "path and content hold no certificate"
        raise InputError(f"no certificate to publish: {reasons}")
    if len(distinct) == 1:
        return describe_der(distinct[0].der, distinct[0].location, 0), ()
    analysis = analyze(judgement.request(given))
    if analysis.root is not None:
        return analysis.root, ()
    top = analysis.chain[-1]
    return top, (f"the chain ends at '{top.info.subject}' ({top.source}): its issuer '{top.info.issuer}' was found "
                 "nowhere, so no root could be found; that certificate is published instead. Give the root's file in "
                 "roots (or path) to publish the root itself",)


def public_trust(entry: ChainEntry, system_store: Loaded) -> bool:
    """Whether the system trust store holds this certificate, or a certificate with its subject and public key."""
    raw = derlib.parse_certificate(entry.der)
    for loaded in system_store.certificates:
        if loaded.der == entry.der:
            return True
        try:
            other = derlib.parse_certificate(loaded.der)
        except ValueError:
            continue
        if other.subject == raw.subject and other.spki == raw.spki:
            return True
    return False


def find_root(given: Loaded, judgement: Judgement, system_store: Loaded, trust_store: Optional[str],
              sha256: Optional[str] = None, now: Optional[datetime.datetime] = None) -> PublishedRoot:
    """Choose the certificate to publish and say what is wrong with publishing it (not a root, publicly trusted,
    expired)."""
    entry, notes = select_root(given, judgement, sha256)
    info = entry.info
    notes = list(notes)
    if not info.self_signed:
        notes.append(f"'{info.subject}' is not self-signed (it was issued by '{info.issuer}'), so it is not a root: "
                     "mail clients need the root at the top of the chain. Give the root's file, or the chain with the "
                     "root in roots, unless you mean to publish this intermediate")
    trusted = public_trust(entry, system_store)
    if trusted:
        notes.append(f"'{info.subject}' is in the system trust store ({trust_store}): it is a publicly trusted root "
                     "that mail clients already trust, so publishing it is needless and teaches users to install "
                     "certificates they do not need. Publish only the root of a private or uncommon CA")
    moment = certlib.utc(now or datetime.datetime.now(datetime.timezone.utc))
    if info.not_after < moment:
        notes.append(f"'{info.subject}' expired on {info.not_after:%Y-%m-%d}: clients reject chains that end in it; "
                     "publish the CA's current root")
    name = display_name(info)
    return PublishedRoot(entry, name, slugify(name), trusted, trust_store, tuple(notes))


def certificate_files(der: bytes, formats: Sequence[str] = FORMATS) -> dict:
    """format -> bytes of the file: PEM for .pem and .crt, DER for .cer."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise InputError(f"unknown format(s) {', '.join(unknown)}: use {', '.join(FORMATS)}")
    pem = pem_certificate(der)
    return {fmt: der if fmt == "cer" else pem for fmt in formats}


def single_certificate(loaded: Loaded, what: str) -> bytes:
    """The DER of the one certificate in loaded; InputError when there is none or more than one."""
    distinct = _distinct(loaded.certificates)
    if len(distinct) != 1:
        reasons = "; ".join(f.message for f in loaded.findings)
        raise InputError(f"{what} must hold exactly one certificate, the one to publish; it holds {len(distinct)}"
                         + (f" ({reasons})" if reasons else ""))
    return distinct[0].der


def describe_file(data: Optional[bytes]) -> str:
    """How a diff names a certificate file's content: subject and SHA-256, never the raw bytes."""
    if data is None:
        return "(no file)"
    loaded = load_bytes(data, "the file", check=False)
    if not loaded.certificates:
        return f"({len(data)} bytes that hold no certificate)"
    der = loaded.certificates[0].der
    try:
        subject = certlib.printable(certlib.read_name(certlib.load_der(der), "subject").rfc4514_string())
    except ValueError:
        return f"(a damaged certificate, SHA-256 {certlib.sha256_hex(der)})"
    return f"{subject}, SHA-256 {certlib.sha256_hex(der)}"
