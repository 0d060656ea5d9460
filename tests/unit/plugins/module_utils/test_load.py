# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for load.py: every input format, the text around PEM blocks, and damage, on PKIs generated at test time."""
from __future__ import annotations

import base64
import functools
import os
import random
import shutil
import subprocess
from collections import Counter

import pki
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from ansible_collections.mailops.tls.plugins.module_utils import load
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.load import files_in, load_bytes, load_paths, read_file

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
# Passphrases made up at test time; the tests check that neither ever appears in a message.
PASSPHRASE = b"correct horse battery staple 7f3a"
WRONG = b"Tr0ub4dor&3 wrong"
ENC = serialization.Encoding
FMT = serialization.PrivateFormat


def openssl(*args: str, data: bytes = b"") -> bytes:
    return subprocess.run([OPENSSL, *args], input=data, capture_output=True, check=True).stdout


def spki(key) -> bytes:
    return key.public_key().public_bytes(ENC.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def messages(loaded: load.Loaded) -> str:
    return "\n".join(f.message for f in loaded.findings)


def parse_errors(loaded: load.Loaded) -> list:
    return [f for f in loaded.findings if f.code == "parse_error"]


@pytest.fixture(scope="module")
def hierarchy():
    return pki.hierarchy("mail.example.test", depth=2)


@pytest.fixture(scope="module")
def chain(hierarchy):
    """Leaf, intermediate 2, intermediate 1: the served chain."""
    return hierarchy.served_chain


@pytest.fixture(scope="module")
def rsa_key():
    return pki.new_key("rsa")


@pytest.fixture(scope="module")
def keys(rsa_key):
    return {"rsa": rsa_key, "ecdsa": pki.new_key("ecdsa"), "ed25519": pki.new_key("ed25519"),
            "ed448": pki.new_key("ed448")}


# ------------------------------------------------------------------------------------------ PEM and its surroundings

def _bag_attributes(pem: bytes, cert: x509.Certificate) -> bytes:
    """What `openssl pkcs12 -info -nokeys` writes around each certificate."""
    return (b"Bag Attributes\n    localKeyID: 5E 3A 91 0C 7D 2F 44 18 9B 1E 02 AA 61 F0 33 27 8C 09 D4 E1 \n"
            b"    friendlyName: mail.example.test\n"
            b"subject=" + cert.subject.rfc4514_string().encode() + b"\n\n"
            b"issuer=" + cert.issuer.rfc4514_string().encode() + b"\n\n" + pem)


def _openssl1_subject_lines(pem: bytes, cert: x509.Certificate) -> bytes:
    """OpenSSL 1.0 style `subject= /O=.../CN=...` lines, as many old guides paste them."""
    def slashes(name: x509.Name) -> bytes:
        return "".join(f"/{a.rfc4514_string()}" for a in name).encode()
    return b"subject= " + slashes(cert.subject) + b"\nissuer= " + slashes(cert.issuer) + b"\n" + pem


def _text_dump(pem: bytes, cert: x509.Certificate) -> bytes:
    """A shortened `openssl x509 -text` dump before the block, as support tickets paste it."""
    return (b"Certificate:\n    Data:\n        Version: 3 (0x2)\n        Serial Number:\n"
            b"            4a:1f:00:9c\n        Signature Algorithm: ecdsa-with-SHA256\n"
            b"        Issuer: " + cert.issuer.rfc4514_string().encode() + b"\n"
            b"        X509v3 extensions:\n            X509v3 Basic Constraints: critical\n                CA:FALSE\n"
            b"    Signature Value:\n        30:45:02:21:00:d3:4b:aa\n" + pem)


DECORATIONS = {
    "plain": lambda items: b"".join(pem for pem, _cert in items),
    "bag-attributes": lambda items: b"".join(_bag_attributes(pem, cert) for pem, cert in items),
    "openssl1-subject-lines": lambda items: b"".join(_openssl1_subject_lines(pem, cert) for pem, cert in items),
    "text-dump": lambda items: b"".join(_text_dump(pem, cert) for pem, cert in items),
    "comments": lambda items: b"# fullchain for mail.example.test\n" + b"".join(
        b"# certificate %d\n" % n + pem + b"\n; end\n" for n, (pem, _cert) in enumerate(items)),
    "crlf": lambda items: b"".join(pem for pem, _cert in items).replace(b"\n", b"\r\n"),
    "bom": lambda items: b"\xef\xbb\xbf" + b"".join(pem for pem, _cert in items),
    "bom-crlf-bag": lambda items: b"\xef\xbb\xbf" + b"".join(
        _bag_attributes(pem, cert) for pem, cert in items).replace(b"\n", b"\r\n"),
    "indented": lambda items: b"".join(b"    " + line for pem, _cert in items for line in pem.splitlines(True)),
    "no-blank-line-no-final-newline": lambda items: b"".join(pem.rstrip(b"\n") for pem, _cert in items),
    "blank-lines-between": lambda items: b"\n\n\n".join(pem for pem, _cert in items) + b"\n\n",
    "trailing-spaces": lambda items: b"".join(b"".join(line.rstrip(b"\n") + b"  \t\n"
                                                       for line in pem.splitlines(True)) for pem, _cert in items),
}


@pytest.mark.parametrize("decoration", sorted(DECORATIONS))
def test_pem_bundle_with_surrounding_text(chain, decoration):
    data = DECORATIONS[decoration]([(issued.pem, issued.cert) for issued in chain])
    loaded = load_bytes(data, "fullchain.pem")
    assert loaded.findings == ()
    assert [(c.der, c.block, c.source) for c in loaded.certificates] == [
        (issued.der, number, "fullchain.pem") for number, issued in enumerate(chain, 1)]
    assert loaded.certificates[1].location == "block 2 of fullchain.pem"


@needs_openssl
def test_pem_bundle_as_openssl_x509_text_prints_it(chain, tmp_path):
    data = b""
    for issued in chain:
        (tmp_path / "one.pem").write_bytes(issued.pem)
        data += openssl("x509", "-in", str(tmp_path / "one.pem"), "-text", "-subject", "-issuer")
    assert b"Signature" in data and b"subject=" in data
    loaded = load_bytes(data, "dump.txt")
    assert loaded.findings == ()
    assert [c.der for c in loaded.certificates] == [issued.der for issued in chain]


@pytest.mark.parametrize("prefix", ["none", "key-and-csr-first"])
def test_fifty_certificate_bundle_in_order_with_block_numbers(keys, prefix):
    ca = pki.root("Bundle CA", key_type="ed25519")
    leaves = [ca.leaf(f"host{n}.example.test", key=keys["ed25519"]) for n in range(50)]
    head = b""
    if prefix != "none":
        csr = x509.CertificateSigningRequestBuilder().subject_name(pki.name("csr")).sign(keys["ed25519"], None)
        head = leaves[0].key_pem() + csr.public_bytes(ENC.PEM)
    loaded = load_bytes(head + pki.pem_bundle(*leaves), "bundle.pem")
    offset = 2 if head else 0
    assert [(c.der, c.block) for c in loaded.certificates] == [
        (leaf.der, number + offset) for number, leaf in enumerate(leaves, 1)]
    assert len(loaded.keys) == (1 if head else 0)
    assert [f.code for f in loaded.findings] == (["ignored_block"] if head else [])


# ---------------------------------------------------------------------------------------------- DER, PKCS#7, PKCS#12

def test_der_certificate(chain):
    loaded = load_bytes(chain[0].der, "leaf.der")
    assert loaded.findings == ()
    assert [(c.der, c.block, c.source) for c in loaded.certificates] == [(chain[0].der, 1, "leaf.der")]


@pytest.mark.parametrize("check", [True, False])
def test_der_certificate_check_false_skips_only_the_full_parse(chain, check):
    loaded = load_bytes(chain[1].der, "inter.cer", check=check)
    assert [c.der for c in loaded.certificates] == [chain[1].der]


def _pkcs7(certs: list, encoding, tmp_path) -> bytes:
    """PKCS#7 certs-only, by cryptography >= 37 or else by openssl crl2pkcs7."""
    if hasattr(pkcs7, "serialize_certificates"):
        return pkcs7.serialize_certificates([c.cert for c in certs], encoding)
    if OPENSSL is None:
        pytest.skip("cryptography < 37 and no openssl command: cannot build PKCS#7")
    (tmp_path / "in.pem").write_bytes(pki.pem_bundle(*certs))
    pem = openssl("crl2pkcs7", "-nocrl", "-certfile", str(tmp_path / "in.pem"))
    return pem if encoding == ENC.PEM else openssl("pkcs7", "-outform", "DER", data=pem)


@pytest.mark.parametrize(("encoding", "name", "prefix"), [
    (ENC.PEM, "chain.p7b", b""),
    (ENC.PEM, "chain.p7b", b"Bag Attributes\nsubject=CN = x\n"),
    (ENC.PEM, "chain.p7b", b"\xef\xbb\xbf"),
    (ENC.DER, "chain.p7c", b""),
], ids=["pem", "pem-with-text", "pem-with-bom", "der"])
def test_pkcs7(chain, tmp_path, encoding, name, prefix):
    made = _pkcs7(chain, encoding, tmp_path)
    assert made.startswith(b"-----BEGIN PKCS7-----" if encoding == ENC.PEM else b"\x30")
    loaded = load_bytes(prefix + made, name)
    assert loaded.findings == ()
    assert Counter(c.der for c in loaded.certificates) == Counter(issued.der for issued in chain)
    assert {c.source for c in loaded.certificates} == {name}


def test_pkcs7_pem_after_a_certificate_has_block_number_two(chain, tmp_path):
    loaded = load_bytes(chain[0].pem + _pkcs7(chain[1:], ENC.PEM, tmp_path), "mixed.pem")
    assert loaded.findings == ()
    assert [c.block for c in loaded.certificates] == [1, 2, 2]
    assert Counter(c.der for c in loaded.certificates) == Counter(issued.der for issued in chain)


# A PKCS#7 ContentInfo of type data (1.2.840.113549.1.7.1) holding "content": PKCS#7, but no SignedData with
# certificates (cryptography raises UnsupportedAlgorithm for it).
PKCS7_DATA = bytes.fromhex("3016 06092a864886f70d010701 a009 0407") + b"content"


@pytest.mark.parametrize(("data", "message"), [
    (PKCS7_DATA, "bundle.p7b cannot be read: it is neither PEM nor DER, PKCS#7, PKCS#12"),
    (b"-----BEGIN PKCS7-----\n" + base64.encodebytes(PKCS7_DATA) + b"-----END PKCS7-----\n",
     "block 1 of bundle.p7b cannot be read: the PKCS#7 structure is damaged or holds no certificates (it is not a "
     "certificate bundle (SignedData): "),
], ids=["der", "pem"])
def test_pkcs7_that_is_not_a_certificate_bundle_is_a_parse_error(data, message):
    loaded = load_bytes(data, "bundle.p7b")
    assert loaded.certificates == () and [f.code for f in loaded.findings] == ["parse_error"]
    assert loaded.findings[0].message.startswith(message), loaded.findings[0].message


def test_pkcs7_of_an_unknown_content_type_is_a_parse_error(chain, tmp_path):
    """cryptography raises UnsupportedAlgorithm for it, and cryptography 36 InternalError: neither is a ValueError."""
    signed_data = bytes.fromhex("06092a864886f70d010702")  # contentType 1.2.840.113549.1.7.2, pkcs7-signedData
    unknown = bytes.fromhex("06092a864886f70d01077f")  # 1.2.840.113549.1.7.127
    data = _pkcs7(chain, ENC.DER, tmp_path).replace(signed_data, unknown, 1)
    loaded = load_bytes(data, "bundle.p7b")
    assert loaded.certificates == () and [f.code for f in loaded.findings] == ["parse_error"]
    assert "not PKCS#7" in loaded.findings[0].message, loaded.findings[0].message


# The version field of every tbsCertificate here ([0] INTEGER 2, i.e. v3), and the same field saying 5.
VERSION_3, VERSION_6 = bytes.fromhex("a003020102"), bytes.fromhex("a003020105")


@pytest.mark.parametrize(("envelope", "message"), [
    ("der", "leaf.bin cannot be read: the certificate is damaged (its version field says 5, where X.509 has 0 to 2)"),
    ("pkcs7", "leaf.bin cannot be read: it is neither PEM nor DER, PKCS#7, PKCS#12"),
])
def test_certificate_with_an_impossible_version_is_a_parse_error(chain, tmp_path, envelope, message):
    """cryptography raises InvalidVersion, which is no ValueError, for a version field above 2."""
    data = chain[0].der if envelope == "der" else _pkcs7(chain[:1], ENC.DER, tmp_path)
    loaded = load_bytes(data.replace(VERSION_3, VERSION_6, 1), "leaf.bin")
    assert loaded.certificates == () and [f.code for f in loaded.findings] == ["parse_error"]
    assert message in loaded.findings[0].message, loaded.findings[0].message


@pytest.mark.parametrize(("encryption", "passphrases", "with_key"), [
    (PASSPHRASE, (PASSPHRASE,), True),
    (PASSPHRASE, (WRONG, PASSPHRASE), True),
    (None, (), True),
    (None, (PASSPHRASE,), True),
    (PASSPHRASE, (PASSPHRASE,), False),
], ids=["encrypted", "second-passphrase-fits", "unencrypted", "unencrypted-passphrase-given", "certificates-only"])
def test_pkcs12(chain, encryption, passphrases, with_key):
    leaf, *cas = chain
    algorithm = serialization.BestAvailableEncryption(encryption) if encryption else serialization.NoEncryption()
    data = pkcs12.serialize_key_and_certificates(b"mail", leaf.key if with_key else None,
                                                 leaf.cert if with_key else None, [c.cert for c in cas], algorithm)
    loaded = load_bytes(data, "mail.p12", passphrases)
    assert loaded.findings == ()
    expected = [leaf.der] if with_key else []
    assert [c.der for c in loaded.certificates][:len(expected)] == expected
    assert Counter(c.der for c in loaded.certificates) == Counter(c.der for c in (chain if with_key else cas))
    assert [spki(k.key) for k in loaded.keys] == ([spki(leaf.key)] if with_key else [])


@needs_openssl
@pytest.mark.parametrize("legacy", [False, True], ids=["aes", "legacy-rc2-3des"])
def test_pkcs12_made_by_openssl(chain, tmp_path, legacy):
    leaf, *cas = chain
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    (tmp_path / "cas.pem").write_bytes(pki.pem_bundle(*cas))
    (tmp_path / "key.pem").write_bytes(leaf.key_pem())
    args = ["pkcs12", "-export", "-in", str(tmp_path / "leaf.pem"), "-inkey", str(tmp_path / "key.pem"),
            "-certfile", str(tmp_path / "cas.pem"), "-passout", "env:P12PASS"]
    if legacy:
        args.append("-legacy")
    result = subprocess.run([OPENSSL, *args], capture_output=True, env={**os.environ, "P12PASS": PASSPHRASE.decode()},
                            check=False)
    if result.returncode and legacy:
        pytest.skip("this openssl cannot write legacy PKCS#12")
    loaded = load_bytes(result.stdout, "mail.pfx", (PASSPHRASE,))
    assert loaded.findings == ()
    assert Counter(c.der for c in loaded.certificates) == Counter(c.der for c in chain)
    assert [spki(k.key) for k in loaded.keys] == [spki(leaf.key)]


@pytest.mark.parametrize("passphrases", [(), (WRONG,), (b"",)], ids=["missing", "wrong", "empty"])
def test_pkcs12_passphrase_missing_or_wrong(chain, passphrases):
    leaf = chain[0]
    data = pkcs12.serialize_key_and_certificates(b"mail", leaf.key, leaf.cert, None,
                                                 serialization.BestAvailableEncryption(PASSPHRASE))
    loaded = load_bytes(data, "mail.p12", passphrases)
    assert (loaded.certificates, loaded.keys) == ((), ())
    [error] = parse_errors(loaded)
    assert error.severity == "error"
    assert "mail.p12" in error.message
    assert "PKCS#12" in error.message and "pkcs12_passphrase" in error.message
    assert "passphrase is missing or wrong" in error.message
    assert "not PKCS#12" not in error.message
    assert PASSPHRASE.decode() not in error.message and WRONG.decode() not in error.message


@needs_openssl
def test_trusted_certificate_block(chain, tmp_path):
    (tmp_path / "root.pem").write_bytes(chain[-1].pem)
    trusted = openssl("x509", "-in", str(tmp_path / "root.pem"), "-addtrust", "serverAuth",
                      "-setalias", "Test Root")
    assert trusted.startswith(b"-----BEGIN TRUSTED CERTIFICATE-----")
    for check in (True, False):
        loaded = load_bytes(chain[0].pem + trusted, "trust.pem", check=check)
        assert loaded.findings == ()
        assert [(c.der, c.block) for c in loaded.certificates] == [(chain[0].der, 1), (chain[-1].der, 2)]


# ---------------------------------------------------------------------------------------------- private keys

KEY_FORMATS = [
    # (id, key type, encoding, private format, encrypted, marker expected in the data)
    ("rsa-pkcs1-pem", "rsa", ENC.PEM, FMT.TraditionalOpenSSL, False, b"BEGIN RSA PRIVATE KEY"),
    ("rsa-pkcs8-pem", "rsa", ENC.PEM, FMT.PKCS8, False, b"BEGIN PRIVATE KEY"),
    ("ecdsa-sec1-pem", "ecdsa", ENC.PEM, FMT.TraditionalOpenSSL, False, b"BEGIN EC PRIVATE KEY"),
    ("ecdsa-pkcs8-pem", "ecdsa", ENC.PEM, FMT.PKCS8, False, b"BEGIN PRIVATE KEY"),
    ("ed25519-pkcs8-pem", "ed25519", ENC.PEM, FMT.PKCS8, False, b"BEGIN PRIVATE KEY"),
    ("ed448-pkcs8-pem", "ed448", ENC.PEM, FMT.PKCS8, False, b"BEGIN PRIVATE KEY"),
    ("rsa-pkcs8-encrypted-pem", "rsa", ENC.PEM, FMT.PKCS8, True, b"BEGIN ENCRYPTED PRIVATE KEY"),
    ("ecdsa-pkcs8-encrypted-pem", "ecdsa", ENC.PEM, FMT.PKCS8, True, b"BEGIN ENCRYPTED PRIVATE KEY"),
    ("ed25519-pkcs8-encrypted-pem", "ed25519", ENC.PEM, FMT.PKCS8, True, b"BEGIN ENCRYPTED PRIVATE KEY"),
    ("rsa-legacy-encrypted-pem", "rsa", ENC.PEM, FMT.TraditionalOpenSSL, True, b"Proc-Type: 4,ENCRYPTED"),
    ("ecdsa-legacy-encrypted-pem", "ecdsa", ENC.PEM, FMT.TraditionalOpenSSL, True, b"Proc-Type: 4,ENCRYPTED"),
    ("rsa-pkcs1-der", "rsa", ENC.DER, FMT.TraditionalOpenSSL, False, b"\x30\x82"),
    ("rsa-pkcs8-der", "rsa", ENC.DER, FMT.PKCS8, False, b"\x30\x82"),
    ("ecdsa-sec1-der", "ecdsa", ENC.DER, FMT.TraditionalOpenSSL, False, b"\x30"),
    ("ecdsa-pkcs8-der", "ecdsa", ENC.DER, FMT.PKCS8, False, b"\x30"),
    ("ed25519-pkcs8-der", "ed25519", ENC.DER, FMT.PKCS8, False, b"\x30"),
    ("ed448-pkcs8-der", "ed448", ENC.DER, FMT.PKCS8, False, b"\x30"),
    ("ecdsa-pkcs8-encrypted-der", "ecdsa", ENC.DER, FMT.PKCS8, True, b"\x30"),
]


def _key_bytes(key, encoding, private_format, encrypted: bool) -> bytes:
    algorithm = serialization.BestAvailableEncryption(PASSPHRASE) if encrypted else serialization.NoEncryption()
    return key.private_bytes(encoding, private_format, algorithm)


@pytest.mark.parametrize(("key_type", "encoding", "private_format", "encrypted", "marker"),
                         [case[1:] for case in KEY_FORMATS], ids=[case[0] for case in KEY_FORMATS])
def test_private_key_formats(keys, key_type, encoding, private_format, encrypted, marker):
    key = keys[key_type]
    data = _key_bytes(key, encoding, private_format, encrypted)
    assert marker in data[:80]
    source = "mail.key" if encoding == ENC.PEM else "mail.key.der"
    loaded = load_bytes(data, source, (PASSPHRASE,) if encrypted else ())
    assert loaded.findings == ()
    assert loaded.certificates == ()
    assert [(spki(k.key), k.source) for k in loaded.keys] == [
        (spki(key), "block 1 of mail.key" if encoding == ENC.PEM else source)]


@pytest.mark.parametrize("key_type", ["rsa", "ecdsa"])
def test_key_and_certificate_in_one_pem_with_crlf_and_bag_attributes(chain, keys, key_type):
    key = keys[key_type]
    data = (b"Bag Attributes\n    localKeyID: 01 02 03 \nKey Attributes: <No Attributes>\n"
            + _key_bytes(key, ENC.PEM, FMT.PKCS8, True) + chain[0].pem).replace(b"\n", b"\r\n")
    loaded = load_bytes(data, "combined.pem", (WRONG, PASSPHRASE))
    assert loaded.findings == ()
    assert [spki(k.key) for k in loaded.keys] == [spki(key)]
    assert [(c.der, c.block) for c in loaded.certificates] == [(chain[0].der, 2)]


KEY_DECORATIONS = {
    "crlf": lambda pem: pem.replace(b"\n", b"\r\n"),
    "cr-only": lambda pem: pem.replace(b"\n", b"\r"),
    "indented": lambda pem: b"".join(b"    " + line for line in pem.splitlines(True)),
    "trailing-blanks": lambda pem: b"".join(line.rstrip(b"\n") + b" \t\n" for line in pem.splitlines(True)),
    "no-final-newline": lambda pem: pem.rstrip(b"\n"),
    "rewrapped-76": lambda pem: _rewrap(pem, 76),
}


def _rewrap(pem: bytes, width: int) -> bytes:
    lines = pem.splitlines()
    headers = [line for line in lines[1:-1] if b":" in line]
    body = b"".join(line for line in lines[1:-1] if line and b":" not in line)
    wrapped = [body[i:i + width] for i in range(0, len(body), width)]
    return b"\n".join([lines[0], *headers, *([b""] if headers else []), *wrapped, lines[-1]]) + b"\n"


@pytest.mark.parametrize("decoration", sorted(KEY_DECORATIONS))
@pytest.mark.parametrize(("key_type", "private_format", "encrypted"), [
    ("rsa", FMT.PKCS8, False), ("rsa", FMT.TraditionalOpenSSL, True), ("ecdsa", FMT.TraditionalOpenSSL, False),
    ("ecdsa", FMT.PKCS8, True), ("ed25519", FMT.PKCS8, False),
], ids=["rsa-pkcs8", "rsa-legacy-encrypted", "ecdsa-sec1", "ecdsa-pkcs8-encrypted", "ed25519-pkcs8"])
def test_pem_key_with_the_layout_certificates_tolerate(keys, key_type, private_format, encrypted, decoration):
    key = keys[key_type]
    data = KEY_DECORATIONS[decoration](_key_bytes(key, ENC.PEM, private_format, encrypted))
    loaded = load_bytes(data, "mail.key", (PASSPHRASE,))
    assert loaded.findings == ()
    assert [spki(k.key) for k in loaded.keys] == [spki(key)]


@needs_openssl
@pytest.mark.parametrize(("command", "key_type"), [("rsa", "rsa"), ("ec", "ecdsa")])
def test_legacy_encrypted_pem_made_by_openssl(keys, tmp_path, command, key_type):
    key = keys[key_type]
    (tmp_path / "plain.key").write_bytes(_key_bytes(key, ENC.PEM, FMT.TraditionalOpenSSL, False))
    args = [command, "-in", str(tmp_path / "plain.key"), "-aes256", "-passout", "env:KEYPASS"]
    env = {**os.environ, "KEYPASS": PASSPHRASE.decode()}
    result = subprocess.run([OPENSSL, *args, "-traditional"], capture_output=True, env=env, check=False)
    if result.returncode:  # OpenSSL 1.1 writes the traditional format without being asked
        result = subprocess.run([OPENSSL, *args], capture_output=True, env=env, check=True)
    assert b"Proc-Type: 4,ENCRYPTED" in result.stdout and b"DEK-Info: AES-256-CBC" in result.stdout
    loaded = load_bytes(result.stdout, "legacy.key", (PASSPHRASE,))
    assert loaded.findings == ()
    assert [spki(k.key) for k in loaded.keys] == [spki(key)]
    missing = load_bytes(result.stdout, "legacy.key")
    assert "private_key_passphrase" in messages(missing)


ENCRYPTED_KEYS = [
    ("pkcs8-pem", ENC.PEM, FMT.PKCS8, "block 1 of k.pem"),
    ("legacy-pem", ENC.PEM, FMT.TraditionalOpenSSL, "block 1 of k.pem"),
    ("pkcs8-der", ENC.DER, FMT.PKCS8, "k.pem"),
]


@pytest.mark.parametrize(("encoding", "private_format", "where"), [c[1:] for c in ENCRYPTED_KEYS],
                         ids=[c[0] for c in ENCRYPTED_KEYS])
@pytest.mark.parametrize(("passphrases", "expected"), [
    ((), "encrypted: give its passphrase (private_key_passphrase)"),
    ((WRONG,), "the passphrase given does not decrypt the private key"),
    ((WRONG, b"another wrong one"), "the passphrase given does not decrypt the private key"),
], ids=["missing", "wrong", "two-wrong"])
def test_encrypted_key_passphrase_missing_or_wrong(keys, encoding, private_format, where, passphrases, expected):
    data = _key_bytes(keys["ecdsa"], encoding, private_format, True)
    loaded = load_bytes(data, "k.pem", passphrases)
    assert loaded.keys == ()
    [error] = parse_errors(loaded)
    assert error.message.startswith(where + " cannot be read")
    assert expected in error.message
    for secret in (PASSPHRASE, WRONG, b"another wrong one"):
        assert secret.decode() not in error.message
        assert secret.decode() not in repr(loaded)


@pytest.mark.parametrize("passphrases", [(), (WRONG,)], ids=["no-passphrase", "passphrase-given"])
def test_damaged_unencrypted_key_is_not_blamed_on_the_passphrase(keys, passphrases):
    pem = _key_bytes(keys["ecdsa"], ENC.PEM, FMT.PKCS8, False)
    lines = pem.splitlines(True)
    lines[1] = lines[1][:8] + (b"B" if lines[1][8:9] == b"A" else b"A") * 12 + lines[1][20:]
    loaded = load_bytes(b"".join(lines), "k.pem", passphrases)
    [error] = parse_errors(loaded)
    assert "damaged" in error.message
    assert "passphrase" not in error.message


def test_loaded_key_repr_hides_the_key(keys):
    loaded = load_bytes(_key_bytes(keys["rsa"], ENC.PEM, FMT.PKCS8, False), "k.pem")
    text = repr(loaded)
    assert "block 1 of k.pem" in text
    assert "RSAPrivateKey" not in text and "key=" not in text


# ---------------------------------------------------------------------------------------------- damage

def _replace_body_char(pem: bytes, char: bytes) -> bytes:
    lines = pem.splitlines(True)
    lines[2] = lines[2][:10] + char + lines[2][11:]
    return b"".join(lines)


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label.encode(), b"\n".join(lines), label.encode())


