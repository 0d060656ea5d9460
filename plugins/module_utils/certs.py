# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Certificates as facts: fingerprints, descriptions, signature checks and key matching.

Works with cryptography 36 and newer: no API newer than that is used without a fallback.
"""
from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils import der as derlib
from ansible_collections.mailops.tls.plugins.module_utils.deps import CRYPTOGRAPHY_IMPORT_ERROR

if CRYPTOGRAPHY_IMPORT_ERROR is None:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HASHES = {
        "1.2.840.113549.2.5": hashes.MD5, "1.3.14.3.2.26": hashes.SHA1, "2.16.840.1.101.3.4.2.4": hashes.SHA224,
        "2.16.840.1.101.3.4.2.1": hashes.SHA256, "2.16.840.1.101.3.4.2.2": hashes.SHA384,
        "2.16.840.1.101.3.4.2.3": hashes.SHA512,
    }

PSS = "1.2.840.113549.1.1.10"
# signature algorithm OID -> (name, hash OID or None)
SIGNATURE_ALGORITHMS = {
    "1.2.840.113549.1.1.4": ("md5WithRSAEncryption", "1.2.840.113549.2.5"),
    "1.2.840.113549.1.1.5": ("sha1WithRSAEncryption", "1.3.14.3.2.26"),
    "1.2.840.113549.1.1.14": ("sha224WithRSAEncryption", "2.16.840.1.101.3.4.2.4"),
    "1.2.840.113549.1.1.11": ("sha256WithRSAEncryption", "2.16.840.1.101.3.4.2.1"),
    "1.2.840.113549.1.1.12": ("sha384WithRSAEncryption", "2.16.840.1.101.3.4.2.2"),
    "1.2.840.113549.1.1.13": ("sha512WithRSAEncryption", "2.16.840.1.101.3.4.2.3"),
    PSS: ("rsassaPss", None),
    "1.2.840.10045.4.1": ("ecdsa-with-SHA1", "1.3.14.3.2.26"),
    "1.2.840.10045.4.3.1": ("ecdsa-with-SHA224", "2.16.840.1.101.3.4.2.4"),
    "1.2.840.10045.4.3.2": ("ecdsa-with-SHA256", "2.16.840.1.101.3.4.2.1"),
    "1.2.840.10045.4.3.3": ("ecdsa-with-SHA384", "2.16.840.1.101.3.4.2.2"),
    "1.2.840.10045.4.3.4": ("ecdsa-with-SHA512", "2.16.840.1.101.3.4.2.3"),
    "1.2.840.10040.4.3": ("dsa-with-sha1", "1.3.14.3.2.26"),
    "2.16.840.1.101.3.4.3.2": ("dsa-with-sha256", "2.16.840.1.101.3.4.2.1"),
    "1.3.101.112": ("ed25519", None),
    "1.3.101.113": ("ed448", None),
}
WEAK_HASHES = {"1.2.840.113549.2.5": "MD5", "1.3.14.3.2.26": "SHA-1"}


def printable(text: str) -> str:
    """Text from a certificate with control characters escaped, so it cannot forge lines in messages or logs."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def colon_hex(digest: bytes) -> str:
    """Uppercase colon-separated hex, as `openssl x509 -fingerprint` prints it."""
    return digest.hex(":").upper()


@dataclass(frozen=True)
class Fingerprints:
    md5: str
    sha1: str
    sha256: str
    spki_sha256: str

    def as_dict(self) -> dict:
        return {"md5": self.md5, "sha1": self.sha1, "sha256": self.sha256, "spki_sha256": self.spki_sha256}


def fingerprints(der: bytes) -> Fingerprints:
    """MD5, SHA-1 and SHA-256 of the certificate, and SHA-256 of its SubjectPublicKeyInfo."""
    return _fingerprints(der, derlib.parse_certificate(der).spki)


def _fingerprints(der: bytes, spki: bytes) -> Fingerprints:
    return Fingerprints(colon_hex(hashlib.md5(der, usedforsecurity=False).digest()),
                        colon_hex(hashlib.sha1(der, usedforsecurity=False).digest()),
                        colon_hex(hashlib.sha256(der).digest()), colon_hex(hashlib.sha256(spki).digest()))


def sha256_hex(der: bytes) -> str:
    return colon_hex(hashlib.sha256(der).digest())


def utc(value: datetime.datetime) -> datetime.datetime:
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def not_before(cert) -> datetime.datetime:
    return utc(getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before)


