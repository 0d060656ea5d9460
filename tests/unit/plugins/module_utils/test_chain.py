# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for chain.py: path building over generated PKIs, proved by signature, through analysis.analyze."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import random
from typing import Optional

import pki
import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type

from ansible_collections.mailops.tls.plugins.module_utils import analysis, chain, load, pathrules
from ansible_collections.mailops.tls.plugins.module_utils.certs import sha256_hex

MAIL = "mail.example.test"


def loaded(items, source: str = "bundle.pem", check: bool = True) -> load.Loaded:
    """The certificates as one PEM file named source (check=False: as pools and trust stores are read)."""
    return load.load_bytes(pki.pem_bundle(*items), source, check=check) if items else load.Loaded()


def analyze(given, pool=(), roots=(), system=(), **options) -> analysis.Analysis:
    """Analyse given (the bundle) with a pool, operator roots and 'system' anchors; never the host's store."""
    request = analysis.Request(certificates=loaded(given), pool=loaded(pool, "pool.pem", check=False),
                               roots=loaded(roots, "roots.pem"), system_roots=loaded(system, "system.pem", check=False),
                               **options)
    return analysis.analyze(request)


def codes(result: analysis.Analysis) -> list[str]:
    return sorted(f.code for f in result.findings)


def only(result: analysis.Analysis, code: str):
    """The one finding with code (fails when there are none or several)."""
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, f"expected one {code}, got {[f.message for f in result.findings]}"
    return found[0]


def fingerprints(items) -> list[str]:
    return [sha256_hex(item.der) for item in items]


def chain_of(result: analysis.Analysis) -> list[str]:
    return [entry.info.sha256 for entry in result.chain]


def root_of(result: analysis.Analysis) -> Optional[str]:
    return result.root.info.sha256 if result.root else None


def index_of(given=(), pool=(), supplied=(), system=()) -> chain.CertificateIndex:
    index = chain.CertificateIndex()
    for role, items in ((chain.GIVEN, given), (chain.POOL, pool), (chain.SUPPLIED_ANCHOR, supplied),
                        (chain.SYSTEM_ANCHOR, system)):
        for number, item in enumerate(items, 1):
            index.add(load.LoadedCertificate(item.der, f"{role}.pem", number), role)
    return index


@pytest.fixture(scope="module")
def deep():
    """root -> 2 intermediates -> leaf."""
    return pki.hierarchy(MAIL, depth=2)


@pytest.fixture(scope="module")
def cross():
    """One intermediate with two issuers: inter by Root A and inter_x (same name and key) by Root B."""
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_a.issue("Shared Intermediate", ca=True)
    inter_x = pki.cross_sign(inter, root_b)
    return {"root_a": root_a, "root_b": root_b, "inter": inter, "inter_x": inter_x, "leaf": inter.leaf(MAIL)}


# --- the chain as served ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4])
def test_chain_as_served_for_each_depth(depth):
    h = pki.hierarchy(MAIL, depth=depth)
    result = analyze(h.served_chain, roots=[h.root], names=[MAIL])
    assert chain_of(result) == fingerprints(h.served_chain)
    assert root_of(result) == sha256_hex(h.root.der)
    assert (result.trusted, result.complete, result.ordered) == (True, True, True)
    assert result.findings == ()
    assert [entry.index for entry in result.chain] == list(range(depth + 1))
    assert result.root.index is None and result.root.source == "block 1 of roots.pem (roots)"
    # One signature per link: leaf -> intermediates -> root.
    assert result.signature_checks == depth + 1


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_leaf_found_in_any_input_order(deep, order):
    served = deep.served_chain
    result = analyze([served[i] for i in order], roots=[deep.root])
    assert chain_of(result) == fingerprints(served)
    assert result.trusted
    assert ("wrong_order" in codes(result)) == (order != (0, 1, 2))
    assert set(codes(result)) <= {"wrong_order"}


def test_root_included_is_info_and_left_out_of_the_chain(deep):
    result = analyze([*deep.served_chain, deep.root], roots=[deep.root])
    assert chain_of(result) == fingerprints(deep.served_chain)
    assert root_of(result) == sha256_hex(deep.root.der) and result.root.index == 3
    found = only(result, "root_included")
    assert found.severity == "info"
    assert (found.certificate.index, found.certificate.sha256) == (3, sha256_hex(deep.root.der))
    assert "block 4 of bundle.pem" in found.message and "Test Root CA" in found.message
    assert codes(result) == ["root_included"]


def test_root_included_and_not_an_anchor_is_untrusted(deep):
    result = analyze([*deep.served_chain, deep.root])
    assert chain_of(result) == fingerprints(deep.served_chain)
    assert not result.trusted
    assert codes(result) == ["root_included", "untrusted_root"]
    found = only(result, "untrusted_root")
    assert found.certificate.sha256 == sha256_hex(deep.root.der) and "Test Root CA" in found.message


def test_pool_completes_the_chain_but_the_bundle_still_lacks_the_intermediate(deep):
    inter_1, inter_2 = deep.intermediates
    result = analyze([deep.leaf, inter_2], pool=[inter_1], roots=[deep.root])
    assert chain_of(result) == fingerprints(deep.served_chain)
    assert result.trusted and not result.complete
    assert [entry.source for entry in result.chain] == ["block 1 of bundle.pem", "block 2 of bundle.pem",
                                                        "block 1 of pool.pem (pool)"]
    found = only(result, "missing_intermediate")
    assert found.severity == "error"
    assert (found.certificate.index, found.certificate.sha256) == (None, sha256_hex(inter_1.der))
    assert "Test Intermediate CA 1" in found.message and "Test Intermediate CA 2" in found.message


