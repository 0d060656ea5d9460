# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for der.py: the DER index reader, on certificates generated at test time and hand-built DER."""
from __future__ import annotations

import pki
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.mailops.tls.plugins.module_utils.der import (
    DerError,
    PssParameters,
    children,
    decode_oid,
    element_length,
    parse_certificate,
    parse_pss_parameters,
    read_tlv,
    signature_algorithm,
)

SHA1 = "1.3.14.3.2.26"
SHA256, SHA384, SHA512 = "2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3"
MGF1 = "1.2.840.113549.1.1.8"


# A small, independent DER encoder, so that hand-built inputs do not depend on the code under test.
def tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def encode_oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    out = b""
    for value in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, out)


def algorithm(oid: str, params: bytes = b"") -> bytes:
    return tlv(0x30, encode_oid(oid) + params)


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def pss_params(hash_oid=None, mgf_hash_oid=None, salt=None, trailer=None) -> bytes:
    body = b""
    if hash_oid:
        body += tlv(0xA0, algorithm(hash_oid, b"\x05\x00"))
    if mgf_hash_oid:
        body += tlv(0xA1, algorithm(MGF1, algorithm(mgf_hash_oid, b"\x05\x00")))
    if salt is not None:
        body += tlv(0xA2, integer(salt))
    if trailer is not None:
        body += tlv(0xA3, integer(trailer))
    return tlv(0x30, body)


@pytest.fixture(scope="module")
def ca():
    return pki.root("DER Test Root", key_type="ecdsa")


@pytest.fixture(scope="module")
def leaf(ca):
    return ca.leaf("mail.example.test")


@pytest.fixture(scope="module")
def rsa_root():
    return pki.root("DER RSA Root", key=pki.new_key("rsa"))


def v1_certificate(issued: pki.Issued, signer) -> bytes:
    """Re-sign issued's tbsCertificate without version and extensions: a real X.509 v1 certificate."""
    tbs = issued.cert.tbs_certificate_bytes
    _tag, start, end = read_tlv(tbs, 0)
    fields = [tbs[element:content_end] for _tag, _content_start, content_end, element in children(tbs, start, end)]
    assert fields[0][0] == 0xA0 and fields[-1][0] == 0xA3
    tbs_v1 = tlv(0x30, b"".join(fields[1:7]))
    signature = signer.sign(tbs_v1, ec.ECDSA(hashes.SHA256()))
    return tlv(0x30, tbs_v1 + fields[2] + tlv(0x03, b"\x00" + signature))


# ---------------------------------------------------------------------------------------------- read_tlv

@pytest.mark.parametrize(("data", "offset", "expected"), [
    (b"\x02\x01\x05", 0, (0x02, 2, 3)),
    (b"\x04\x00", 0, (0x04, 2, 2)),
    (b"\xff\x30\x03\x02\x01\x01", 1, (0x30, 3, 6)),
    (b"\x04\x81\x80" + b"x" * 0x80, 0, (0x04, 3, 0x83)),
    (b"\x04\x82\x01\x00" + b"x" * 0x100, 0, (0x04, 4, 0x104)),
    (b"\x04\x83\x01\x00\x00" + b"x" * 0x10000, 0, (0x04, 5, 0x10005)),
], ids=["short", "empty-content", "at-offset", "long-1", "long-2", "long-3"])
def test_read_tlv(data, offset, expected):
    assert read_tlv(data, offset) == expected


@pytest.mark.parametrize(("data", "offset", "message"), [
    (b"", 0, "ends inside an element header"),
    (b"\x30", 0, "ends inside an element header"),
    (b"\x02\x01\x05", 3, "ends inside an element header"),
    (b"\x02\x01\x05", 7, "ends inside an element header"),
    (b"\x30\x05\x02\x01", 0, "claims 5 bytes"),
    (b"\x30\x82\x01", 0, "data ends"),
    (b"\x30\x82", 0, "data ends"),
    (b"\x30\x81", 0, "data ends"),
    (b"\x30\x80\x02\x01\x01\x00\x00", 0, "unsupported length"),
    (b"\x30\x85\x01\x00\x00\x00\x00", 0, "unsupported length"),
], ids=["empty", "tag-only", "offset-at-end", "offset-past-end", "short-content", "cut-in-length",
        "long-form-no-length", "long-form-1-no-length", "indefinite", "five-length-octets"])
def test_read_tlv_truncated_or_invalid_raises_der_error(data, offset, message):
    with pytest.raises(DerError, match=message) as caught:
        read_tlv(data, offset)
    assert isinstance(caught.value, ValueError)


