# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for dane.py: chains judged against TLSA records as RFC 7672 senders judge them (Postfix's verdicts on the
same records are checked in tests/integration/test_dane_lab.py)."""
from __future__ import annotations

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils import dane
from ansible_collections.mailops.tls.plugins.module_utils.tlsa import TlsaRecord, record_for

MX = "mx1.example.test"
DOMAIN = "example.test"


@pytest.fixture(scope="module")
def ca():
    return pki.hierarchy(MX)


def chain(*issued):
    return [item.der for item in issued]


def secure(*records):
    return dane.TlsaSet(f"_25._tcp.{MX}", tuple(records), True, 3600)


def ee(issued):
    return record_for(issued.der, 3, 1, 1)


def ta(issued):
    return record_for(issued.der, 2, 1, 1)


def codes(verdict):
    return sorted(f.code for f in verdict.findings)


def test_dane_ee_ignores_names_and_dates(ca):
    intermediate = ca.intermediates[0]
    stale = intermediate.leaf("other.example.net", not_before=pki.NOW - 400 * pki.DAY, not_after=pki.NOW - pki.DAY)
    verdict = dane.judge(chain(stale, intermediate), secure(ee(stale)), MX, DOMAIN)
    assert verdict.status == dane.VERIFIED and codes(verdict) == []
    assert verdict.records[0].authenticates and verdict.records[0].matches == (0,)


@pytest.mark.parametrize("names", [(MX,), (DOMAIN,), ("*.example.test",)])
def test_dane_ta_authenticates_a_chain_to_the_matched_issuer_valid_for_mx_or_next_hop(ca, names):
    intermediate = ca.intermediates[0]
    leaf = intermediate.leaf(*names)
    verdict = dane.judge(chain(leaf, intermediate), secure(ta(intermediate)), MX, DOMAIN)
    assert verdict.status == dane.VERIFIED, verdict.records[0].reason
    assert verdict.records[0].matches == (1,)


def test_dane_ta_to_a_presented_root_verifies_every_link(ca):
    verdict = dane.judge(chain(ca.leaf, ca.intermediates[0], ca.root), secure(ta(ca.root)), MX, DOMAIN)
    assert verdict.status == dane.VERIFIED


def lookalike_chain(ca):
    """The leaf is signed by an impostor CA with the intermediate's name; the real intermediate is presented."""
    impostor = pki.root("Test Intermediate CA 1")
    return chain(impostor.leaf(MX), ca.intermediates[0])


@pytest.mark.parametrize("build, reason", [
    (lambda ca: chain(ca.intermediates[0].leaf("www.example.net"), ca.intermediates[0]), "not valid for"),
    (lambda ca: chain(ca.intermediates[0].leaf(MX, not_after=pki.NOW - pki.DAY,
                                               not_before=pki.NOW - 90 * pki.DAY), ca.intermediates[0]),
     "outside its validity"),
    (lambda ca: chain(ca.leaf), "no certificate the server presents"),
    (lookalike_chain, "did not sign"),
])
def test_dane_ta_refuses_names_dates_missing_issuers_and_false_links(ca, build, reason):
    verdict = dane.judge(build(ca), secure(ta(ca.intermediates[0])), MX, DOMAIN)
    assert verdict.status == dane.MISMATCH and codes(verdict) == ["tlsa_mismatch"]
    assert reason in verdict.records[0].reason


def test_a_dane_ta_record_for_the_server_certificate_itself_does_not_authenticate(ca):
    verdict = dane.judge(chain(ca.leaf, ca.intermediates[0]), secure(record_for(ca.leaf.der, 2, 1, 1)), MX, DOMAIN)
    assert verdict.status == dane.MISMATCH and "only the server certificate" in verdict.records[0].reason


@pytest.mark.parametrize("usage", [0, 1])
def test_pkix_records_are_unusable_for_smtp(ca, usage):
    verdict = dane.judge(chain(ca.leaf, ca.intermediates[0]), secure(record_for(ca.leaf.der, usage, 1, 1)), MX)
    assert verdict.status == dane.UNUSABLE and codes(verdict) == ["tlsa_unusable"]
    assert "PKIX" in verdict.findings[0].message


def test_unusable_records_beside_a_matching_one_are_reported_and_do_not_fail(ca):
    records = (record_for(ca.leaf.der, 1, 1, 1), TlsaRecord(3, 1, 1, "ab" * 31), ee(ca.leaf))
    verdict = dane.judge(chain(ca.leaf, ca.intermediates[0]), secure(*records), MX)
    assert verdict.status == dane.VERIFIED and codes(verdict) == ["tlsa_unusable", "tlsa_unusable"]


def test_a_lagging_rollover_is_refused_with_the_records_to_publish_and_passes_once_published(ca):
    intermediate = ca.intermediates[0]
    old, new = ca.leaf, intermediate.leaf(MX)  # a new key under the same issuer
    lagging = dane.judge(chain(new, intermediate), secure(ee(old)), MX, DOMAIN)
    assert lagging.status == dane.MISMATCH and codes(lagging) == ["tlsa_mismatch"]
    assert lagging.missing == (ee(new), ta(intermediate))
    message = lagging.findings[0].message
    assert str(ee(new)) in message and str(ta(intermediate)) in message and "3600 s" in message
    published = dane.judge(chain(new, intermediate), secure(ee(old), ee(new)), MX, DOMAIN)
    assert published.status == dane.VERIFIED
    # The old key's record is what is left over once the new chain is served.
    assert published.leftover == (ee(old),) and codes(published) == ["tlsa_leftover"]


def test_a_2_1_1_record_carries_a_new_key_under_the_same_issuer(ca):
    intermediate = ca.intermediates[0]
    verdict = dane.judge(chain(intermediate.leaf(MX), intermediate), secure(ta(intermediate), ee(ca.leaf)), MX)
    assert verdict.status == dane.VERIFIED and verdict.leftover == (ee(ca.leaf),)


@pytest.mark.parametrize("tlsa, status, expected", [
    (dane.TlsaSet("_25._tcp.mx1.example.test", (), True), dane.NO_RECORDS, []),
    (dane.TlsaSet("_25._tcp.mx1.example.test", (), False), dane.INSECURE, []),
    (dane.TlsaSet("_25._tcp.mx1.example.test", (TlsaRecord(3, 1, 1, "ab" * 32),), False), dane.INSECURE,
     ["tlsa_insecure"]),
    (dane.TlsaSet("_25._tcp.mx1.example.test", (), False, error="SERVFAIL"), dane.LOOKUP_FAILED,
     ["dns_lookup_failed"]),
])
def test_dane_applies_only_to_validated_answers(ca, tlsa, status, expected):
    verdict = dane.judge(chain(ca.leaf, ca.intermediates[0]), tlsa, MX)
    assert verdict.status == status and codes(verdict) == expected
    assert verdict.as_dict()["applies"] is (status == dane.LOOKUP_FAILED)


def test_the_verdict_is_plain_data(ca):
    result = dane.judge(chain(ca.leaf, ca.intermediates[0]), secure(ee(ca.leaf)), MX).as_dict()
    assert result["status"] == "verified" and result["records"][0]["record"] == str(ee(ca.leaf))
    assert result["to_publish"] == [str(ee(ca.leaf)), str(ta(ca.intermediates[0]))] and result["missing"] == [
        str(ta(ca.intermediates[0]))]