def test_missing_intermediate_names_the_issuer_and_its_aia_url():
    top = pki.root()
    inter = top.issue("Issuing CA 7", ca=True)
    leaf = inter.leaf(MAIL, aia_ca_issuers="http://ca.example.test/issuing-ca-7.der")
    result = analyze([leaf], roots=[top])
    assert not result.trusted and not result.complete
    assert chain_of(result) == fingerprints([leaf])
    found = only(result, "missing_intermediate")
    assert "Issuing CA 7" in found.message
    assert "http://ca.example.test/issuing-ca-7.der" in found.message
    assert (found.certificate.index, found.certificate.sha256) == (0, sha256_hex(leaf.der))


def test_missing_intermediate_without_aia_gives_no_url(deep):
    result = analyze([deep.leaf, deep.intermediates[1]], roots=[deep.root])
    found = only(result, "missing_intermediate")
    assert "Test Intermediate CA 1" in found.message and "http" not in found.message
    assert found.certificate.sha256 == sha256_hex(deep.intermediates[1].der)


# --- parenthood is proved by signature -------------------------------------------------------------------------------

def decoys_for(h: pki.Hierarchy, kind: str, count: int = 3) -> list:
    """Certificates named like the leaf's issuer that did not issue it."""
    issuer, above = h.intermediates[-1], (h.intermediates[-2] if len(h.intermediates) > 1 else h.root)
    if kind == "same_ski":
        return [pki.lookalike(issuer, above) for _decoy in range(count)]
    return [above.issue(subject=issuer.subject, ca=True, key_ids=kind != "no_key_ids") for _decoy in range(count)]


@pytest.mark.parametrize("kind", ["other_key", "same_ski", "no_key_ids"])
@pytest.mark.parametrize("where", ["given_before", "given_after", "pool"])
def test_decoys_with_the_issuers_name_are_never_chosen(kind, where):
    h = pki.hierarchy(MAIL, depth=2, key_ids=kind != "no_key_ids")
    decoys = decoys_for(h, kind)
    if kind == "same_ski":
        ski = h.intermediates[-1].cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert all(d.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value == ski
                   for d in decoys)
    given = {"given_before": [h.leaf, *decoys, *h.intermediates[::-1]],
             "given_after": [*h.served_chain, *decoys], "pool": h.served_chain}[where]
    result = analyze(given, pool=decoys if where == "pool" else (), roots=[h.root])
    assert chain_of(result) == fingerprints(h.served_chain)
    assert root_of(result) == sha256_hex(h.root.der)
    assert result.trusted
    assert "bad_signature" not in codes(result)


def test_without_key_identifiers_issuers_are_found_by_name_and_signature():
    h = pki.hierarchy(MAIL, depth=3, key_ids=False)
    assert h.leaf.cert.extensions.get_extension_for_oid(x509.oid.ExtensionOID.BASIC_CONSTRAINTS)
    result = analyze(list(reversed(h.served_chain)), roots=[h.root])
    assert chain_of(result) == fingerprints(h.served_chain)
    assert result.trusted and codes(result) == ["wrong_order"]


def test_three_thousand_decoys_sharing_the_issuers_name_cost_no_signature_checks(deep):
    issuer = deep.intermediates[-1]
    above = deep.intermediates[0]
    decoys = [above.issue(subject=issuer.subject, ca=True) for _decoy in range(3000)]
    result = analyze([deep.leaf], pool=[*decoys, *deep.intermediates], roots=[deep.root])
    assert chain_of(result) == fingerprints(deep.served_chain)
    assert result.trusted
    # Key identifiers rule the decoys out: one signature check per link, leaf to root.
    assert result.signature_checks == 3
    assert "chain_search_limit" not in codes(result)


def test_key_identifier_alone_does_not_make_an_issuer(deep):
    """A CA with the issuer's key but another name is not its issuer: clients chain by name."""
    renamed = deep.intermediates[0].issue(subject=pki.name("Renamed CA"), ca=True, key=deep.intermediates[1].key)
    result = analyze([deep.leaf, renamed, deep.intermediates[0]], roots=[deep.root])
    assert "Renamed CA" not in [entry.info.common_names[0] for entry in result.chain]
    assert not result.trusted
    assert "missing_intermediate" in codes(result)


@pytest.mark.parametrize("where", ["bundle", "pool", "shared_pool", "damaged_in_pool"])
def test_issuer_with_differently_encoded_subject_is_found_by_key_identifier(where):
    """PrintableString and UTF8String spell the same name: the raw bytes differ, the names chain. In a pool it is
    found by a byte search for the key identifier, also through an index shared by many analyses; a damaged copy
    found that way is a parse_error."""
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True)
    printable = x509.Name([x509.NameAttribute(attribute.oid, attribute.value, _ASN1Type.PrintableString)
                           for attribute in inter.subject])
    reencoded = top.issue(subject=printable, ca=True, key=inter.key)
    assert reencoded.cert.subject.public_bytes() != inter.cert.subject.public_bytes()
    leaf = inter.leaf(MAIL)
    if where == "bundle":
        result = analyze([leaf, reencoded], roots=[top])
    elif where == "pool":
        result = analyze([leaf], pool=[reencoded], roots=[top])
    elif where == "damaged_in_pool":
        damaged = reencoded.der[:5] + b"\x84" + reencoded.der[6:]  # as in the test of damaged pool certificates
        result = analysis.analyze(analysis.Request(certificates=loaded([leaf]), roots=loaded([top], "roots.pem"),
                                                   pool=load.Loaded((load.LoadedCertificate(damaged, "pool.pem", 1),))))
        assert chain_of(result) == fingerprints([leaf]) and codes(result) == ["missing_intermediate", "parse_error"]
        return
    else:
        judgement = analysis.Judgement(pool=loaded([reencoded], "pool.pem", check=False),
                                       roots=loaded([top], "roots.pem"))
        result = analysis.analyze(judgement.request(loaded([leaf])))
    assert chain_of(result) == fingerprints([leaf, reencoded]) and root_of(result) == sha256_hex(top.der)
    assert codes(result) == ([] if where == "bundle" else ["missing_intermediate"])