def test_children_and_element_length():
    inner = integer(1) + tlv(0x04, b"ab") + tlv(0x30, b"")
    data = tlv(0x30, inner) + b"trailing"
    _tag, start, end = read_tlv(data, 0)
    assert [(tag, data[s:e]) for tag, s, e, _offset in children(data, start, end)] == [
        (0x02, b"\x01"), (0x04, b"ab"), (0x30, b"")]
    assert element_length(data) == len(data) - len(b"trailing")


def test_children_may_not_run_past_their_parent():
    # The INTEGER claims 3 bytes but its parent SEQUENCE holds only 2 of them: a damaged structure.
    data = b"\x30\x03\x02\x03\x01" + b"\x02\x01\x01"
    _tag, start, end = read_tlv(data, 0)
    with pytest.raises(DerError):
        list(children(data, start, end))


# ---------------------------------------------------------------------------------------------- decode_oid

@pytest.mark.parametrize("dotted", [
    "1.2.840.113549.1.1.11", "1.2.840.10045.4.3.2", "1.3.101.112", "2.5.29.14", "2.5.29.35",
    "0.9.2342.19200300.100.1.25", "1.3.6.1.4.1.311.60.2.1.3", "2.16.840.1.101.3.4.2.1",
    "2.999.3", "2.25.329800735698586629295641978511506172918",
])
def test_decode_oid(dotted):
    assert decode_oid(encode_oid(dotted)[2:]) == dotted


@pytest.mark.parametrize("content", [b"", b"\x2a\x86", b"\x88"], ids=["empty", "cut-inside-arc", "cut-first-arc"])
def test_decode_oid_damaged_raises(content):
    with pytest.raises(DerError):
        decode_oid(content)


# ---------------------------------------------------------------------------------------------- parse_certificate

@pytest.mark.parametrize("key_type", ["ecdsa", "ed25519", "ed448"])
def test_parse_certificate_matches_cryptography(ca, key_type):
    issued = ca.leaf("mail.example.test", key_type=key_type)
    raw = parse_certificate(issued.der)
    cert = issued.cert
    assert raw.der == issued.der
    assert raw.subject == cert.subject.public_bytes()
    assert raw.issuer == cert.issuer.public_bytes()
    assert raw.spki == cert.public_key().public_bytes(serialization.Encoding.DER,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    assert raw.subject_key_id == cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert raw.authority_key_id == cert.extensions.get_extension_for_class(
        x509.AuthorityKeyIdentifier).value.key_identifier
    assert raw.authority_key_id == ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert not raw.self_issued


def test_parse_certificate_self_issued_root(ca):
    raw = parse_certificate(ca.der)
    assert raw.self_issued
    assert raw.subject_key_id == raw.authority_key_id


def test_parse_certificate_without_key_identifiers(ca):
    issued = ca.leaf("mail.example.test", key_ids=False)
    raw = parse_certificate(issued.der)
    assert (raw.subject_key_id, raw.authority_key_id) == (None, None)
    assert raw.subject == issued.cert.subject.public_bytes()


def test_parse_certificate_v1_without_version_or_extensions(ca, leaf):
    der = v1_certificate(leaf, ca.key)
    cert = x509.load_der_x509_certificate(der)
    assert cert.version == x509.Version.v1
    raw = parse_certificate(der)
    assert raw.subject == leaf.cert.subject.public_bytes()
    assert raw.issuer == ca.cert.subject.public_bytes()
    assert (raw.subject_key_id, raw.authority_key_id) == (None, None)


def test_parse_certificate_ignores_trailing_bytes(leaf):
    raw = parse_certificate(leaf.der + b"\x00\x01 trailing data")
    assert raw.der == leaf.der


def _empty_first_extension(der: bytes) -> bytes:
    """Set the length of the basicConstraints extension SEQUENCE to 0, leaving the outer lengths intact."""
    at = der.index(bytes.fromhex("0603551d13")) - 1
    return der[:at] + b"\x00" + der[at + 1:]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda der: b"", "ends inside"),
    (lambda der: der[:1], "ends inside"),
    (lambda der: der[:2], "data ends"),
    (lambda der: der[:40], "claims"),
    (lambda der: der[:-1], "claims"),
    (lambda der: integer(12345), "does not start with a SEQUENCE"),
    (lambda der: tlv(0x30, integer(1) + integer(2)), "no tbsCertificate"),
    (lambda der: tlv(0x30, tlv(0x30, integer(1) + integer(2))), "too few fields"),
], ids=["empty", "one-byte", "header-only", "cut-40", "cut-last-byte", "integer", "no-tbs", "short-tbs"])
def test_parse_certificate_damaged_raises_der_error(leaf, damage, message):
    with pytest.raises(DerError, match=message):
        parse_certificate(damage(leaf.der))