def _empty_extension(der: bytes) -> bytes:
    """Zero the length of the basicConstraints extension SEQUENCE: DER that once crashed the index reader."""
    at = der.index(bytes.fromhex("0603551d13")) - 1
    return der[:at] + b"\x00" + der[at + 1:]


DAMAGE = {
    # id: (make the middle or last block damaged, intact (index, block) pairs, damaged block, message parts)
    "truncated-final": (lambda p: p[0] + p[1] + p[2][:len(p[2]) // 2], [(0, 1), (1, 2)], 3,
                        ["truncated", "no END line"]),
    "truncated-final-after-begin": (lambda p: p[0] + p[1] + p[2][:28], [(0, 1), (1, 2)], 3, ["truncated"]),
    "truncated-middle": (lambda p: p[0] + p[1][:-26] + p[2], [(0, 1), (2, 3)], 2, ["truncated"]),
    "corrupted-base64-char": (lambda p: p[0] + _replace_body_char(p[1], b"!") + p[2], [(0, 1), (2, 3)], 2,
                              ["base64"]),
    "corrupted-base64-length": (lambda p: p[0] + _replace_body_char(p[1], b"") + p[2], [(0, 1), (2, 3)], 2,
                                ["base64"]),
    "label-mismatch": (lambda p: p[0] + p[1].replace(b"END CERTIFICATE", b"END PRIVATE KEY") + p[2],
                       [(0, 1), (2, 3)], 2, ["BEGIN CERTIFICATE", "END PRIVATE KEY"]),
    "label-mismatch-not-ascii": (lambda p: p[0] + p[1].replace(b"END CERTIFICATE", b"END CERTIFICAT\xc9") + p[2],
                                 [(0, 1), (2, 3)], 2, ["BEGIN CERTIFICATE ends with END CERTIFICAT\\xc9"]),
    "damaged-der-truncated": (lambda p: p[0] + _pem("CERTIFICATE", _der(p[1])[:-10]) + p[2],
                              [(0, 1), (2, 3)], 2, ["damaged"]),
    "damaged-der-extension": (lambda p: p[0] + _pem("CERTIFICATE", _empty_extension(_der(p[1]))) + p[2],
                              [(0, 1), (2, 3)], 2, ["damaged"]),
    "damaged-der-not-a-certificate": (lambda p: p[0] + _pem("CERTIFICATE", random.Random(7).randbytes(300)) + p[2],
                                      [(0, 1), (2, 3)], 2, ["damaged"]),
}


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(ENC.DER)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_pem_block_is_a_parse_error_and_the_rest_still_loads(chain, damage):
    make, intact, block, parts = DAMAGE[damage]
    data = make([issued.pem for issued in chain])
    loaded = load_bytes(data, "fullchain.pem")
    assert [(c.der, c.block) for c in loaded.certificates] == [(chain[i].der, b) for i, b in intact]
    [error] = loaded.findings
    assert (error.code, error.severity) == ("parse_error", "error")
    assert error.message.startswith(f"block {block} of fullchain.pem cannot be read")
    for part in parts:
        assert part in error.message


@pytest.mark.parametrize(("data", "parts"), [
    (random.Random(1).randbytes(2000), ["neither PEM nor DER"]),
    (b"\x00" * 64, ["neither PEM nor DER"]),
    (b"hello, this is not a certificate\n", ["neither PEM nor DER"]),
    (b"", ["empty"]),
    (b" \r\n\t\n", ["empty"]),
    (b"\xef\xbb\xbf", ["empty"]),
], ids=["random-binary", "zeros", "plain-text", "empty", "whitespace", "bom-only"])
def test_unreadable_file_is_a_parse_error_naming_it(data, parts):
    loaded = load_bytes(data, "/etc/postfix/broken.pem")
    assert (loaded.certificates, loaded.keys) == ((), ())
    [error] = loaded.findings
    assert error.code == "parse_error"
    assert error.message.startswith("/etc/postfix/broken.pem cannot be read")
    for part in parts:
        assert part in error.message


@pytest.mark.parametrize("damage", [lambda d: d[:-20], lambda d: d[:100], _empty_extension,
                                    lambda d: d[:4] + b"\xff" + d[5:]],
                         ids=["truncated", "truncated-early", "empty-extension", "damaged-tbs-header"])
def test_damaged_der_certificate_is_a_parse_error(chain, damage):
    loaded = load_bytes(damage(chain[0].der), "leaf.der")
    assert loaded.certificates == ()
    [error] = loaded.findings
    assert error.code == "parse_error" and "leaf.der cannot be read" in error.message


@pytest.mark.filterwarnings("ignore:Parsed a")  # cryptography's warning about the damaged (negative) serials
def test_every_single_byte_damage_of_a_der_certificate_loads_or_is_a_parse_error(chain):
    der = chain[0].der
    for position in range(len(der)):
        for value in sorted({0x00, 0xFF, der[position] ^ 0x80}):
            loaded = load_bytes(der[:position] + bytes([value]) + der[position + 1:], "leaf.der")
            if loaded.certificates:
                assert loaded.findings == ()
            else:
                assert [f.code for f in loaded.findings] == ["parse_error"]


# ---------------------------------------------------------------------------------------------- ignored blocks

def test_ignored_blocks_are_info_and_keep_block_numbers(chain, keys):
    ca = chain[1]
    csr = x509.CertificateSigningRequestBuilder().subject_name(pki.name("mail.example.test")).sign(
        keys["ecdsa"], hashes.SHA256())
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject).last_update(pki.NOW)
           .next_update(pki.NOW + pki.DAY).sign(ca.key, hashes.SHA256()))
    ec_parameters = _pem("EC PARAMETERS", bytes.fromhex("06082a8648ce3d030107"))  # the named curve P-256
    public_key = keys["ecdsa"].public_key().public_bytes(ENC.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    new_csr = csr.public_bytes(ENC.PEM).replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    data = (chain[0].pem + csr.public_bytes(ENC.PEM) + chain[1].pem + ec_parameters + public_key
            + crl.public_bytes(ENC.PEM) + new_csr + chain[2].pem)
    loaded = load_bytes(data, "mixed.pem")
    assert [(c.der, c.block) for c in loaded.certificates] == [
        (chain[0].der, 1), (chain[1].der, 3), (chain[2].der, 8)]
    assert [(f.code, f.severity) for f in loaded.findings] == [("ignored_block", "info")] * 5
    labels = ["CERTIFICATE REQUEST", "EC PARAMETERS", "PUBLIC KEY", "X509 CRL", "NEW CERTIFICATE REQUEST"]
    for finding, block, label in zip(loaded.findings, [2, 4, 5, 6, 7], labels):
        assert finding.message == f"block {block} of mixed.pem is a {label} and was skipped"


def test_ec_parameters_before_a_sec1_key_as_openssl_ecparam_writes_them(keys):
    data = _pem("EC PARAMETERS", bytes.fromhex("06082a8648ce3d030107")) + _key_bytes(
        keys["ecdsa"], ENC.PEM, FMT.TraditionalOpenSSL, False)
    loaded = load_bytes(data, "ec.key")
    assert [spki(k.key) for k in loaded.keys] == [spki(keys["ecdsa"])]
    assert [f.code for f in loaded.findings] == ["ignored_block"]


# ---------------------------------------------------------------------------------------------- files and directories

@pytest.fixture
def cert_dir(tmp_path, chain, hierarchy):
    """A directory like /etc/ssl/certs: real files, hash symlinks, an alias, a link leading out, and noise."""
    outside = tmp_path / "share"
    outside.mkdir()
    (outside / "root.crt").write_bytes(hierarchy.root.pem)
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "leaf.pem").write_bytes(chain[0].pem)
    (certs / "inter.crt").write_bytes(chain[1].pem)
    (certs / "0a1b2c3d.1").write_bytes(chain[2].pem)  # c_rehash copies when it cannot link
    (certs / "Test_Root.pem").symlink_to(outside / "root.crt")
    (certs / "5ed36f99.0").symlink_to("Test_Root.pem")
    (certs / "9d66eef0.0").symlink_to("leaf.pem")
    (certs / "e8f0a1b2.0").symlink_to("inter.crt")
    (certs / "alias.pem").symlink_to("leaf.pem")
    (certs / "broken.pem").symlink_to("missing.pem")
    (certs / "README").write_text("not a certificate")
    (certs / "notes.txt").write_text("not a certificate either")
    (certs / "nested.pem").mkdir()
    (certs / "nested.pem" / "other.pem").write_bytes(chain[0].pem)
    return certs