def test_an_rsa_issuer_in_the_pool_is_found_by_its_name():
    """Its subject is followed by a SubjectPublicKeyInfo with a long-form length, which the byte search must not take
    for the validity that follows an issuer name. Without key identifiers the name is the only way to it."""
    top = pki.root(key_type="rsa", key_ids=False)
    inter = top.issue("Issuing CA", ca=True, key_type="rsa", key_ids=False)
    leaf = inter.leaf(MAIL, key_type="rsa", key_ids=False)
    result = analyze([leaf], pool=[inter], roots=[top])
    assert chain_of(result) == fingerprints([leaf, inter]) and root_of(result) == sha256_hex(top.der)
    assert codes(result) == ["missing_intermediate"]


# --- several paths: cross-signs --------------------------------------------------------------------------------------

def test_operator_anchor_is_preferred_over_a_longer_valid_system_path():
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_a.issue("Shared Intermediate", ca=True, not_after=pki.NOW + 100 * pki.DAY)
    inter_x = pki.cross_sign(inter, root_b)
    leaf = inter.leaf(MAIL, not_after=pki.NOW + 200 * pki.DAY)
    for operator, other, via in ((root_a, root_b, inter), (root_b, root_a, inter_x)):
        result = analyze([leaf, via], pool=[inter, inter_x], roots=[operator], system=[other])
        assert root_of(result) == sha256_hex(operator.der)
        assert chain_of(result) == fingerprints([leaf, via])
        assert [list(path) for path in result.as_dict()["alternatives"]] == [
            fingerprints([leaf, inter_x if via is inter else inter])]


def test_among_system_anchors_the_longer_valid_path_wins():
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_a.issue("Shared Intermediate", ca=True, not_after=pki.NOW + 100 * pki.DAY)
    inter_x = pki.cross_sign(inter, root_b)
    leaf = inter.leaf(MAIL)
    for given in ([leaf, inter], [leaf, inter_x], [leaf, inter, inter_x], [leaf, inter_x, inter]):
        result = analyze(given, pool=[inter, inter_x], system=[root_a, root_b])
        assert root_of(result) == sha256_hex(root_b.der)
        assert chain_of(result) == fingerprints([leaf, inter_x])


def test_among_equally_valid_system_paths_the_shorter_wins(cross):
    root_c = pki.root("Root C")
    root_b_x = pki.cross_sign(cross["root_b"], root_c)
    result = analyze([cross["leaf"]], pool=[cross["inter"], cross["inter_x"], root_b_x],
                     system=[cross["root_a"], root_c])
    assert root_of(result) == sha256_hex(cross["root_a"].der)
    assert chain_of(result) == fingerprints([cross["leaf"], cross["inter"]])
    assert [[e.info.sha256 for e in path] for path in result.alternatives] == \
        [fingerprints([cross["leaf"], cross["inter_x"], root_b_x])]


def test_cross_signed_info_lists_the_alternatives(cross):
    result = analyze([cross["leaf"], cross["inter"], cross["inter_x"]], roots=[cross["root_a"]],
                     system=[cross["root_b"]])
    found = only(result, "cross_signed")
    assert found.severity == "info"
    assert found.certificate.sha256 == sha256_hex(cross["leaf"].der)
    assert "2 paths" in found.message
    assert "Root A" in found.message.split("Alternatives")[0] and "Root B" in found.message.split("Alternatives")[1]
    # The cross-sign belongs to the alternative path: it is not unrelated to the leaf.
    assert "unrelated_certificate" not in codes(result)


def test_an_expired_cross_sign_path_loses_to_a_valid_one():
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_a.issue("Shared Intermediate", ca=True)
    inter_x = pki.cross_sign(inter, root_b, not_before=pki.NOW - 400 * pki.DAY, not_after=pki.NOW - 10 * pki.DAY)
    leaf = inter.leaf(MAIL)
    # Root B is the operator's anchor, which would win if validity did not come first.
    result = analyze([leaf, inter_x], pool=[inter], roots=[root_b], system=[root_a])
    assert root_of(result) == sha256_hex(root_a.der)
    assert chain_of(result) == fingerprints([leaf, inter])
    assert "expired" not in codes(result)
    # The expired path is no valid alternative.
    assert result.alternatives == () and "cross_signed" not in codes(result)


@pytest.mark.parametrize("problem", [{"path_length": 0}, {"key_usage": "encipher_only"}])
def test_a_path_through_a_constrained_ca_loses_to_a_clean_one(problem):
    """Root A may not sign (this far down); it is the operator's anchor, which would otherwise win."""
    root_a, root_b = pki.root("Root A", **problem), pki.root("Root B")
    upper = root_a.issue("Upper CA", ca=True)
    upper_x = pki.cross_sign(upper, root_b)
    lower = upper.issue("Lower CA", ca=True)
    leaf = lower.leaf(MAIL)
    result = analyze([leaf, lower, upper, upper_x], roots=[root_a], system=[root_b])
    assert root_of(result) == sha256_hex(root_b.der)
    assert chain_of(result) == fingerprints([leaf, lower, upper_x])
    # The path through Root A is no valid alternative, so its Upper CA is surplus.
    assert codes(result) == ["unrelated_certificate"]
    assert only(result, "unrelated_certificate").certificate.sha256 == sha256_hex(upper.der)


