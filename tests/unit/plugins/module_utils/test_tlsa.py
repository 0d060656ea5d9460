# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for tlsa.py: every usage, selector and matching type, judged against openssl; records in chain facts."""
from __future__ import annotations

import shutil
import subprocess

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils.analysis import analyze, load_request
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.tlsa import (
    TlsaRecord,
    base_name,
    certificate_records,
    parse_record,
    record_for,
)

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
OPENSSL_DIGESTS = {1: "-sha256", 2: "-sha512"}


def openssl_association(pem: bytes, selector: int, matching_type: int) -> str:
    """The association data computed by openssl alone: the DER certificate or public key, then its digest."""
    if selector == 0:
        data = subprocess.run([OPENSSL, "x509", "-outform", "DER"], input=pem, capture_output=True, check=True).stdout
    else:
        pubkey = subprocess.run([OPENSSL, "x509", "-noout", "-pubkey"], input=pem, capture_output=True,
                                check=True).stdout
        data = subprocess.run([OPENSSL, "pkey", "-pubin", "-outform", "DER"], input=pubkey, capture_output=True,
                              check=True).stdout
    if matching_type == 0:
        return data.hex()
    return subprocess.run([OPENSSL, "dgst", OPENSSL_DIGESTS[matching_type], "-binary"], input=data,
                          capture_output=True, check=True).stdout.hex()


@pytest.fixture(scope="module", params=["rsa", "ecdsa", "ed25519"])
def certificate(request) -> pki.Issued:
    return pki.hierarchy("mx1.example.test", key_type=request.param).leaf


@needs_openssl
@pytest.mark.parametrize("usage", [0, 1, 2, 3])
@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("matching_type", [0, 1, 2])
def test_every_record_type_agrees_with_openssl(certificate, usage, selector, matching_type):
    record = record_for(certificate.der, usage, selector, matching_type)
    assert record == TlsaRecord(usage, selector, matching_type,
                                openssl_association(certificate.pem, selector, matching_type))
    assert record.matches(certificate.der)
    assert str(record) == f"{usage} {selector} {matching_type} {record.data}"


def test_records_survive_a_renewal_with_the_same_key_only_for_the_public_key_selector():
    h = pki.hierarchy("mx1.example.test")
    renewed = h.intermediates[0].leaf("mx1.example.test", key=h.leaf.key)
    assert record_for(h.leaf.der).matches(renewed.der)  # 3 1 1
    assert not record_for(h.leaf.der, 3, 0, 1).matches(renewed.der)  # 3 0 1 names one certificate
    assert not record_for(h.leaf.der).matches(pki.hierarchy("mx1.example.test").leaf.der)


@pytest.mark.parametrize("text, expected", [
    ("3 1 1 " + "AB" * 32, TlsaRecord(3, 1, 1, "ab" * 32)),
    ("_25._tcp.mx1.example.org. 3600 IN TLSA 2 1 1 " + "cd" * 16 + " " + "cd" * 16, TlsaRecord(2, 1, 1, "cd" * 32)),
    ("_25._tcp.mx1 TLSA 3 0 0 3082", TlsaRecord(3, 0, 0, "3082")),
    ("1 1 1 00", TlsaRecord(1, 1, 1, "00")),  # parsed; judging says it is unusable and why
])
def test_records_are_read_from_presentation_format(text, expected):
    assert parse_record(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("3 1 1", "not a TLSA record"), ("3 1 1 xyz", "not a TLSA record"), ("3 1 1 abc", "odd number"),
    ("300 1 1 ab", "single octets"), ("", "not a TLSA record"),
])
def test_malformed_records_are_refused_with_the_reason(text, reason):
    with pytest.raises(InputError, match=reason):
        parse_record(text, "tlsa item 1")


@pytest.mark.parametrize("record, known", [
    (TlsaRecord(3, 1, 1, "ab" * 32), True), (TlsaRecord(3, 1, 1, "ab" * 31), False),
    (TlsaRecord(3, 1, 2, "ab" * 64), True), (TlsaRecord(4, 1, 1, "ab" * 32), False),
    (TlsaRecord(3, 2, 1, "ab" * 32), False), (TlsaRecord(3, 1, 3, "ab" * 32), False),
])
def test_only_records_of_known_parameters_and_digest_lengths_can_match(record, known):
    assert record.known is known


def test_chain_facts_list_the_records_of_leaf_issuer_and_root():
    h = pki.hierarchy("mx1.example.test")
    facts = analyze(load_request(content=pki.pem_bundle(h.leaf, *h.intermediates).decode(),
                                 roots=(), system_roots=False)).as_dict()
    leaf, issuer = facts["chain"]
    assert leaf["tlsa"][0] == str(record_for(h.leaf.der, 3, 1, 1))
    assert issuer["tlsa"][0] == str(record_for(h.intermediates[0].der, 2, 1, 1))
    assert [r.split()[:3] for r in leaf["tlsa"]] == [["3", "1", "1"], ["3", "0", "1"], ["3", "1", "2"], ["3", "0", "2"]]
    assert all(r == str(rec) for r, rec in zip(issuer["tlsa"], certificate_records(h.intermediates[0].der, 2)))
    assert [entry["tlsa"] for entry in facts["certificates"]] == [leaf["tlsa"], issuer["tlsa"]]


def test_records_live_under_the_port_and_protocol():
    assert base_name("MX1.Example.org.", 25) == "_25._tcp.mx1.example.org"