def test_directory_with_hash_symlinks_loads_each_real_file_once(cert_dir, chain, hierarchy):
    names = files_in(str(cert_dir))
    assert len(names) == 4
    assert names == sorted(names)
    assert len({os.path.realpath(n) for n in names}) == 4
    loaded = load_paths([str(cert_dir)])
    assert loaded.findings == ()
    assert Counter(c.der for c in loaded.certificates) == Counter(
        [chain[0].der, chain[1].der, chain[2].der, hierarchy.root.der])
    assert all(c.source in names for c in loaded.certificates)


def test_files_in_a_file_is_the_file(cert_dir):
    assert files_in(str(cert_dir / "leaf.pem")) == [str(cert_dir / "leaf.pem")]


def test_load_paths_mixes_files_and_directories_in_order(cert_dir, tmp_path, chain):
    single = tmp_path / "single.der"
    single.write_bytes(chain[0].der)
    loaded = load_paths([str(single), str(cert_dir)])
    assert loaded.certificates[0].source == str(single)
    assert len(loaded.certificates) == 5


def test_read_file_returns_the_bytes(tmp_path):
    (tmp_path / "x.pem").write_bytes(b"\x00\x01data")
    assert read_file(str(tmp_path / "x.pem")) == b"\x00\x01data"


@pytest.mark.parametrize(("make", "reason"), [
    (lambda tmp: tmp / "no-such-file.pem", "does not exist"),
    (lambda tmp: tmp / "no-such-dir" / "fullchain.pem", "does not exist"),
    (lambda tmp: tmp, "is a directory"),
], ids=["missing-file", "missing-directory", "directory"])
def test_read_file_errors_name_the_path(tmp_path, make, reason):
    path = str(make(tmp_path))
    with pytest.raises(InputError) as caught:
        read_file(path)
    assert str(caught.value).startswith(path + " ")
    assert reason in str(caught.value)