@pytest.mark.parametrize("defect", [{"key_usage": "encipher_only"}, {"basic_constraints": False}])
def test_an_issuer_that_may_not_sign_loses_though_it_leads_to_the_operators_anchor(defect):
    """Without keyCertSign, or without basicConstraints (which only a trust anchor may lack), it issues nothing."""
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_b.issue("Shared Intermediate", ca=True)
    cannot_sign = root_a.issue(subject=inter.subject, ca=True, key=inter.key, **defect)
    leaf = inter.leaf(MAIL)
    result = analyze([leaf, inter, cannot_sign], roots=[root_a], system=[root_b])
    assert chain_of(result) == fingerprints([leaf, inter]) and root_of(result) == sha256_hex(root_b.der)


@pytest.mark.parametrize("allowed", [{"path_length": 2}, {"basic_constraints": False}])
def test_an_operators_anchor_allowed_to_sign_keeps_its_path(allowed):
    """A pathLen met exactly; no basicConstraints at all, which a trust anchor may lack."""
    root_a, root_b = pki.root("Root A", **allowed), pki.root("Root B")
    upper = root_a.issue("Upper CA", ca=True)
    lower = upper.issue("Lower CA", ca=True)
    leaf = lower.leaf(MAIL)
    result = analyze([leaf, lower, upper, pki.cross_sign(upper, root_b)], roots=[root_a], system=[root_b])
    assert root_of(result) == sha256_hex(root_a.der) and result.trusted


def test_a_cross_sign_valid_from_this_second_keeps_the_operators_anchor(cross):
    """Validity includes notBefore itself, also when paths are ranked."""
    inter_x = pki.cross_sign(cross["inter"], cross["root_b"], not_before=pki.NOW)
    result = analyze([cross["leaf"], cross["inter"], inter_x], roots=[cross["root_b"]], system=[cross["root_a"]],
                     valid_at=pki.NOW)
    assert chain_of(result) == fingerprints([cross["leaf"], inter_x]) and result.trusted


def test_a_path_to_an_anchor_wins_over_a_clean_one_to_an_untrusted_root():
    """The expired intermediate is what to fix; the other path would still end at a root no client trusts."""
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_a.issue("Shared Intermediate", ca=True, not_before=pki.NOW - 9 * pki.DAY, not_after=pki.NOW - pki.DAY)
    leaf = inter.leaf(MAIL)
    result = analyze([leaf, inter, pki.cross_sign(inter, root_b)], pool=[root_b], system=[root_a])
    assert root_of(result) == sha256_hex(root_a.der) and "expired" in codes(result)


def test_choice_is_the_same_for_every_input_order(cross):
    decoy = pki.lookalike(cross["inter"], cross["root_a"])
    items = [cross["leaf"], cross["inter"], cross["inter_x"], decoy]
    outcomes = set()
    for given in itertools.permutations(items):
        for pool in ((), tuple(reversed(items))):
            result = analyze(list(given), pool=pool, system=[cross["root_a"], cross["root_b"]])
            outcomes.add((tuple(chain_of(result)), root_of(result),
                          tuple(tuple(e.info.sha256 for e in path) for path in result.alternatives),
                          tuple(sorted(set(codes(result)) - {"wrong_order"}))))
    assert len(outcomes) == 1, outcomes


# --- cycles, constraints, trust --------------------------------------------------------------------------------------

@pytest.mark.parametrize("key_ids", [True, False])
def test_cross_signs_that_form_a_cycle_end_in_chain_cycle(key_ids):
    root_a, root_b = pki.root("CA A", key_ids=key_ids), pki.root("CA B", key_ids=key_ids)
    a_by_b, b_by_a = pki.cross_sign(root_a, root_b, key_ids=key_ids), pki.cross_sign(root_b, root_a, key_ids=key_ids)
    leaf = root_a.leaf(MAIL, key_ids=key_ids)
    result = analyze([leaf, a_by_b, b_by_a])
    assert not result.trusted
    found = only(result, "chain_cycle")
    assert found.severity == "error"
    assert "missing_intermediate" not in codes(result)
    assert chain_of(result) == fingerprints([leaf, a_by_b, b_by_a])


def test_three_ca_cycle_terminates():
    cas = [pki.root(f"Ring CA {n}") for n in range(3)]
    ring = [pki.cross_sign(cas[n], cas[(n + 1) % 3]) for n in range(3)]
    leaf = cas[0].leaf(MAIL)
    result = analyze([leaf, *ring], pool=ring)
    assert "chain_cycle" in codes(result)
    assert len(result.chain) == 4


@pytest.mark.parametrize("key_ids", [True, False])
def test_a_self_issued_ca_whose_issuer_is_missing_is_no_cycle(key_ids):
    """A key-rollover certificate (same name, new key, signed by the old key) names itself as issuer."""
    old = pki.root("Rollover CA", key_ids=key_ids)
    new_with_old = old.issue(subject=old.subject, ca=True, key_ids=key_ids)
    leaf = new_with_old.leaf(MAIL, key_ids=key_ids)
    result = analyze([leaf, new_with_old])
    assert codes(result) == ["missing_intermediate"]
    assert chain_of(result) == fingerprints([leaf, new_with_old])
    result = analyze([leaf, new_with_old], roots=[old])
    assert result.trusted and result.findings == ()


@pytest.mark.parametrize("key_ids", [True, False])
def test_two_rollovers_whose_oldest_key_is_missing_are_no_cycle(key_ids):
    """The CA's name signed by three keys in turn, the first one's certificate missing: the newer rollover has the
    name the older one names as issuer but did not sign it."""
    first = pki.root("Rollover CA", key_ids=key_ids)
    second = first.issue(subject=first.subject, ca=True, key_ids=key_ids)
    third = second.issue(subject=first.subject, ca=True, key_ids=key_ids)
    leaf = third.leaf(MAIL, key_ids=key_ids)
    result = analyze([leaf, third, second])
    assert "missing_intermediate" in codes(result) and "chain_cycle" not in codes(result)
    assert chain_of(result) == fingerprints([leaf, third, second])