def test_damaged_extensions_read_as_no_key_identifiers(leaf):
    """Key identifiers are read lazily; damage there reads as none (the full parse reports it)."""
    raw = parse_certificate(_empty_first_extension(leaf.der))
    assert raw.subject_key_id is None and raw.authority_key_id is None
    assert parse_certificate(leaf.der).subject_key_id is not None


def test_parse_certificate_every_single_byte_damage_is_a_der_error_or_a_result(leaf):
    """Whatever byte is damaged, the reader raises DerError or returns; never IndexError or another crash."""
    der = leaf.der
    outcomes = {"ok": 0, "DerError": 0}
    for position in range(len(der)):
        for value in sorted({0x00, 0xFF, der[position] ^ 0x80}):
            try:
                raw = parse_certificate(der[:position] + bytes([value]) + der[position + 1:])
                assert raw.subject_key_id is None or isinstance(raw.subject_key_id, bytes)
            except DerError:
                outcomes["DerError"] += 1
            else:
                outcomes["ok"] += 1
    assert outcomes["ok"] and outcomes["DerError"]


# ---------------------------------------------------------------------------------------------- signature_algorithm

@pytest.mark.parametrize(("key_type", "hash_algorithm", "oid"), [
    ("ecdsa", hashes.SHA256(), "1.2.840.10045.4.3.2"),
    ("ecdsa384", hashes.SHA384(), "1.2.840.10045.4.3.3"),
    ("ecdsa", hashes.SHA512(), "1.2.840.10045.4.3.4"),
    ("ed25519", None, "1.3.101.112"),
    ("ed448", None, "1.3.101.113"),
])
def test_signature_algorithm(key_type, hash_algorithm, oid):
    issued = pki.root(key_type=key_type, hash_algorithm=hash_algorithm)
    assert signature_algorithm(issued.der) == (oid, b"")


@pytest.mark.parametrize(("algorithm_", "oid"), [
    (hashes.SHA256(), "1.2.840.113549.1.1.11"),
    (hashes.SHA384(), "1.2.840.113549.1.1.12"),
    (hashes.SHA512(), "1.2.840.113549.1.1.13"),
])
def test_signature_algorithm_rsa_has_null_parameters(rsa_root, algorithm_, oid):
    child = rsa_root.leaf("mail.example.test", hash_algorithm=algorithm_)
    assert signature_algorithm(child.der) == (oid, b"\x05\x00")


@pytest.mark.parametrize("data", [
    b"", integer(1), tlv(0x30, integer(1)), tlv(0x30, tlv(0x30, b"") + integer(2) + tlv(0x03, b"\x00")),
    tlv(0x30, tlv(0x30, b"") + tlv(0x30, b"") + tlv(0x03, b"\x00")),
], ids=["empty", "integer", "one-part", "algorithm-not-sequence", "algorithm-without-oid"])
def test_signature_algorithm_damaged_raises_der_error(data):
    with pytest.raises(DerError):
        signature_algorithm(data)


# ---------------------------------------------------------------------------------------------- parse_pss_parameters

@pytest.mark.parametrize(("params", "expected"), [
    (b"", PssParameters(SHA1, SHA1, 20)),
    (tlv(0x30, b""), PssParameters(SHA1, SHA1, 20)),
    (pss_params(SHA256, SHA256, 32), PssParameters(SHA256, SHA256, 32)),
    (pss_params(SHA384, SHA384, 48), PssParameters(SHA384, SHA384, 48)),
    (pss_params(SHA512, SHA512, 64, trailer=1), PssParameters(SHA512, SHA512, 64)),
    (pss_params(SHA256, SHA1, 0), PssParameters(SHA256, SHA1, 0)),
    (pss_params(SHA256, None, None), PssParameters(SHA256, SHA1, 20)),
    (pss_params(None, SHA384, None), PssParameters(SHA1, SHA384, 20)),
    (pss_params(None, None, 222), PssParameters(SHA1, SHA1, 222)),
    (pss_params(SHA256, SHA256, 300), PssParameters(SHA256, SHA256, 300)),
], ids=["absent", "empty-sequence", "sha256-32", "sha384-48", "sha512-64-trailer", "sha256-mgf-sha1-salt0",
        "hash-only", "mgf-only", "salt-only", "two-byte-salt"])
def test_parse_pss_parameters(params, expected):
    assert parse_pss_parameters(params) == expected


def test_pss_parameters_defaults_are_rfc4055():
    assert PssParameters() == PssParameters(SHA1, SHA1, 20)


@pytest.mark.parametrize("cut", [1, 2, 5, 12, -1])
def test_parse_pss_parameters_truncated_raises_der_error(cut):
    params = pss_params(SHA256, SHA256, 32)
    with pytest.raises(DerError):
        parse_pss_parameters(params[:cut])