def test_load_paths_missing_file_raises_input_error_naming_it(tmp_path, chain):
    (tmp_path / "ok.pem").write_bytes(chain[0].pem)
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(InputError, match=r"missing\.pem does not exist"):
        load_paths([str(tmp_path / "ok.pem"), missing])


def test_load_paths_passes_passphrases_to_every_file(tmp_path, keys, chain):
    (tmp_path / "mail.key").write_bytes(_key_bytes(keys["ecdsa"], ENC.PEM, FMT.PKCS8, True))
    (tmp_path / "mail.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"mail", chain[0].key, chain[0].cert, None, serialization.BestAvailableEncryption(WRONG)))
    loaded = load_paths([str(tmp_path / "mail.key"), str(tmp_path / "mail.p12")], (PASSPHRASE, WRONG))
    assert loaded.findings == ()
    assert [spki(k.key) for k in loaded.keys] == [spki(keys["ecdsa"]), spki(chain[0].key)]
    assert [k.source for k in loaded.keys] == [f"block 1 of {tmp_path / 'mail.key'}", str(tmp_path / "mail.p12")]


@pytest.mark.parametrize("variant", ["lf", "crlf", "indented", "junk_between", "damaged_base64", "truncated",
                                     "header_line", "with_key", "empty_body", "padding_inside", "quantum_short",
                                     "padding_too_long"])
@pytest.mark.parametrize("strict_mode", [True, False], ids=["binascii_strict", "b64decode"])
def test_bulk_reader_of_plain_bundles_equals_the_block_reader(variant, strict_mode, monkeypatch):
    """Pools (check=False) of plain CERTIFICATE blocks are read in bulk; the result is exactly the block reader's
    (with binascii's strict mode, Python 3.11+, and with b64decode(validate=True) before)."""
    if not strict_mode:
        monkeypatch.setattr(load, "_strict_base64", functools.partial(base64.b64decode, validate=True))
    issued = pki.hierarchy("mail.example.test", depth=2)
    bundle = pki.pem_bundle(issued.leaf, *issued.intermediates, issued.root)
    data = {
        "lf": bundle,
        "crlf": bundle.replace(b"\n", b"\r\n"),
        "indented": bundle.replace(b"\n", b"\n\t "),
        "junk_between": b"subject=CN = x\n" + bundle.replace(b"-----\n-----BEGIN", b"-----\nissuer: y\n-----BEGIN"),
        "damaged_base64": bundle.replace(b"MII", b"MI!", 1),
        "truncated": bundle[:-40],
        "header_line": bundle.replace(b"CERTIFICATE-----\n", b"CERTIFICATE-----\nProc-Type: 4,X\n", 1),
        "with_key": bundle + issued.leaf.key_pem(),
        "empty_body": bundle + b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "padding_inside": bundle.replace(b"MII", b"MI=", 1),
        "quantum_short": bundle.replace(b"MII", b"MI", 1),
        "padding_too_long": bundle + b"-----BEGIN CERTIFICATE-----\nMIIB===\n-----END CERTIFICATE-----\n",
    }[variant]
    bulk = load_bytes(data, "pool.pem", check=False)
    monkeypatch.setattr(load, "_plain_certificates", lambda *args: None)
    blocks = load_bytes(data, "pool.pem", check=False)
    assert (bulk.certificates, bulk.findings) == (blocks.certificates, blocks.findings)
    assert [key.source for key in bulk.keys] == [key.source for key in blocks.keys]  # key objects differ