@pytest.mark.parametrize(("options", "why"), [
    ({"ca": False}, "basicConstraints cA is false"),
    ({"ca": False, "key_usage": None}, "basicConstraints cA is false"),
    ({"ca": True, "basic_constraints": False}, "not a CA"),
    ({"ca": True, "key_usage": "encipher_only"}, "keyUsage lacks keyCertSign"),
])
def test_issuer_that_may_not_sign_is_not_a_ca(options, why):
    top = pki.root()
    inter = top.issue("Not Really CA", **options)
    leaf = inter.leaf(MAIL)
    result = analyze([leaf, inter], roots=[top])
    assert chain_of(result) == fingerprints([leaf, inter])
    found = only(result, "not_a_ca")
    assert found.severity == "error" and why in found.message and "Not Really CA" in found.message
    assert (found.certificate.index, found.certificate.sha256) == (1, sha256_hex(inter.der))


def test_anchor_without_basic_constraints_may_sign():
    top = pki.root("Version 1 Style Root", basic_constraints=False)
    inter = top.issue("Issuing CA", ca=True)
    result = analyze([inter.leaf(MAIL), inter], roots=[top])
    assert result.trusted and result.findings == ()


@pytest.mark.parametrize(("root_len", "inter_len", "depth", "exceeded_by"), [
    (0, None, 1, None),       # root -> leaf needs no intermediate
    (0, None, 2, "root"),     # root pathLen 0 with one intermediate below
    (1, None, 2, None),
    (1, None, 3, "root"),
    (None, 0, 2, None),       # the issuing CA's own pathLen 0 is fine
    (None, 0, 3, "inter"),    # ... but not for a CA above another intermediate
])
def test_path_length_constraint(root_len, inter_len, depth, exceeded_by):
    top = pki.root(path_length=root_len)
    issuer, intermediates = top, []
    for level in range(depth - 1):
        issuer = issuer.issue(f"Level {level + 1} CA", ca=True, path_length=inter_len if level == 0 else None)
        intermediates.append(issuer)
    leaf = issuer.leaf(MAIL)
    served = [leaf, *reversed(intermediates)]
    result = analyze(served, roots=[top])
    assert chain_of(result) == fingerprints(served)
    if exceeded_by is None:
        assert result.findings == ()
        return
    found = only(result, "path_length_exceeded")
    expected = top if exceeded_by == "root" else intermediates[0]
    assert found.severity == "error" and found.certificate.sha256 == sha256_hex(expected.der)


def test_signature_budget_stops_the_search(deep):
    index = index_of(given=[deep.leaf], pool=deep.intermediates, supplied=[deep.root])
    leaf = index.given[0]
    full = chain.search_paths(index, leaf)
    assert (full.signature_checks, full.budget_exhausted) == (3, False)
    assert [p.kind for p in full.paths] == [chain.TRUSTED]
    limited = chain.search_paths(index, leaf, max_signature_checks=1)
    assert (limited.signature_checks, limited.budget_exhausted) == (1, True)
    assert [p.kind for p in limited.paths] == [chain.INCOMPLETE]


@pytest.mark.parametrize("real_issuer", ["missing", "in_bundle"])
def test_adversarial_pool_of_same_name_same_key_id_decoys_hits_the_budget(deep, real_issuer):
    """Look-alikes cost a signature check each until the real issuer leads to an anchor, and the budget stops
    them. When the bundle holds the real issuer it is tried first (given certificates first), so the chain costs
    one check per link and no look-alike is checked at all."""
    issuer = deep.intermediates[-1]
    decoys = [pki.lookalike(issuer, deep.intermediates[0]) for _decoy in range(chain.MAX_SIGNATURE_CHECKS + 1)]
    given = [deep.leaf] if real_issuer == "missing" else [deep.leaf, *reversed(deep.intermediates)]
    result = analyze(given, pool=decoys, roots=[deep.root])
    assert result.trusted is (real_issuer == "in_bundle")
    assert all(entry.info.sha256 not in fingerprints(decoys) for entry in result.chain)
    if real_issuer == "in_bundle":
        assert result.signature_checks == len(deep.served_chain)  # each link, the last one to the root
        assert "chain_search_limit" not in codes(result)
        return
    assert result.signature_checks == chain.MAX_SIGNATURE_CHECKS == 400  # the limit docs/validation.md states
    found = only(result, "chain_search_limit")
    assert found.severity == "error"
    assert "after 400 signature checks" in found.message
    assert found.certificate.sha256 == sha256_hex(deep.leaf.der)


def test_look_alikes_are_not_checked_after_the_real_issuer_reached_an_anchor(deep):
    """A pool of look-alikes (the issuer's name and key identifier, another key) and the real issuer: once the
    real issuer has led to an anchor, no look-alike costs a check; a further leaf tries the proven issuer first."""
    issuer = deep.intermediates[-1]
    decoys = [pki.lookalike(issuer, deep.intermediates[0]) for _decoy in range(20)]
    judgement = analysis.Judgement(pool=loaded([*decoys, *deep.intermediates], "pool.pem", check=False),
                                   roots=loaded([deep.root], "roots.pem"))
    first = analysis.analyze(judgement.request(loaded([deep.leaf])))
    # Candidates of one role are tried in SHA-256 order: the look-alikes before the real issuer cost a check each.
    tried_before = sum(hashlib.sha256(decoy.der).digest() < hashlib.sha256(issuer.der).digest() for decoy in decoys)
    assert first.trusted and first.signature_checks == len(deep.served_chain) + tried_before
    further = analysis.analyze(judgement.request(loaded([issuer.leaf(MAIL)])))
    assert further.trusted and further.signature_checks == len(deep.served_chain)


