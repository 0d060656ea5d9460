# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Just enough DER to index certificates without parsing them fully.

A pool of thousands of intermediates is mostly never a candidate: reading the raw subject, issuer and
key identifiers from the DER is much cheaper than a full parse, and raw bytes compare exactly.
It also reads RSASSA-PSS parameters, which cryptography < 41 does not expose.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Optional

SEQUENCE = 0x30
OCTET_STRING = 0x04
OID = 0x06
INTEGER = 0x02
BOOLEAN = 0x01
EXPLICIT_0 = 0xA0
EXPLICIT_3 = 0xA3
IMPLICIT_0_PRIMITIVE = 0x80

_SKI_OID = bytes.fromhex("551d0e")
_AKI_OID = bytes.fromhex("551d23")


class DerError(ValueError):
    """The bytes are not the DER structure expected."""


def read_tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """Return (tag, content start, content end) of the element at offset."""
    try:
        tag = data[offset]
        length = data[offset + 1]
    except IndexError:
        raise DerError(f"data ends inside an element header at byte {offset}") from None
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise DerError(f"unsupported length encoding at byte {offset}")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise DerError(f"element at byte {offset} claims {length} bytes but the data ends at byte {len(data)}")
    return tag, start, end


def children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (tag, content start, content end, element start) for each element in data[start:end]."""
    offset = start
    while offset < end:
        tag, content_start, content_end = read_tlv(data, offset)
        if content_end > end:
            raise DerError(f"element at byte {offset} runs past the end of its parent at byte {end}")
        yield tag, content_start, content_end, offset
        offset = content_end


def element_length(data: bytes) -> int:
    """Length of the first complete element in data (a DER certificate may be followed by other bytes)."""
    return read_tlv(data, 0)[2]


def decode_oid(content: bytes) -> str:
    """Dotted string of an OBJECT IDENTIFIER's content octets."""
    if not content:
        raise DerError("empty object identifier")
    values = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            values.append(value)
            value = 0
    if not values or content[-1] & 0x80:
        raise DerError("object identifier ends inside a subidentifier")
    top = min(values[0] // 40, 2)
    return ".".join(str(part) for part in (top, values[0] - 40 * top, *values[1:]))


@dataclass(frozen=True)
class RawCertificate:
    """The parts of a certificate that chain building indexes, as raw DER slices.

    Key identifiers are read on first use: most certificates of a large pool are never a candidate.
    """

    der: bytes
    subject: bytes
    issuer: bytes
    spki: bytes
    extensions: Optional[tuple[int, int]] = None

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer

    @cached_property
    def _key_identifiers(self) -> tuple[Optional[bytes], Optional[bytes]]:
        if self.extensions is None:
            return None, None
        try:
            return _key_identifiers(self.der, *self.extensions)
        except DerError:
            # Damaged extensions read as none here; the full parse of any candidate reports the damage.
            return None, None

    @property
    def subject_key_id(self) -> Optional[bytes]:
        return self._key_identifiers[0]

    @property
    def authority_key_id(self) -> Optional[bytes]:
        return self._key_identifiers[1]


def parse_certificate(der: bytes) -> RawCertificate:
    """Read subject, issuer and SPKI from a DER certificate; raise DerError if malformed."""
    try:
        fast = _parse_certificate_fast(der)
    except IndexError:
        fast = None
    return fast if fast is not None else _parse_certificate_checked(der)


def _header(der: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the element at offset for the common short and 1-2 byte lengths;
    content start -1 for anything else. Raises IndexError when the header runs past the data."""
    length = der[offset + 1]
    if length < 0x80:
        return der[offset], offset + 2, offset + 2 + length
    if length == 0x81:
        return der[offset], offset + 3, offset + 3 + der[offset + 2]
    if length == 0x82:
        return der[offset], offset + 4, offset + 4 + (der[offset + 2] << 8 | der[offset + 3])
    return der[offset], -1, -1


def _parse_certificate_fast(der: bytes) -> Optional[RawCertificate]:
    """parse_certificate for well-formed certificates in a few loops instead of generic TLV calls (a pool of
    thousands is read this way); None for anything unusual or damaged, which the checked parser then explains."""
    size = len(der)
    tag, start, end = _header(der, 0)
    if tag != SEQUENCE or start < 0 or end > size:
        return None
    tag, offset, tbs_end = _header(der, start)
    if tag != SEQUENCE or offset < 0 or tbs_end > size:
        return None
    fields = []
    while offset < tbs_end:
        tag, content_start, content_end = _header(der, offset)
        if content_start < 0 or content_end > tbs_end:
            return None
        fields.append((tag, content_start, content_end, offset))
        offset = content_end
    if fields and fields[0][0] == EXPLICIT_0:
        del fields[0]
    if len(fields) < 6:
        return None
    extensions = next(((field[1], field[2]) for field in fields[6:] if field[0] == EXPLICIT_3), None)
    return RawCertificate(der[:end], _whole(der, fields[4]), _whole(der, fields[2]), _whole(der, fields[5]),
                          extensions)


def _parse_certificate_checked(der: bytes) -> RawCertificate:
    """parse_certificate through the generic TLV reader, whose errors say what is wrong and where."""
    tag, start, end = read_tlv(der, 0)
    if tag != SEQUENCE:
        raise DerError("not a certificate: it does not start with a SEQUENCE")
    tag, tbs_start, tbs_end = read_tlv(der, start)
    if tag != SEQUENCE:
        raise DerError("not a certificate: no tbsCertificate")
    fields = list(children(der, tbs_start, tbs_end))
    if fields and fields[0][0] == EXPLICIT_0:
        fields = fields[1:]
    if len(fields) < 6:
        raise DerError("not a certificate: tbsCertificate has too few fields")
    extensions = next(((field[1], field[2]) for field in fields[6:] if field[0] == EXPLICIT_3), None)
    return RawCertificate(der[:end], _whole(der, fields[4]), _whole(der, fields[2]), _whole(der, fields[5]),
                          extensions)


def _whole(data: bytes, field: tuple[int, int, int, int]) -> bytes:
    return data[field[3]:field[2]]


def _key_identifiers(der: bytes, start: int, end: int) -> tuple[Optional[bytes], Optional[bytes]]:
    """(subject key identifier, authority key identifier) from the [3] extensions field's content."""
    try:
        fast = _key_identifiers_fast(der, start)
    except IndexError:
        fast = None
    return fast if fast is not None else _key_identifiers_checked(der, start, end)


def _elements(der: bytes, start: int, end: int) -> Optional[list[tuple[int, int, int]]]:
    """(tag, content start, content end) of each element in der[start:end], or None for anything unusual."""
    found = []
    while start < end:
        tag, content_start, content_end = _header(der, start)
        if content_start < 0 or content_end > end:
            return None
        found.append((tag, content_start, content_end))
        start = content_end
    return found


def _key_identifiers_fast(der: bytes, start: int) -> Optional[tuple[Optional[bytes], Optional[bytes]]]:
    """_key_identifiers for well-formed extensions in plain loops; None sends anything unusual to the checked
    reader, which explains it."""
    size = len(der)
    ski = aki = None
    _tag, seq_start, seq_end = _header(der, start)
    extensions = _elements(der, seq_start, seq_end) if seq_start >= 0 and seq_end <= size else None
    if extensions is None:
        return None
    for _tag, ext_start, ext_end in extensions:
        parts = _elements(der, ext_start, ext_end)
        if parts is None or len(parts) < 2 or parts[0][0] != OID:
            return None
        oid = der[parts[0][1]:parts[0][2]]
        if oid not in (_SKI_OID, _AKI_OID):
            continue
        _tag, inner_start, inner_end = _header(der, parts[-1][1])
        if inner_start < 0 or inner_end > size:
            return None
        if oid == _SKI_OID:
            ski = der[inner_start:inner_end]
            continue
        identifiers = _elements(der, inner_start, inner_end)
        if identifiers is None:
            return None
        for tag, id_start, id_end in identifiers:
            if tag == IMPLICIT_0_PRIMITIVE:
                aki = der[id_start:id_end]
    return ski, aki


def _key_identifiers_checked(der: bytes, start: int, end: int) -> tuple[Optional[bytes], Optional[bytes]]:
    """_key_identifiers through the generic TLV reader, whose errors say what is wrong and where."""
    ski = aki = None
    seq_start, seq_end = read_tlv(der, start)[1:]
    for _tag, ext_start, ext_end, _offset in children(der, seq_start, seq_end):
        parts = list(children(der, ext_start, ext_end))
        if len(parts) < 2 or parts[0][0] != OID:
            raise DerError(f"the extension at byte {ext_start} has no identifier or no value")
        oid = der[parts[0][1]:parts[0][2]]
        value = parts[-1]
        if oid == _SKI_OID:
            key_start, key_end = read_tlv(der, value[1])[1:]
            ski = der[key_start:key_end]
        elif oid == _AKI_OID:
            aki_start, aki_end = read_tlv(der, value[1])[1:]
            for tag, id_start, id_end, _offset in children(der, aki_start, aki_end):
                if tag == IMPLICIT_0_PRIMITIVE:
                    aki = der[id_start:id_end]
    return ski, aki


def signature_algorithm(der: bytes) -> tuple[str, bytes]:
    """Return (OID, raw parameters) of the certificate's outer signatureAlgorithm."""
    start, end = read_tlv(der, 0)[1:]
    parts = list(children(der, start, end))
    if len(parts) < 3 or parts[1][0] != SEQUENCE:
        raise DerError("not a certificate: no signatureAlgorithm")
    alg_start, alg_end = parts[1][1:3]
    elements = list(children(der, alg_start, alg_end))
    if not elements or elements[0][0] != OID:
        raise DerError("not a certificate: the signatureAlgorithm has no identifier")
    oid = decode_oid(der[elements[0][1]:elements[0][2]])
    params = der[elements[1][3]:elements[1][2]] if len(elements) > 1 else b""
    return oid, params


@dataclass(frozen=True)
class PssParameters:
    """RSASSA-PSS-params (RFC 4055); the defaults are SHA-1, MGF1-SHA-1 and a 20-byte salt."""

    hash_oid: str = "1.3.14.3.2.26"
    mgf_hash_oid: str = "1.3.14.3.2.26"
    salt_length: int = 20


def parse_pss_parameters(params: bytes) -> PssParameters:
    """Decode RSASSA-PSS-params from the raw parameters of an AlgorithmIdentifier."""
    if not params:
        return PssParameters()
    start, end = read_tlv(params, 0)[1:]
    values = {}
    for tag, content_start, content_end, _offset in children(params, start, end):
        values[tag] = (content_start, content_end)
    hash_oid = mgf_hash_oid = PssParameters.hash_oid
    salt = PssParameters.salt_length
    if 0xA0 in values:
        hash_oid = _algorithm_oid(params, values[0xA0][0])
    if 0xA1 in values:
        mgf_start, mgf_end = read_tlv(params, values[0xA1][0])[1:]
        mgf_parts = list(children(params, mgf_start, mgf_end))
        if len(mgf_parts) > 1:
            mgf_hash_oid = _algorithm_oid(params, mgf_parts[1][3])
    if 0xA2 in values:
        int_start, int_end = read_tlv(params, values[0xA2][0])[1:]
        salt = int.from_bytes(params[int_start:int_end], "big")
    return PssParameters(hash_oid, mgf_hash_oid, salt)


def _algorithm_oid(data: bytes, offset: int) -> str:
    start = read_tlv(data, offset)[1]
    oid_start, oid_end = read_tlv(data, start)[1:]
    return decode_oid(data[oid_start:oid_end])