def not_after(cert) -> datetime.datetime:
    return utc(getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after)


@dataclass(frozen=True)
class CertInfo:
    """What the library knows about one certificate, in the shape every result uses."""

    subject: str
    issuer: str
    common_names: tuple[str, ...]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    serial: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    key_type: str
    key_size: int
    key_curve: Optional[str]
    signature_algorithm: str
    signature_hash: Optional[str]
    is_ca: bool
    has_basic_constraints: bool
    path_length: Optional[int]
    can_sign_certificates: bool
    server_auth: Optional[bool]
    subject_key_id: Optional[str]
    authority_key_id: Optional[str]
    aia_ca_issuers: tuple[str, ...]
    self_signed: bool
    fingerprints: Fingerprints

    @property
    def sha256(self) -> str:
        return self.fingerprints.sha256

    def as_dict(self, now: datetime.datetime) -> dict:
        return {
            "subject": self.subject, "issuer": self.issuer, "common_names": list(self.common_names),
            "dns_names": list(self.dns_names), "ip_addresses": list(self.ip_addresses), "serial": self.serial,
            "not_before": _iso(self.not_before), "not_after": _iso(self.not_after),
            "days_left": (self.not_after - now).days, "key_type": self.key_type, "key_size": self.key_size,
            "key_curve": self.key_curve, "signature_algorithm": self.signature_algorithm, "is_ca": self.is_ca,
            "path_length": self.path_length, "subject_key_id": self.subject_key_id,
            "authority_key_id": self.authority_key_id, "aia_ca_issuers": list(self.aia_ca_issuers),
            "self_signed": self.self_signed, "fingerprints": self.fingerprints.as_dict(),
        }


def _iso(value: datetime.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


class UnreadableCertificate(ValueError):
    """A part of a certificate that cryptography parses only when asked (its names, extensions or public key) is
    damaged, or its key is of an algorithm cryptography cannot use. The message is the whole reason."""


def load_der(der: bytes):
    """Parse a DER certificate with cryptography; raises ValueError when damaged. Names, extensions and the public
    key are parsed later, when read: describe() and read_public_key() raise UnreadableCertificate for them."""
    try:
        return x509.load_der_x509_certificate(der)
    except x509.InvalidVersion as exc:
        raise ValueError(f"its version field says {exc.parsed_version}, where X.509 has 0 to 2") from None


def read_public_key(cert):
    """cert's public key; UnreadableCertificate when it is damaged or of an algorithm cryptography cannot use."""
    try:
        return cert.public_key()
    except UnsupportedAlgorithm as exc:
        raise UnreadableCertificate(f"the certificate's public key is of an algorithm cryptography cannot use ({exc}); "
                                    "mail clients need an RSA, ECDSA or EdDSA key: get a certificate for one") from None
    except ValueError as exc:
        raise UnreadableCertificate(f"the certificate's public key is damaged ({exc}); get a fresh copy from the "
                                    "CA") from None


def read_name(cert, which: str):
    """cert's subject or issuer (which) as a cryptography Name; UnreadableCertificate when it cannot be parsed."""
    return _read_part(f"{which} name", lambda: getattr(cert, which))


def _read_part(part: str, read):
    try:
        return read()
    # cryptography 36 raises KeyError for a name value of an unknown string type, and every version TypeError for a
    # name constraint whose iPAddress is an address where a network belongs
    except (ValueError, KeyError, TypeError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise UnreadableCertificate(f"the certificate's {part} cannot be parsed ({exc}); get a fresh copy from the CA, "
                                    "or a corrected certificate if the copy is what the CA sent") from None


def describe(cert, raw: derlib.RawCertificate, public_key, self_signed: bool) -> CertInfo:
    """Summarise a parsed certificate, given its indexed DER (raw) and its public key, which callers already have;
    UnreadableCertificate when its names or extensions cannot be parsed."""
    subject, issuer = read_name(cert, "subject"), read_name(cert, "issuer")
    extensions = _read_part("extensions", lambda: {type(extension.value): extension.value
                                                   for extension in cert.extensions})
    constraints = extensions.get(x509.BasicConstraints)
    usage = extensions.get(x509.KeyUsage)
    eku = extensions.get(x509.ExtendedKeyUsage)
    san = extensions.get(x509.SubjectAlternativeName)
    aia = extensions.get(x509.AuthorityInformationAccess)
    key_type, key_size, curve = key_description(public_key)
    sig_oid, sig_hash = signature_hash(cert, raw.der)
    return CertInfo(
        subject=printable(subject.rfc4514_string()), issuer=printable(issuer.rfc4514_string()),
        common_names=tuple(str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)),
        dns_names=tuple(san.get_values_for_type(x509.DNSName)) if san else (),
        ip_addresses=tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)) if san else (),
        serial=_serial_hex(cert.serial_number),
        not_before=not_before(cert), not_after=not_after(cert),
        key_type=key_type, key_size=key_size, key_curve=curve,
        signature_algorithm=SIGNATURE_ALGORITHMS.get(sig_oid, (sig_oid,))[0], signature_hash=sig_hash,
        is_ca=bool(constraints and constraints.ca), has_basic_constraints=constraints is not None,
        path_length=constraints.path_length if constraints else None,
        can_sign_certificates=usage is None or usage.key_cert_sign,
        server_auth=None if eku is None else (ExtendedKeyUsageOID.SERVER_AUTH in eku
                                              or x509.ObjectIdentifier("2.5.29.37.0") in eku),
        subject_key_id=colon_hex(raw.subject_key_id) if raw.subject_key_id else None,
        authority_key_id=colon_hex(raw.authority_key_id) if raw.authority_key_id else None,
        aia_ca_issuers=tuple(d.access_location.value for d in aia or ()
                             if d.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS
                             and isinstance(d.access_location, x509.UniformResourceIdentifier)),
        self_signed=self_signed, fingerprints=_fingerprints(raw.der, raw.spki))