def test_self_signed_root_not_among_anchors_is_untrusted(deep):
    result = analyze(deep.served_chain, pool=[deep.root])
    assert not result.trusted and result.complete
    assert root_of(result) == sha256_hex(deep.root.der)
    found = only(result, "untrusted_root")
    assert found.certificate.index is None and found.certificate.sha256 == sha256_hex(deep.root.der)
    assert "Test Root CA" in found.message and "(pool)" in found.message


@pytest.mark.parametrize("given", ["served", "leaf_only"])
def test_intermediate_among_the_roots_is_still_served(deep, given):
    """A private CA's bundle in roots often holds its intermediates too; clients trust only the root."""
    bundle = deep.served_chain if given == "served" else [deep.leaf]
    result = analyze(bundle, roots=[*deep.intermediates, deep.root])
    assert chain_of(result) == fingerprints(deep.served_chain)
    assert root_of(result) == sha256_hex(deep.root.der)
    assert "root_included" not in codes(result)
    assert ("missing_intermediate" in codes(result)) == (given == "leaf_only")


@pytest.mark.parametrize("pool", ["empty", "untrusted_root"])
def test_intermediate_anchor_without_its_root_ends_the_path(deep, pool):
    """Anchoring at an intermediate (its root not trusted) is allowed: the path ends there."""
    result = analyze([deep.leaf, deep.intermediates[1]], roots=[deep.intermediates[0]],
                     pool=[deep.root] if pool == "untrusted_root" else ())
    assert result.trusted and result.findings == ()
    assert chain_of(result) == fingerprints([deep.leaf, deep.intermediates[1]])
    assert root_of(result) == sha256_hex(deep.intermediates[0].der)


def test_an_intermediate_anchor_that_issued_the_leaf_ends_the_path(deep):
    issuer = deep.intermediates[-1]
    result = analyze([deep.leaf], roots=[issuer])
    assert result.trusted and result.findings == ()
    assert chain_of(result) == fingerprints([deep.leaf]) and root_of(result) == sha256_hex(issuer.der)


@pytest.mark.parametrize("anchor", ["root", "intermediate"])
def test_a_path_of_exactly_max_chain_depth_ending_at_any_top_is_not_too_deep(anchor):
    """The top of a path counts toward no limit, be it an untrusted self-signed root or an intermediate among the
    roots."""
    h = pki.hierarchy(MAIL, depth=3)
    if anchor == "root":
        result = analyze([*h.served_chain, h.root], rules=pathrules.Rules(max_chain_depth=3))
        assert codes(result) == ["root_included", "untrusted_root"]
    else:
        result = analyze(h.served_chain[:-1], roots=[h.intermediates[0]], rules=pathrules.Rules(max_chain_depth=2))
        assert result.trusted and codes(result) == []


def test_a_ca_in_the_pool_and_among_the_roots_is_named_by_its_pool_location():
    top = pki.root(path_length=0)
    inter = top.issue("Issuing CA", ca=True)
    result = analyze([inter.leaf(MAIL), inter], pool=[top], roots=[top])
    assert "pool.pem (pool)" in only(result, "path_length_exceeded").message


def test_a_given_certificate_added_after_the_lazy_anchors_takes_its_anchor_role():
    key = pki.new_key()
    leaf = pki.build_cert(subject=pki.name(MAIL), public_key=key.public_key(), issuer=None, ca=False,
                          dns_names=[MAIL], signing_key=key)
    der = pki.Issued(leaf, key).der
    index = chain.CertificateIndex()
    index.add_lazily([([load.LoadedCertificate(der, "roots.pem", 1)], chain.SUPPLIED_ANCHOR)])
    node = index.add(load.LoadedCertificate(der, "bundle.pem", 1), chain.GIVEN)
    assert node.anchor == chain.SUPPLIED_ANCHOR
    assert [path.kind for path in chain.search_paths(index, node).paths] == [chain.TRUSTED]


def test_system_anchor_is_trusted_and_named_as_trust_store(deep):
    result = analyze(deep.served_chain, system=[deep.root])
    assert result.trusted and result.findings == ()
    assert result.root.source.endswith("(system trust store)")


def test_self_signed_leaf_in_roots_is_trusted():
    key = pki.new_key()
    cert = pki.build_cert(subject=pki.name(MAIL), public_key=key.public_key(), issuer=None, ca=False,
                          dns_names=[MAIL], signing_key=key)
    leaf = pki.Issued(cert, key)
    assert codes(analyze([leaf])) == ["untrusted_root"]
    result = analyze([leaf], roots=[leaf])
    assert result.trusted and chain_of(result) == fingerprints([leaf])
    assert "root_included" not in codes(result)


def test_shared_pool_index_gives_the_same_analyses(deep):
    """A Judgement's pool index serves many leaves; each result equals a fresh analysis of the same input, but
    for the signature checks, fewer when an issuer proven by an earlier leaf is tried before its look-alikes."""
    decoys = [pki.lookalike(deep.intermediates[-1], deep.intermediates[0]) for _decoy in range(3)]
    judgement = analysis.Judgement(pool=loaded([*decoys, *deep.intermediates], "pool.pem", check=False),
                                   roots=loaded([deep.root], "roots.pem"), names=(MAIL,))
    issuer = deep.intermediates[-1]
    for given in ([issuer.leaf(MAIL)], [deep.leaf], [deep.leaf, issuer], [issuer.leaf(MAIL), deep.root]):
        shared = analysis.analyze(judgement.request(loaded(given)))
        fresh = analysis.analyze(dataclasses.replace(judgement.request(loaded(given)), indexed=None))
        shared_result, fresh_result = shared.as_dict(), fresh.as_dict()
        assert shared_result.pop("signature_checks") <= fresh_result.pop("signature_checks")
        assert shared_result == fresh_result
        assert shared.findings == fresh.findings and shared.trusted


