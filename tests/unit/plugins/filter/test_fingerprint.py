# SPDX-License-Identifier: GPL-3.0-or-later
"""The fingerprint filter: the same values as openssl x509 -fingerprint and as the library, from PEM or DER."""
from __future__ import annotations

import shutil
import subprocess

import pki
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.tls.plugins.filter.fingerprint import FilterModule, fingerprint
from ansible_collections.mailops.tls.plugins.module_utils.certs import fingerprints

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
KEY_TYPES = ["rsa", "ecdsa", "ecdsa384", "ed25519"]


def openssl_fingerprint(pem: bytes, digest: str) -> str:
    """What `openssl x509 -noout -fingerprint -<digest>` prints after the '='."""
    out = subprocess.run([OPENSSL, "x509", "-noout", "-fingerprint", f"-{digest}"], input=pem, capture_output=True,
                         check=True).stdout.decode()
    return out.strip().split("=", 1)[1]


def openssl_spki_sha256(pem: bytes) -> str:
    """SHA-256 of the DER public key, as `openssl x509 -pubkey | openssl pkey -pubin -outform DER | openssl dgst`."""
    pubkey = subprocess.run([OPENSSL, "x509", "-noout", "-pubkey"], input=pem, capture_output=True, check=True).stdout
    der = subprocess.run([OPENSSL, "pkey", "-pubin", "-outform", "DER"], input=pubkey, capture_output=True,
                         check=True).stdout
    digest = subprocess.run([OPENSSL, "dgst", "-sha256", "-binary"], input=der, capture_output=True, check=True).stdout
    return ":".join(f"{byte:02X}" for byte in digest)


@pytest.fixture(scope="module", params=KEY_TYPES)
def certificate(request) -> pki.Issued:
    return pki.root(f"Fingerprint Root {request.param}", key_type=request.param)


@needs_openssl
@pytest.mark.parametrize("algorithm,digest", [("md5", "md5"), ("sha1", "sha1"), ("sha256", "sha256")])
def test_certificate_fingerprints_match_openssl(certificate, algorithm, digest):
    assert fingerprint(certificate.pem.decode(), algorithm) == openssl_fingerprint(certificate.pem, digest)


@needs_openssl
def test_public_key_fingerprint_matches_openssl(certificate):
    assert fingerprint(certificate.pem.decode(), "spki_sha256") == openssl_spki_sha256(certificate.pem)


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "spki_sha256"])
def test_same_values_as_the_library_from_pem_and_der(certificate, algorithm):
    expected = getattr(fingerprints(certificate.der), algorithm)
    assert fingerprint(certificate.pem.decode(), algorithm) == expected
    assert fingerprint(certificate.der, algorithm) == expected


def test_default_is_sha256_of_the_first_certificate_with_text_around():
    company = pki.hierarchy("mail.example.test")
    text = "subject=CN = mail.example.test\n" + pki.pem_bundle(company.leaf, *company.intermediates).decode()
    assert fingerprint(text) == fingerprints(company.leaf.der).sha256


def test_registered_under_its_name():
    assert FilterModule().filters()["fingerprint"] is fingerprint


@pytest.mark.parametrize("value,algorithm,message", [
    ("not a certificate", "sha256", "no certificate found"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "sha256", "damaged"),
    (None, "sha256", "PEM text or DER bytes"),
    ({"subject": "CN=x"}, "sha256", "PEM text or DER bytes"),
    ("irrelevant", "sha512", "unknown algorithm 'sha512'"),
])
def test_bad_input_is_a_clear_filter_error(value, algorithm, message):
    with pytest.raises(AnsibleFilterError, match=message):
        fingerprint(value, algorithm)