def _serial_hex(serial: int) -> str:
    """The serial's DER INTEGER content bytes; old CAs issued negative serials, which cryptography still parses."""
    length = ((serial if serial >= 0 else ~serial).bit_length() + 8) // 8
    return colon_hex(serial.to_bytes(length, "big", signed=True))


def key_description(public_key) -> tuple[str, int, Optional[str]]:
    """(type, size in bits, curve name) of a public key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa", public_key.key_size, None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ecdsa", public_key.curve.key_size, public_key.curve.name
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519", 256, None
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "ed448", 456, None
    if isinstance(public_key, dsa.DSAPublicKey):
        return "dsa", public_key.key_size, None
    return type(public_key).__name__, 0, None


def signature_hash(cert, der: bytes) -> tuple[str, Optional[str]]:
    """(signature algorithm OID, hash OID or None) of a certificate; PSS parameters are read from the DER
    because cryptography 36 does not expose them."""
    oid = cert.signature_algorithm_oid.dotted_string
    if oid == PSS:
        return oid, derlib.parse_pss_parameters(derlib.signature_algorithm(der)[1]).hash_oid
    return oid, SIGNATURE_ALGORITHMS.get(oid, (None, None))[1]


def signature_verifies(child, child_der: bytes, issuer_public_key) -> bool:
    """True when issuer_public_key made child's signature (RSA PKCS#1 v1.5 and PSS, ECDSA, DSA, EdDSA)."""
    oid = child.signature_algorithm_oid.dotted_string
    data, signature = child.tbs_certificate_bytes, child.signature
    try:
        if isinstance(issuer_public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            issuer_public_key.verify(signature, data)
        elif oid == PSS:
            pss = derlib.parse_pss_parameters(derlib.signature_algorithm(child_der)[1])
            issuer_public_key.verify(signature, data, padding.PSS(mgf=padding.MGF1(_hash(pss.mgf_hash_oid)),
                                                                  salt_length=pss.salt_length),
                                     _hash(pss.hash_oid))
        else:
            hash_oid = SIGNATURE_ALGORITHMS.get(oid, (None, None))[1]
            if hash_oid is None:
                return False
            if isinstance(issuer_public_key, rsa.RSAPublicKey):
                issuer_public_key.verify(signature, data, padding.PKCS1v15(), _hash(hash_oid))
            elif isinstance(issuer_public_key, ec.EllipticCurvePublicKey):
                issuer_public_key.verify(signature, data, ec.ECDSA(_hash(hash_oid)))
            elif isinstance(issuer_public_key, dsa.DSAPublicKey):
                issuer_public_key.verify(signature, data, _hash(hash_oid))
            else:
                return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, KeyError):
        return False
    return True


def _hash(oid: str):
    return HASHES[oid]()


def spki_of_public_key(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization  # not at the top: see load.py

    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(private_key, cert) -> bool:
    """True when the private key's public half is the certificate's public key."""
    return spki_of_public_key(private_key.public_key()) == spki_of_public_key(cert.public_key())