def test_pool_blocks_that_are_no_certificate_are_reported_in_order(deep):
    """Blocks not shaped like a certificate are read at once, and each is one parse_error, in the pool's order."""
    pool = [load.LoadedCertificate(deep.intermediates[number // 2 % 2].der, "pool.pem", number)
            for number in range(1, 11)]
    odd = {2: b"\x30\x03\x02\x01\x01",  # a one-byte length
           4: b"\x02\x82\x00\x02\x01\x01",  # no SEQUENCE
           6: b"\x30\x83\x00\x02\x01\x01",  # a three-byte length
           8: deep.intermediates[0].der[:-1],  # cut short
           10: b"\x02\x01\x01"}  # shorter than any header
    for number, der in odd.items():
        pool[number - 1] = load.LoadedCertificate(der, "pool.pem", number)
    result = analysis.analyze(analysis.Request(certificates=loaded([deep.leaf]), pool=load.Loaded(tuple(pool)),
                                               roots=loaded([deep.root], "roots.pem")))
    assert chain_of(result) == fingerprints(deep.served_chain)
    damaged = [f.message for f in result.findings if f.code == "parse_error"]
    assert len(damaged) == len(odd)
    assert all(f"block {number} of pool.pem" in message for number, message in zip(odd, damaged))


def test_damaged_pool_certificates_no_search_needs_are_neither_parsed_nor_reported():
    """A CA's name and key identifier are also in the issuer field and the authorityKeyIdentifier of every certificate
    it issued: the byte search skips those without parsing them, so damage there costs nothing and says nothing."""
    top = pki.root()
    inter = top.issue("Issuing CA", ca=True)
    printable = x509.Name([x509.NameAttribute(attribute.oid, attribute.value, _ASN1Type.PrintableString)
                           for attribute in inter.subject])
    reencoded = top.issue(subject=printable, ca=True, key=inter.key)  # found by key identifier only
    children = [inter.leaf("other.example.test").der,  # validity in UTCTime
                inter.leaf("later.example.test", not_before=pki.NOW.replace(year=2051),
                           not_after=pki.NOW.replace(year=2052)).der]  # in GeneralizedTime
    pool = load.Loaded(tuple(load.LoadedCertificate(child[:5] + b"\x84" + child[6:], "pool.pem", number)
                             for number, child in enumerate(children, 1)))  # damaged as in the test below
    leaf = inter.leaf(MAIL)
    result = analysis.analyze(analysis.Request(certificates=loaded([leaf, reencoded]), pool=pool,
                                               roots=loaded([top], "roots.pem")))
    assert chain_of(result) == fingerprints([leaf, reencoded]) and result.trusted and result.findings == ()


def test_damaged_pool_certificate_is_reported_when_a_search_reaches_it(deep):
    """Pool certificates are parsed when a search finds them: damage inside an intact envelope is a warning then."""
    issuer = deep.intermediates[-1]
    good = issuer.der
    assert good[4:6] == b"\x30\x82"
    damaged = good[:5] + b"\x84" + good[6:]  # tbsCertificate claims a 4-byte length; the envelope is intact
    pool = load.Loaded((load.LoadedCertificate(damaged, "pool.pem", 1),
                        load.LoadedCertificate(deep.intermediates[0].der, "pool.pem", 2)))
    result = analysis.analyze(analysis.Request(certificates=loaded([deep.leaf, issuer]), pool=pool,
                                               roots=loaded([deep.root], "roots.pem")))
    assert result.trusted
    found = only(result, "parse_error")
    assert found.severity == "warning" and "block 1 of pool.pem" in found.message


P256 = bytes.fromhex("2a8648ce3d030107")  # the OID of the curve, as in every ECDSA test key's SubjectPublicKeyInfo


def unusable_key(issued: pki.Issued, signer: pki.Issued, how: str) -> pki.Issued:
    """issued, signed again by signer, with a public key cryptography cannot use: on an unknown curve (newer
    cryptography raises UnsupportedAlgorithm, older ValueError) or a point off its curve (ValueError)."""
    def edit(tbs: bytes) -> bytes:
        end = tbs.index(P256) + len(P256)
        if how == "unknown curve":
            return tbs[:end - 1] + b"\x09" + tbs[end:]
        x = end + 4  # after the curve: BIT STRING 03 42, no unused bits 00, uncompressed point 04, then x
        return tbs[:x] + bytes((tbs[x] ^ 0xFF,)) + tbs[x + 1:]
    return pki.resigned(issued, signer, edit)


def duplicate_extension(issuer: pki.Issued) -> pki.Issued:
    """A leaf with two extensions of one OID (builders refuse that, so the second OID is rewritten and the leaf
    signed again); cryptography raises DuplicateExtension when the extensions are read."""
    private = [(x509.ObjectIdentifier(f"1.3.6.1.4.1.1.{arc}"), b"\x05\x00") for arc in (1, 2)]
    return pki.resigned(issuer.leaf(MAIL, raw_extensions=private), issuer,
                        lambda tbs: tbs.replace(bytes.fromhex("2b0601040101 02"), bytes.fromhex("2b0601040101 01")))


@pytest.mark.parametrize("spoil", ["value", "duplicate"])
def test_given_certificate_whose_extensions_cannot_be_parsed_is_a_parse_error(deep, spoil):
    """cryptography parses extensions only when they are read: a given certificate is read whole at once, so the
    damage is an error naming its block, not a traceback later, and the rest of the bundle is still analysed."""
    issuer = deep.intermediates[-1]
    spoiled = (issuer.leaf(MAIL, raw_extensions=pki.UNPARSABLE_EXTENSION) if spoil == "value"
               else duplicate_extension(issuer))
    result = analyze([spoiled, *deep.served_chain], roots=[deep.root])
    found = only(result, "parse_error")
    assert found.severity == "error", found
    assert found.message.startswith("block 1 of bundle.pem cannot be read: the certificate's extensions cannot be "
                                    "parsed ("), found.message
    assert result.trusted and chain_of(result) == fingerprints(deep.served_chain)


@pytest.mark.parametrize("how", ["unknown curve", "point off the curve"])
def test_given_certificate_whose_public_key_cannot_be_used_is_a_parse_error(deep, how):
    issuer = deep.intermediates[-1]
    spoiled = unusable_key(issuer.leaf(MAIL), issuer, how)
    result = analyze([spoiled, *deep.served_chain], roots=[deep.root])
    found = only(result, "parse_error")
    assert found.severity == "error" and found.message.startswith(
        "block 1 of bundle.pem cannot be read: the certificate's public key "), found.message
    assert result.trusted and chain_of(result) == fingerprints(deep.served_chain)


def spoiled_issuer(deep, part: str) -> pki.Issued:
    """The leaf's issuer again, signed by its own issuer, with extensions or a public key that cannot be parsed."""
    top, issuer = deep.intermediates
    if part == "extensions":  # the same key: it verifies the leaf's signature, and only then is it read whole
        return top.issue(subject=issuer.subject, ca=True, key=issuer.key, raw_extensions=pki.UNPARSABLE_EXTENSION)
    return unusable_key(issuer, top, "point off the curve")


@pytest.mark.parametrize("part", ["extensions", "public key"])
def test_pool_issuer_that_cannot_be_read_is_reported_and_not_used(deep, part):
    """A pool CA is read when a search reaches it: one whose extensions or key cannot be parsed is a warning naming
    it, not a traceback and not a bad signature, and the chain stops below it."""
    result = analyze([deep.leaf], pool=[spoiled_issuer(deep, part), deep.intermediates[0]], roots=[deep.root])
    found = only(result, "parse_error")
    assert found.severity == "warning" and found.message.startswith(
        f"block 1 of pool.pem (pool) cannot be read: the certificate's {part} "), found.message
    assert not result.trusted and chain_of(result) == fingerprints([deep.leaf])
    assert "missing_intermediate" in codes(result) and "bad_signature" not in codes(result)


# nameConstraints permitting an iPAddress 10.0.0.1 without a mask: cryptography raises TypeError (not ValueError)
ADDRESS_AS_NETWORK = bytes.fromhex("300a a008 3006 8704 0a000001")


@pytest.mark.parametrize("where", ["pool", "roots", "bundle"])
def test_ca_whose_name_constraints_hold_an_address_for_a_network_is_a_parse_error(deep, where):
    """A CA certificate (of the pool, the roots or the bundle) whose iPAddress subtree is not a network: a parse_error
    naming it, never a TypeError out of the library."""
    top, issuer = deep.intermediates
    spoiled = top.issue(subject=issuer.subject, ca=True, key=issuer.key,
                        raw_extensions=[(x509.oid.ExtensionOID.NAME_CONSTRAINTS, ADDRESS_AS_NETWORK)])
    result = analyze([deep.leaf, *([spoiled] if where == "bundle" else [])],
                     pool=[spoiled, top] if where == "pool" else [top],
                     roots=[deep.root, *([spoiled] if where == "roots" else [])])
    found = only(result, "parse_error")
    assert "the certificate's extensions cannot be parsed (IPAddress name constraints must be" in found.message
    assert found.severity == ("error" if where == "bundle" else "warning")
    assert not result.trusted


def test_unreadable_twin_of_the_issuer_does_not_hide_the_real_one(deep):
    result = analyze([deep.leaf], pool=[spoiled_issuer(deep, "extensions"), *reversed(deep.intermediates)],
                     roots=[deep.root])
    assert only(result, "parse_error").severity == "warning"
    assert result.trusted and chain_of(result) == fingerprints(deep.served_chain)


@pytest.mark.parametrize("part", ["extensions", "public key"])
def test_unreadable_pool_issuer_is_reported_once_for_every_leaf_of_a_shared_pool(deep, part):
    """Leaves judged on one loaded pool (an audit's endpoints): each result names the damage, once."""
    judgement = analysis.Judgement(pool=loaded([spoiled_issuer(deep, part), deep.intermediates[0]], "pool.pem",
                                               check=False), roots=loaded([deep.root], "roots.pem"))
    issuer = deep.intermediates[-1]
    for leaf in (deep.leaf, issuer.leaf("mx2.example.test"), issuer.leaf("mx3.example.test")):
        result = analysis.analyze(judgement.request(loaded([leaf])))
        assert only(result, "parse_error").severity == "warning" and not result.trusted


def test_randomly_damaged_bundles_and_pools_give_findings_not_tracebacks(deep):
    """Bytes changed, cut or inserted anywhere in the certificates of a bundle and a pool, 300 times: every input is
    analysed, and damage becomes parse_error findings. The PKI is new in each run, so a failure shows its input."""
    rng = random.Random(20261130)

    def pem(ders) -> bytes:
        return b"".join(b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"
                        for der in ders)

    bundle = [item.der for item in deep.served_chain]
    damaged = 0
    for _case in range(300):
        given = pem(pki.mangled(der, rng) if rng.random() < 0.5 else der for der in bundle)
        pool = pem([pki.mangled(deep.intermediates[0].der, rng), *bundle[1:]])
        try:
            result = analysis.analyze(analysis.Request(
                certificates=load.load_bytes(given, "bundle.pem"), pool=load.load_bytes(pool, "pool.pem", check=False),
                roots=load.load_bytes(deep.root.pem, "roots.pem"), names=(MAIL,)))
        except Exception as exc:  # pylint: disable=broad-exception-caught # anything but findings fails
            pytest.fail(f"{exc!r} for the bundle\n{given.decode()}\nwith the pool\n{pool.decode()}\n"
                        f"and the root\n{deep.root.pem.decode()}")
        damaged += "parse_error" in codes(result)
    assert damaged > 100  # the mutations reached the parsers, not only signatures
