# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for certs.py: fingerprints against openssl, signature checks, descriptions and key matching."""
from __future__ import annotations

import datetime
import json
import shutil
import subprocess

import pki
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.mailops.tls.plugins.module_utils import certs
from ansible_collections.mailops.tls.plugins.module_utils import der as derlib
from ansible_collections.mailops.tls.plugins.module_utils.certs import (
    colon_hex,
    describe,
    fingerprints,
    key_matches,
    sha256_hex,
    signature_verifies,
)

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
SHA1, SHA256, SHA384, SHA512 = ("1.3.14.3.2.26", "2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2",
                                "2.16.840.1.101.3.4.2.3")
PSS = "1.2.840.113549.1.1.10"
KEY_TYPES = ["rsa", "ecdsa", "ecdsa384", "ed25519", "ed448"]


def openssl(*args: str, data: bytes = b"") -> bytes:
    return subprocess.run([OPENSSL, *args], input=data, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def key_pairs():
    """Two keys of every type (RSA generation is slow: once per module)."""
    return {key_type: (pki.new_key(key_type), pki.new_key(key_type)) for key_type in KEY_TYPES}


def issuer_and_lookalike(key_pairs, key_type: str, name: str = "Signing CA"):
    """A CA, and another CA with the same name and a different key of the same type."""
    real, other = key_pairs[key_type]
    return pki.root(name, key=real), pki.root(name, key=other)


def describe_issued(issued: pki.Issued, self_signed: bool = False) -> certs.CertInfo:
    return describe(issued.cert, derlib.parse_certificate(issued.der), issued.cert.public_key(), self_signed)


# ---------------------------------------------------------------------------------------------- fingerprints

@needs_openssl
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_fingerprints_equal_openssl(key_pairs, tmp_path, key_type):
    issued = pki.root("Fingerprint Root", key=key_pairs[key_type][0])
    path = str(tmp_path / "cert.pem")
    (tmp_path / "cert.pem").write_bytes(issued.pem)
    expected = {}
    for digest in ("md5", "sha1", "sha256"):
        line = openssl("x509", "-noout", "-fingerprint", f"-{digest}", "-in", path).decode().strip()
        expected[digest] = line.split("=", 1)[1]
    public_key = openssl("x509", "-pubkey", "-noout", "-in", path)
    spki_der = openssl("pkey", "-pubin", "-outform", "DER", data=public_key)
    expected["spki_sha256"] = openssl("dgst", "-sha256", data=spki_der).decode().strip().rsplit("= ", 1)[1]
    result = fingerprints(issued.der)
    assert (result.md5, result.sha1, result.sha256) == (expected["md5"], expected["sha1"], expected["sha256"])
    assert result.spki_sha256.replace(":", "").lower() == expected["spki_sha256"]
    assert result.as_dict() == {"md5": result.md5, "sha1": result.sha1, "sha256": result.sha256,
                                "spki_sha256": result.spki_sha256}
    assert sha256_hex(issued.der) == result.sha256


def test_spki_fingerprint_is_shared_by_certificates_of_one_key(key_pairs):
    key = key_pairs["ecdsa"][0]
    first, second = pki.root("One", key=key), pki.root("Two", key=key)
    assert fingerprints(first.der).spki_sha256 == fingerprints(second.der).spki_sha256
    assert fingerprints(first.der).sha256 != fingerprints(second.der).sha256


@pytest.mark.parametrize(("digest", "text"), [
    (b"", ""), (b"\x00", "00"), (b"\x0a\xff", "0A:FF"), (bytes(range(4)), "00:01:02:03"),
])
def test_colon_hex(digest, text):
    assert colon_hex(digest) == text


# ---------------------------------------------------------------------------------------------- signature_verifies

def _signed_by_cryptography(issuer: pki.Issued, key_pairs, hash_algorithm) -> pki.Issued:
    return issuer.leaf("child.example.test", key=key_pairs["ecdsa"][1], hash_algorithm=hash_algorithm)


CRYPTOGRAPHY_SIGNED = [
    # (id, issuer key type, hash, signature algorithm OID)
    ("rsa-pkcs1-sha256", "rsa", hashes.SHA256(), "1.2.840.113549.1.1.11"),
    ("rsa-pkcs1-sha384", "rsa", hashes.SHA384(), "1.2.840.113549.1.1.12"),
    ("rsa-pkcs1-sha512", "rsa", hashes.SHA512(), "1.2.840.113549.1.1.13"),
    ("ecdsa-p256-sha256", "ecdsa", hashes.SHA256(), "1.2.840.10045.4.3.2"),
    ("ecdsa-p384-sha384", "ecdsa384", hashes.SHA384(), "1.2.840.10045.4.3.3"),
    ("ecdsa-p256-sha512", "ecdsa", hashes.SHA512(), "1.2.840.10045.4.3.4"),
    ("ed25519", "ed25519", None, "1.3.101.112"),
    ("ed448", "ed448", None, "1.3.101.113"),
]


@pytest.mark.parametrize(("key_type", "hash_algorithm", "oid"), [c[1:] for c in CRYPTOGRAPHY_SIGNED],
                         ids=[c[0] for c in CRYPTOGRAPHY_SIGNED])
def test_signature_verifies_real_issuer_not_lookalike(key_pairs, key_type, hash_algorithm, oid):
    issuer, lookalike = issuer_and_lookalike(key_pairs, key_type)
    child = _signed_by_cryptography(issuer, key_pairs, hash_algorithm)
    assert derlib.signature_algorithm(child.der)[0] == oid
    assert child.cert.issuer == lookalike.cert.subject
    assert signature_verifies(child.cert, child.der, issuer.cert.public_key()) is True
    assert signature_verifies(child.cert, child.der, lookalike.cert.public_key()) is False
    assert signature_verifies(issuer.cert, issuer.der, issuer.cert.public_key()) is True
    assert signature_verifies(lookalike.cert, lookalike.der, issuer.cert.public_key()) is False


def _signed_by_openssl(issuer: pki.Issued, child_key, tmp_path, digest: str, sigopts=()) -> tuple:
    """Have `openssl x509 -req` sign a certificate, for what cryptography cannot sign (SHA-1, chosen PSS salts)."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(pki.name("child.example.test")).sign(
        child_key, hashes.SHA256())
    (tmp_path / "child.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca.pem").write_bytes(issuer.pem)
    (tmp_path / "ca.key").write_bytes(issuer.key_pem())
    args = ["x509", "-req", "-in", str(tmp_path / "child.csr"), "-CA", str(tmp_path / "ca.pem"),
            "-CAkey", str(tmp_path / "ca.key"), "-set_serial", "4660", "-days", "30", f"-{digest}"]
    for option in sigopts:
        args += ["-sigopt", option]
    cert = x509.load_pem_x509_certificate(openssl(*args))
    return cert, cert.public_bytes(serialization.Encoding.DER)


PKCS1 = {"md5": "1.2.840.113549.1.1.4", "sha1": "1.2.840.113549.1.1.5", "sha224": "1.2.840.113549.1.1.14"}
OPENSSL_SIGNED = [
    # (id, issuer key type, digest, PSS salt length (None: no PSS), MGF1 hash, signature OID, PssParameters, name)
    ("rsa-pkcs1-md5", "rsa", "md5", None, None, PKCS1["md5"], None, "md5WithRSAEncryption"),
    ("rsa-pkcs1-sha1", "rsa", "sha1", None, None, PKCS1["sha1"], None, "sha1WithRSAEncryption"),
    ("rsa-pkcs1-sha224", "rsa", "sha224", None, None, PKCS1["sha224"], None, "sha224WithRSAEncryption"),
    ("ecdsa-sha1", "ecdsa", "sha1", None, None, "1.2.840.10045.4.1", None, "ecdsa-with-SHA1"),
    ("ecdsa-p384-sha224", "ecdsa384", "sha224", None, None, "1.2.840.10045.4.3.1", None, "ecdsa-with-SHA224"),
    ("rsa-pss-sha256-salt32", "rsa", "sha256", 32, "sha256", PSS, derlib.PssParameters(SHA256, SHA256, 32), ""),
    ("rsa-pss-sha256-salt0", "rsa", "sha256", 0, "sha256", PSS, derlib.PssParameters(SHA256, SHA256, 0), ""),
    ("rsa-pss-sha256-salt20", "rsa", "sha256", 20, "sha256", PSS, derlib.PssParameters(SHA256, SHA256, 20), ""),
    ("rsa-pss-sha256-salt64", "rsa", "sha256", 64, "sha256", PSS, derlib.PssParameters(SHA256, SHA256, 64), ""),
    ("rsa-pss-sha256-mgf1-sha1", "rsa", "sha256", 32, "sha1", PSS, derlib.PssParameters(SHA256, SHA1, 32), ""),
    ("rsa-pss-sha384-salt48", "rsa", "sha384", 48, "sha384", PSS, derlib.PssParameters(SHA384, SHA384, 48), ""),
    ("rsa-pss-sha384-salt20", "rsa", "sha384", 20, "sha384", PSS, derlib.PssParameters(SHA384, SHA384, 20), ""),
    ("rsa-pss-sha512-salt64", "rsa", "sha512", 64, "sha512", PSS, derlib.PssParameters(SHA512, SHA512, 64), ""),
    ("rsa-pss-all-defaults", "rsa", "sha1", 20, "sha1", PSS, derlib.PssParameters(SHA1, SHA1, 20), ""),
]


@needs_openssl
@pytest.mark.parametrize(("key_type", "digest", "salt", "mgf", "oid", "pss", "name"), [c[1:] for c in OPENSSL_SIGNED],
                         ids=[c[0] for c in OPENSSL_SIGNED])
def test_signature_verifies_openssl_signed(key_pairs, tmp_path, key_type, digest, salt, mgf, oid, pss, name):
    issuer, lookalike = issuer_and_lookalike(key_pairs, key_type)
    sigopts = () if salt is None else ("rsa_padding_mode:pss", f"rsa_pss_saltlen:{salt}", f"rsa_mgf1_md:{mgf}")
    cert, der = _signed_by_openssl(issuer, key_pairs["ecdsa"][1], tmp_path, digest, sigopts)
    actual_oid, params = derlib.signature_algorithm(der)
    assert actual_oid == oid
    info = describe(cert, derlib.parse_certificate(der), cert.public_key(), False)
    if pss is None:
        assert info.signature_algorithm == name
    else:
        assert derlib.parse_pss_parameters(params) == pss
        if pss == derlib.PssParameters():
            assert params == b"\x30\x00"  # DER leaves every default out
        assert (info.signature_algorithm, info.signature_hash) == ("rsassaPss", pss.hash_oid)
    assert signature_verifies(cert, der, issuer.cert.public_key()) is True
    assert signature_verifies(cert, der, lookalike.cert.public_key()) is False


@needs_openssl
def test_signature_verifies_pss_with_a_lied_salt_length_is_false(key_pairs, tmp_path):
    """The outer signatureAlgorithm is not signed: a changed salt length must make the check fail, not pass."""
    issuer, _lookalike = issuer_and_lookalike(key_pairs, "rsa")
    sigopts = ("rsa_padding_mode:pss", "rsa_pss_saltlen:32", "rsa_mgf1_md:sha256")
    _cert, der = _signed_by_openssl(issuer, key_pairs["ecdsa"][1], tmp_path, "sha256", sigopts)
    salt = bytes.fromhex("a203020120")  # [2] { INTEGER 32 }, found in both the inner and the outer parameters
    outer = der.rindex(salt)
    assert der.index(salt) < outer
    lied = der[:outer] + bytes.fromhex("a203020130") + der[outer + len(salt):]
    assert derlib.parse_pss_parameters(derlib.signature_algorithm(lied)[1]).salt_length == 48
    assert signature_verifies(x509.load_der_x509_certificate(lied), lied, issuer.cert.public_key()) is False


@pytest.mark.parametrize(("child_type", "issuer_type"), [
    ("rsa", "ecdsa"), ("ecdsa", "rsa"), ("ecdsa", "ed25519"), ("ed25519", "ed448"), ("ed448", "ecdsa384"),
    ("ecdsa384", "ecdsa"),
])
def test_signature_verifies_with_a_key_of_another_type_is_false(key_pairs, child_type, issuer_type):
    signed = pki.root("Same Name", key=key_pairs[child_type][0])
    other = pki.root("Same Name", key=key_pairs[issuer_type][0])
    assert signature_verifies(signed.cert, signed.der, other.cert.public_key()) is False


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_signature_verifies_damaged_signature_is_false(key_pairs, key_type):
    issued = pki.root("Damaged", key=key_pairs[key_type][0])
    der = issued.der[:-3] + bytes([issued.der[-3] ^ 0x01]) + issued.der[-2:]
    cert = x509.load_der_x509_certificate(der)
    assert signature_verifies(cert, der, issued.cert.public_key()) is False


# ---------------------------------------------------------------------------------------------- describe

@pytest.mark.parametrize(("key_type", "expected"), [
    ("rsa", ("rsa", 2048, None)),
    ("ecdsa", ("ecdsa", 256, "secp256r1")),
    ("ecdsa384", ("ecdsa", 384, "secp384r1")),
    ("ed25519", ("ed25519", 256, None)),
    ("ed448", ("ed448", 456, None)),
])
def test_describe_key_fields(key_pairs, key_type, expected):
    issued = pki.root("Key CA", key=key_pairs[key_type][0])
    info = describe_issued(issued, self_signed=True)
    assert (info.key_type, info.key_size, info.key_curve) == expected
    assert certs.key_description(issued.cert.public_key()) == expected


@pytest.mark.parametrize(("key_type", "hash_algorithm", "name", "hash_oid"), [
    ("rsa", hashes.SHA256(), "sha256WithRSAEncryption", SHA256),
    ("rsa", hashes.SHA512(), "sha512WithRSAEncryption", SHA512),
    ("ecdsa", hashes.SHA256(), "ecdsa-with-SHA256", SHA256),
    ("ecdsa384", hashes.SHA384(), "ecdsa-with-SHA384", SHA384),
    ("ed25519", None, "ed25519", None),
    ("ed448", None, "ed448", None),
])
def test_describe_signature_algorithm(key_pairs, key_type, hash_algorithm, name, hash_oid):
    info = describe_issued(pki.root("Sig CA", key=key_pairs[key_type][0], hash_algorithm=hash_algorithm))
    assert (info.signature_algorithm, info.signature_hash) == (name, hash_oid)


def test_describe_names_and_addresses():
    ca = pki.root()
    leaf = ca.leaf("mail.example.test", "*.example.test", "xn--bcher-kva.example.test",
                   ip_addresses=["192.0.2.25", "2001:db8::25"])
    info = describe_issued(leaf)
    assert info.dns_names == ("mail.example.test", "*.example.test", "xn--bcher-kva.example.test")
    assert info.ip_addresses == ("192.0.2.25", "2001:db8::25")
    assert info.common_names == ("mail.example.test",)
    assert info.subject == "CN=mail.example.test,O=mailops test"
    assert info.issuer == "CN=Test Root CA,O=mailops test"


def test_describe_without_san_or_cn():
    ca = pki.root()
    info = describe_issued(ca.issue(None))
    assert (info.dns_names, info.ip_addresses, info.common_names) == ((), (), ())


@pytest.mark.parametrize(("options", "is_ca", "has_bc", "path_length", "can_sign"), [
    ({"ca": True}, True, True, None, True),
    ({"ca": True, "path_length": 0}, True, True, 0, True),
    ({"ca": True, "path_length": 3}, True, True, 3, True),
    ({"ca": False}, False, True, None, False),
    ({"ca": False, "basic_constraints": False}, False, False, None, False),
    ({"ca": True, "key_usage": None}, True, True, None, True),
    ({"ca": False, "key_usage": None, "basic_constraints": False}, False, False, None, True),
], ids=["ca", "ca-pathlen-0", "ca-pathlen-3", "leaf", "no-basic-constraints", "ca-no-key-usage",
        "nothing"])
def test_describe_ca_flag_and_path_length(options, is_ca, has_bc, path_length, can_sign):
    ca = pki.root()
    info = describe_issued(ca.issue("Subject", **options))
    assert (info.is_ca, info.has_basic_constraints, info.path_length, info.can_sign_certificates) == (
        is_ca, has_bc, path_length, can_sign)


def _leaf_with_eku(ca: pki.Issued, usages) -> pki.Issued:
    key = pki.new_key("ecdsa")
    builder = (x509.CertificateBuilder().subject_name(pki.name("mail.example.test")).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(pki.NOW - pki.DAY).not_valid_after(pki.NOW + pki.DAY))
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return pki.Issued(builder.sign(ca.key, hashes.SHA256()), key)


@pytest.mark.parametrize(("usages", "expected"), [
    (None, None),
    ([ExtendedKeyUsageOID.CLIENT_AUTH], False),
    ([ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CODE_SIGNING], False),
    ([ExtendedKeyUsageOID.SERVER_AUTH], True),
    ([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH], True),
    ([x509.ObjectIdentifier("2.5.29.37.0")], True),
], ids=["no-eku", "client-auth-only", "other-usages", "server-auth", "client-and-server", "any-eku"])
def test_describe_server_auth(usages, expected):
    info = describe_issued(_leaf_with_eku(pki.root(), usages))
    assert info.server_auth is expected


def test_describe_server_auth_from_pki_builder():
    ca = pki.root()
    assert describe_issued(ca.leaf("a.example.test")).server_auth is True
    assert describe_issued(ca.leaf("a.example.test", server_auth=False)).server_auth is False


@pytest.mark.parametrize(("url", "expected"), [
    ("http://ca.example.test/intermediate.der", ("http://ca.example.test/intermediate.der",)),
    (None, ()),
])
def test_describe_aia_ca_issuers(url, expected):
    info = describe_issued(pki.root().leaf("mail.example.test", aia_ca_issuers=url))
    assert info.aia_ca_issuers == expected


def test_describe_aia_ocsp_only_is_not_a_ca_issuer():
    ca = pki.root()
    key = pki.new_key("ecdsa")
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://ocsp.example.test"))])
    cert = (x509.CertificateBuilder().subject_name(pki.name("x")).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(pki.NOW).not_valid_after(pki.NOW + pki.DAY)
            .add_extension(aia, critical=False).sign(ca.key, hashes.SHA256()))
    info = describe(cert, derlib.parse_certificate(cert.public_bytes(serialization.Encoding.DER)), cert.public_key(),
                    False)
    assert info.aia_ca_issuers == ()


@pytest.mark.parametrize("key_ids", [True, False])
def test_describe_key_identifiers(key_ids):
    ca = pki.root()
    leaf = ca.leaf("mail.example.test", key_ids=key_ids)
    info = describe_issued(leaf)
    if not key_ids:
        assert (info.subject_key_id, info.authority_key_id) == (None, None)
        return
    ski = leaf.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert info.subject_key_id == ":".join(f"{b:02X}" for b in ski)
    assert info.authority_key_id == ":".join(f"{b:02X}" for b in ca_ski)
    assert len(info.subject_key_id) == 20 * 3 - 1


@pytest.mark.parametrize(("serial", "text"), [
    (1, "01"), (0x7F, "7F"), (0x80, "00:80"), (0xFF, "00:FF"), (0x100, "01:00"), (0x7FFF, "7F:FF"),
    (0x8000, "00:80:00"), (0x0102030405, "01:02:03:04:05"),
    (2 ** 151 + 5, "00:80" + ":00" * 17 + ":05"), (2 ** 158, "40" + ":00" * 19),
])
def test_describe_serial_is_the_der_integer_in_hex(serial, text):
    ca = pki.root()
    leaf = ca.leaf("mail.example.test", serial=serial)
    info = describe_issued(leaf)
    assert info.serial == text
    # The same bytes as the INTEGER's content in the certificate itself.
    tbs = leaf.cert.tbs_certificate_bytes
    _tag, start, end = derlib.read_tlv(tbs, 0)
    serial_field = list(derlib.children(tbs, start, end))[1]
    assert info.serial == colon_hex(tbs[serial_field[1]:serial_field[2]])


@pytest.mark.filterwarnings("ignore:Parsed a")  # cryptography warns about serials that are not positive
@pytest.mark.parametrize(("content", "text"), [
    ("91223344", "91:22:33:44"), ("80", "80"), ("ff7f", "FF:7F"), ("ff", "FF"), ("00", "00"),
], ids=["negative", "minus-128", "minus-129", "minus-1", "zero"])
def test_describe_serial_that_is_not_positive_as_old_cas_issued(content, text):
    """cryptography parses such serials (with a warning) and pki cannot build them: patch the DER in place."""
    new = bytes.fromhex(content)
    placeholder = b"\x11" * len(new)
    leaf = pki.root().leaf("mail.example.test", serial=int.from_bytes(placeholder, "big"))
    old_field = bytes([0x02, len(new)]) + placeholder
    der = leaf.der.replace(old_field, bytes([0x02, len(new)]) + new, 1)
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        pytest.skip("this cryptography refuses serial numbers that are not positive")
    assert cert.serial_number == int.from_bytes(new, "big", signed=True)
    assert describe(cert, derlib.parse_certificate(der), cert.public_key(), False).serial == text


def test_describe_dates_are_timezone_aware_utc_and_serialisable():
    not_before = datetime.datetime(2025, 3, 1, 8, 30, tzinfo=datetime.timezone.utc)
    not_after = datetime.datetime(2026, 3, 1, 8, 29, 59, tzinfo=datetime.timezone.utc)
    ca = pki.root()
    leaf = ca.leaf("mail.example.test", not_before=not_before, not_after=not_after)
    info = describe_issued(leaf)
    for value in (info.not_before, info.not_after):
        assert value.tzinfo is not None and value.utcoffset() == datetime.timedelta(0)
    assert (info.not_before, info.not_after) == (not_before, not_after)
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    facts = json.loads(json.dumps(info.as_dict(now)))
    assert (facts["not_before"], facts["not_after"]) == ("2025-03-01T08:30:00Z", "2026-03-01T08:29:59Z")
    assert facts["days_left"] == 59
    assert facts["fingerprints"]["sha256"] == info.sha256 == fingerprints(leaf.der).sha256
    assert certs.not_before(leaf.cert) == not_before and certs.not_after(leaf.cert) == not_after


@pytest.mark.parametrize(("value", "expected"), [
    (datetime.datetime(2030, 1, 2, 3, 4, 5), datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)),
    (datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
     datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)),
], ids=["naive-as-cryptography-36-returns", "aware"])
def test_utc(value, expected):
    result = certs.utc(value)
    assert result == expected and result.tzinfo is not None


@pytest.mark.parametrize("self_signed", [True, False])
def test_describe_self_signed_is_passed_through(self_signed):
    assert describe_issued(pki.root(), self_signed=self_signed).self_signed is self_signed


def test_as_dict_has_the_same_keys_every_time(key_pairs):
    now = datetime.datetime.now(datetime.timezone.utc)
    rich = describe_issued(pki.root().leaf("a.example.test", ip_addresses=["192.0.2.1"],
                                           aia_ca_issuers="http://ca.example.test/x.der"))
    bare = describe_issued(pki.root("Bare", key=key_pairs["ed448"][0], key_ids=False, basic_constraints=False))
    assert rich.as_dict(now).keys() == bare.as_dict(now).keys()


def test_load_der_rejects_damaged_data():
    with pytest.raises(ValueError):
        certs.load_der(b"\x30\x03\x02\x01\x01")


# ---------------------------------------------------------------------------------------------- key_matches

@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_key_matches(key_pairs, key_type):
    own, other = key_pairs[key_type]
    cert = pki.root("Key Match", key=own).cert
    assert key_matches(own, cert) is True
    assert key_matches(other, cert) is False
    for other_type in KEY_TYPES:
        if other_type != key_type:
            assert key_matches(key_pairs[other_type][0], cert) is False


def test_key_matches_a_key_loaded_from_pem(key_pairs):
    own = key_pairs["rsa"][0]
    cert = pki.root("Reloaded", key=own).cert
    pem = own.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    assert key_matches(serialization.load_pem_private_key(pem, None), cert) is True


def test_control_characters_in_names_are_escaped_so_they_cannot_forge_lines():
    forged = pki.root("Evil CA\n- [expired] fake violation")
    info = certs.describe(forged.cert, derlib.parse_certificate(forged.der), forged.cert.public_key(), True)
    assert "\n" not in info.subject and "\n" not in info.issuer
    assert "Evil CA\\x0a- [expired] fake violation" in info.subject
