# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""TLSA records (RFC 6698, 7671): computed from certificates, parsed from text, matched against certificates."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ansible_collections.mailops.tls.plugins.module_utils import der as derlib
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError

# Certificate usages (RFC 7218 mnemonics)
PKIX_TA, PKIX_EE, DANE_TA, DANE_EE = 0, 1, 2, 3
USAGES = {PKIX_TA: "PKIX-TA", PKIX_EE: "PKIX-EE", DANE_TA: "DANE-TA", DANE_EE: "DANE-EE"}
# Selectors: the whole certificate or its SubjectPublicKeyInfo
CERT, SPKI = 0, 1
SELECTORS = {CERT: "Cert", SPKI: "SPKI"}
# Matching types: the selected data itself, its SHA-256 or its SHA-512
FULL, SHA2_256, SHA2_512 = 0, 1, 2
MATCHING_TYPES = {FULL: "Full", SHA2_256: "SHA2-256", SHA2_512: "SHA2-512"}
DIGEST_LENGTHS = {SHA2_256: 32, SHA2_512: 64}

# The hashed selector and matching type pairs, in the order results list them: the recommended SPKI SHA2-256 first.
# (Full records would only repeat the certificate or its key.)
HASHED_FORMS = ((SPKI, SHA2_256), (CERT, SHA2_256), (SPKI, SHA2_512), (CERT, SHA2_512))


@dataclass(frozen=True, order=True)
class TlsaRecord:
    """One TLSA record's data: usage, selector, matching type and association data as lowercase hex."""

    usage: int
    selector: int
    matching_type: int
    data: str

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.matching_type} {self.data}"

    @property
    def mnemonic(self) -> str:
        """As RFC 7218 names it, for example 'DANE-EE SPKI SHA2-256'."""
        return " ".join((USAGES.get(self.usage, f"usage {self.usage}"),
                         SELECTORS.get(self.selector, f"selector {self.selector}"),
                         MATCHING_TYPES.get(self.matching_type, f"matching type {self.matching_type}")))

    @property
    def known(self) -> bool:
        """Every field has a meaning this library (and RFC 6698) knows, and a digest has its hash's length."""
        if self.usage not in USAGES or self.selector not in SELECTORS or self.matching_type not in MATCHING_TYPES:
            return False
        expected = DIGEST_LENGTHS.get(self.matching_type)
        return expected is None or len(self.data) == 2 * expected

    def matches(self, certificate_der: bytes) -> bool:
        """True when this record's data is the selected part of the certificate, hashed as it says."""
        return self.known and association_data(certificate_der, self.selector, self.matching_type) == self.data

    def as_dict(self) -> dict:
        return {"usage": self.usage, "selector": self.selector, "matching_type": self.matching_type,
                "data": self.data, "record": str(self), "mnemonic": self.mnemonic}


def association_data(certificate_der: bytes, selector: int, matching_type: int) -> str:
    """The certificate association data of a TLSA record for this certificate, as lowercase hex."""
    if selector not in SELECTORS:
        raise InputError(f"TLSA selector {selector} is not one of 0 (Cert) and 1 (SPKI)")
    if matching_type not in MATCHING_TYPES:
        raise InputError(f"TLSA matching type {matching_type} is not one of 0 (Full), 1 (SHA2-256) and 2 (SHA2-512)")
    selected = certificate_der if selector == CERT else derlib.parse_certificate(certificate_der).spki
    if matching_type == SHA2_256:
        return hashlib.sha256(selected).hexdigest()
    if matching_type == SHA2_512:
        return hashlib.sha512(selected).hexdigest()
    return selected.hex()


def record_for(certificate_der: bytes, usage: int = DANE_EE, selector: int = SPKI,
               matching_type: int = SHA2_256) -> TlsaRecord:
    """The TLSA record of these parameters that matches the certificate (3 1 1 by default)."""
    if usage not in USAGES:
        raise InputError(f"TLSA usage {usage} is not one of 0 (PKIX-TA), 1 (PKIX-EE), 2 (DANE-TA) and 3 (DANE-EE)")
    return TlsaRecord(usage, selector, matching_type, association_data(certificate_der, selector, matching_type))


def certificate_records(certificate_der: bytes, usage: int) -> list[TlsaRecord]:
    """The hashed records of this usage that match the certificate, in HASHED_FORMS order."""
    return [record_for(certificate_der, usage, selector, matching) for selector, matching in HASHED_FORMS]


# '3 1 1 <hex>', optionally after 'owner [TTL] [IN] TLSA' as zone files and dig print records
_RECORD = re.compile(r"^\s*(?:\S+\s+(?:\d+\s+)?(?:IN\s+)?TLSA\s+)?"
                     r"(\d{1,3})\s+(\d{1,3})\s+(\d{1,3})\s+([0-9A-Fa-f\s]+)$")


def parse_record(text: str, where: str = "a TLSA record") -> TlsaRecord:
    """A record from presentation format, '3 1 1 <hex>', optionally with the owner, TTL, class and type before it."""
    match = _RECORD.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise InputError(f"{where} {text!r} is not a TLSA record: write it as 'usage selector matching-type hex', "
                         "for example '3 1 1 0123...ef'")
    data = re.sub(r"\s+", "", match.group(4)).lower()
    if len(data) % 2:
        raise InputError(f"{where} {text!r} has an odd number of hex digits in its association data")
    fields = [int(match.group(n)) for n in (1, 2, 3)]
    if any(value > 255 for value in fields):
        raise InputError(f"{where} {text!r}: usage, selector and matching type are single octets (0 to 255)")
    return TlsaRecord(*fields, data)


def base_name(host: str, port: int = 25, protocol: str = "tcp") -> str:
    """Where the records of a service live: _25._tcp.mx.example.org."""
    return f"_{port}._{protocol}.{host.rstrip('.').lower()}"
