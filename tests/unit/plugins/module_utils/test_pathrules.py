# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for path validation as clients do it: path choice under the rules, cross-certificates, damaged leaves, and
the limits of path building (depth, number of paths, self-issued certificates, notBefore)."""
from __future__ import annotations

import collections
import ipaddress
import random
import shutil
import subprocess

import pki
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from ansible_collections.mailops.tls.plugins.module_utils import analysis, chain, load, pathrules
from ansible_collections.mailops.tls.plugins.module_utils.certs import sha256_hex

MAIL = "mail.example.test"
DAMAGED = b"-----BEGIN CERTIFICATE-----\nMIIB!!!this is not base64!!!\n-----END CERTIFICATE-----\n"


def loaded(items, source: str, check: bool = True) -> load.Loaded:
    return load.load_bytes(pki.pem_bundle(*items), source, check=check) if items else load.Loaded()


def analyze(given, pool=(), roots=(), system=(), raw=None, **options) -> analysis.Analysis:
    certificates = load.load_bytes(raw, "bundle.pem") if raw is not None else loaded(given, "bundle.pem")
    return analysis.analyze(analysis.Request(
        certificates=certificates, pool=loaded(pool, "pool.pem", check=False), roots=loaded(roots, "roots.pem"),
        system_roots=loaded(system, "system.pem", check=False), **options))


def codes(result: analysis.Analysis) -> list[str]:
    return sorted(f.code for f in result.findings)


def chain_of(result: analysis.Analysis) -> list[str]:
    return [entry.info.sha256 for entry in result.chain]


def fingerprints(items) -> list[str]:
    return [sha256_hex(item.der) for item in items]


def test_by_default_names_are_judged_as_current_clients_do():
    """Without options, a CN-only certificate matches no name and a chain of 8 intermediates is followed."""
    h = pki.hierarchy(depth=chain.DEFAULT_MAX_CHAIN_DEPTH)
    legacy = h.intermediates[-1].leaf(common_name=MAIL)
    result = analyze([legacy, *h.served_chain[1:]], roots=[h.root], names=(MAIL,))
    assert codes(result) == ["cn_only", "name_mismatch"] and result.trusted


# --- name constraints -------------------------------------------------------------------------------------------------

def constrained_ca(top, *subtrees, excluded=(), **options):
    constraints = x509.NameConstraints(permitted_subtrees=list(subtrees) or None,
                                       excluded_subtrees=list(excluded) or None)
    return top.issue("Constrained CA", ca=True, extensions=[(constraints, True)], **options)


def with_names(issuer, *names, common_name=MAIL):
    """A leaf whose subjectAltName holds exactly names (any kinds)."""
    return issuer.issue(common_name, extensions=[(x509.SubjectAlternativeName(list(names)), False)])


def test_a_cas_own_names_are_not_judged_by_its_own_constraints():
    top = pki.root()
    ca = constrained_ca(top, x509.DNSName("example.org"), dns_names=["ca.other.test"])
    result = analyze([ca.leaf("mail.example.org"), ca], roots=[top])
    assert result.trusted and codes(result) == []


@pytest.mark.parametrize(("cn_fallback", "violation"), [(False, False), (True, True)])
def test_the_cn_is_constrained_only_where_it_counts_as_a_name(cn_fallback, violation):
    top = pki.root()
    ca = constrained_ca(top, x509.DNSName("example.org"))
    leaf = ca.leaf(common_name="mail.other.test")
    result = analyze([leaf, ca], roots=[top], rules=pathrules.Rules(cn_fallback=cn_fallback))
    assert ("name_constraint_violation" in codes(result)) is violation


@pytest.mark.parametrize(("subtree", "mailbox", "allowed"), [
    ("postmaster@example.org", "postmaster@example.org", True),
    ("postmaster@example.org", "abuse@example.org", False),
    ("example.org", "abuse@EXAMPLE.org", True),
    ("example.org", "abuse@mail.example.org", False),
    (".example.org", "abuse@mail.example.org", True),
    (".example.org", "abuse@example.org", False),
])
def test_rfc822_name_constraints(subtree, mailbox, allowed):
    top = pki.root()
    ca = constrained_ca(top, x509.RFC822Name(subtree))
    leaf = with_names(ca, x509.DNSName(MAIL), x509.RFC822Name(mailbox))
    result = analyze([leaf, ca], roots=[top])
    assert result.trusted is allowed, codes(result)


@pytest.mark.parametrize(("subtree", "name", "allowed"), [
    ("example.org", "example.org", True), ("example.org", "mail.example.org", True),
    ("example.org", "mail.badexample.org", False), (".example.org", "example.org", False),
    (".example.org", "mail.example.org", True), ("", "mail.other.test", True),
    ("Example.ORG", "MAIL.example.org", True),
])
def test_dns_name_constraints(subtree, name, allowed):
    top = pki.root()
    ca = constrained_ca(top, x509.DNSName(subtree))
    result = analyze([ca.leaf(name), ca], roots=[top])
    assert result.trusted is allowed, codes(result)


@pytest.mark.parametrize(("excluded", "allowed"), [("mail.example.org", False), ("example.org", False),
                                                   ("a.mail.example.org", True), ("other.test", True)])
def test_a_wildcard_reaching_into_an_excluded_subtree_violates_it(excluded, allowed):
    """*.example.org covers mail.example.org: an excluded mail.example.org refuses it (cryptography's reading)."""
    top = pki.root()
    ca = constrained_ca(top, excluded=[x509.DNSName(excluded)])
    assert analyze([ca.leaf("*.example.org"), ca], roots=[top]).trusted is allowed


def test_excluded_subtrees_win_over_permitted_ones():
    top = pki.root()
    ca = constrained_ca(top, x509.DNSName("example.org"), excluded=[x509.DNSName("bad.example.org")])
    assert analyze([ca.leaf("mail.example.org"), ca], roots=[top]).trusted
    assert not analyze([ca.leaf("mx.bad.example.org"), ca], roots=[top]).trusted


def test_ip_and_directory_name_constraints():
    top = pki.root()
    ca = constrained_ca(top, x509.IPAddress(ipaddress.ip_network("192.0.2.0/24")),
                        x509.DirectoryName(pki.name(None, "mailops test")))
    inside = ca.issue(MAIL, dns_names=[MAIL], ip_addresses=["192.0.2.25"])
    assert analyze([inside, ca], roots=[top]).trusted
    outside = ca.issue(MAIL, dns_names=[MAIL], ip_addresses=["198.51.100.25"])
    assert "name_constraint_violation" in codes(analyze([outside, ca], roots=[top]))
    other_org = ca.issue(subject=pki.name(MAIL, "elsewhere"), dns_names=[MAIL])
    assert "name_constraint_violation" in codes(analyze([other_org, ca], roots=[top]))


def test_an_intermediate_below_a_constrained_ca_is_judged_by_its_constraints():
    top = pki.root()
    outer = constrained_ca(top, x509.DNSName("example.org"))
    inner = outer.issue("Issuing CA", ca=True, dns_names=["ca.other.test"])
    result = analyze([inner.leaf("mail.example.org"), inner, outer], roots=[top])
    assert not result.trusted and codes(result) == ["name_constraint_violation"]
    assert "ca.other.test" in result.findings[0].message


def test_a_self_issued_intermediate_is_exempt_from_name_constraints():
    """RFC 5280 6.1.4 (g): the rollover certificate (the CA's new key under its name, signed by its old key) is not
    judged by the constraints above it, though its own subjectAltName lies outside them; the leaf still is."""
    top = pki.root()
    old = constrained_ca(top, x509.DNSName("example.org"))
    rollover = old.issue(subject=old.subject, ca=True, dns_names=["ca.other.test"])
    result = analyze([rollover.leaf("mail.example.org"), rollover, old], roots=[top])
    assert result.trusted and codes(result) == []
    outside = analyze([rollover.leaf("mail.other.test"), rollover, old], roots=[top])
    assert codes(outside) == ["name_constraint_violation"] and "mail.other.test" in outside.findings[0].message


def test_with_cn_fallback_a_cn_that_is_no_host_name_is_not_constrained():
    top = pki.root()
    ca = constrained_ca(top, x509.DNSName("example.org"))
    leaf = ca.leaf(common_name="Example Mail v2.1")
    assert analyze([leaf, ca], roots=[top], rules=pathrules.Rules(cn_fallback=True)).trusted


def test_an_excluded_subtree_leaves_names_outside_it_alone():
    top = pki.root()
    ca = constrained_ca(top, excluded=[x509.IPAddress(ipaddress.ip_network("198.51.100.0/24")),
                                       x509.DirectoryName(pki.name(None, "elsewhere"))])
    leaf = ca.issue(MAIL, dns_names=[MAIL], ip_addresses=["192.0.2.25"])
    result = analyze([leaf, ca], roots=[top])
    assert result.trusted and codes(result) == []


@pytest.mark.parametrize(("excluded", "too_complex"), [(0, False), (1, True)])
def test_the_name_constraint_budget_allows_exactly_its_comparisons(excluded, too_complex):
    """255 dNSNames and the subject are 256 names; against 256 subtrees they make exactly the budget."""
    assert pathrules.NAME_CONSTRAINT_BUDGET == 256 * 256
    top = pki.root()
    ca = constrained_ca(top, *(x509.DNSName(f"d{n}.example.org") for n in range(256)),
                        excluded=[x509.DNSName("other.test")] * excluded)
    leaf = ca.leaf(*(f"mail.d{n}.example.org" for n in range(255)))
    assert codes(analyze([leaf, ca], roots=[top])) == (["name_constraints_too_complex"] if too_complex else [])


def test_a_root_is_named_as_the_root_in_messages():
    top = pki.root(basic_constraints_critical=False)
    result = analyze([top.leaf(MAIL)], roots=[top])
    assert codes(result) == ["basic_constraints_not_critical"] and "(root)" in result.findings[0].message


def test_a_self_signed_server_certificate_that_is_its_own_anchor_is_only_leaf_is_ca():
    leaf = pki.root(MAIL, dns_names=[MAIL])
    assert codes(analyze([leaf], roots=[leaf], names=(MAIL,))) == ["leaf_is_ca"]


# --- path choice ------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to sign with SHA-1")
def test_a_path_through_a_sha1_signature_loses_to_a_clean_one(tmp_path):
    """The SHA-1 cross-sign expires later and ends at the operator's anchor, so it would win on every other count."""
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_a.issue("Shared Intermediate", ca=True, not_after=pki.NOW + 100 * pki.DAY)
    for name, value in (("inter.key", inter.key_pem()), ("b.key", root_b.key_pem()), ("b.pem", root_b.pem)):
        (tmp_path / name).write_bytes(value)
    subprocess.run(["openssl", "req", "-new", "-key", tmp_path / "inter.key", "-subj", "/O=mailops test/CN=Shared "
                    "Intermediate", "-out", tmp_path / "inter.csr"], check=True, capture_output=True)
    (tmp_path / "ext").write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                                  "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    subprocess.run(["openssl", "x509", "-req", "-in", tmp_path / "inter.csr", "-CA", tmp_path / "b.pem", "-CAkey",
                    tmp_path / "b.key", "-set_serial", "7", "-sha1", "-days", "300", "-extfile", tmp_path / "ext",
                    "-out", tmp_path / "x.pem"], check=True, capture_output=True)
    inter_x = pki.Issued(x509.load_pem_x509_certificate((tmp_path / "x.pem").read_bytes()), inter.key)
    leaf = inter.leaf(MAIL)
    result = analyze([leaf, inter, inter_x], roots=[root_b], system=[root_a])
    assert chain_of(result) == fingerprints([leaf, inter]) and result.root.info.sha256 == sha256_hex(root_a.der)
    assert "weak_signature" not in codes(result) and result.trusted


def test_a_path_through_a_constrained_ca_loses_to_an_unconstrained_one():
    """Root A's intermediate is constrained to example.org; the operator's anchor would win otherwise."""
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    constraints = x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.org")], excluded_subtrees=None)
    inter = root_a.issue("Shared Intermediate", ca=True, extensions=[(constraints, True)])
    inter_x = pki.cross_sign(inter, root_b)
    leaf = inter.leaf("mail.other.test")
    result = analyze([leaf, inter, inter_x], roots=[root_a], system=[root_b])
    assert chain_of(result) == fingerprints([leaf, inter_x]) and result.trusted
    assert "name_constraint_violation" not in codes(result)


def test_a_constraint_violation_on_the_only_path_makes_it_untrusted():
    root = pki.root()
    constraints = x509.NameConstraints(permitted_subtrees=None, excluded_subtrees=[x509.DNSName("other.test")])
    inter = root.issue("Issuing CA", ca=True, extensions=[(constraints, True)])
    leaf = inter.leaf("mail.other.test")
    result = analyze([leaf, inter], roots=[root])
    assert not result.trusted and "name_constraint_violation" in codes(result)


# --- cross-certificates and damaged leaves ---------------------------------------------------------------------------

def test_a_cross_certificate_of_the_root_is_not_unrelated():
    """Let's Encrypt's shape: ISRG Root X1 self-signed and cross-signed by the old DST Root, which is gone."""
    old, new = pki.root("Old Root"), pki.root("New Root")
    cross = pki.cross_sign(new, old)
    inter = new.issue("Issuing CA", ca=True)
    leaf = inter.leaf(MAIL)
    result = analyze([leaf, inter, cross], system=[new])
    assert result.trusted and chain_of(result) == fingerprints([leaf, inter])
    assert "unrelated_certificate" not in codes(result), [f.message for f in result.findings]


def test_a_twin_of_a_served_intermediate_is_surplus():
    """The intermediate's other certificate leads to a root that is not trusted: a client that takes it first (as
    OpenSSL does) never finds the trusted root, so it must go."""
    old, new = pki.root("Old Root"), pki.root("New Root")
    inter = new.issue("Issuing CA", ca=True)
    twin = pki.cross_sign(inter, old)
    leaf = inter.leaf(MAIL)
    result = analyze([leaf, twin, inter], system=[new])
    assert result.trusted and chain_of(result) == fingerprints([leaf, inter])
    assert "unrelated_certificate" in codes(result)


def test_an_unrelated_ca_is_still_unrelated():
    """A CA of the bundle with another key is not a cross-certificate."""
    h = pki.hierarchy(MAIL)
    other = pki.root("Other Root").issue("Issuing CA", ca=True)
    result = analyze([*h.served_chain, other], roots=[h.root])
    assert codes(result) == ["unrelated_certificate"]


def test_a_damaged_leaf_block_does_not_make_the_intermediate_a_trusted_leaf():
    h = pki.hierarchy(MAIL)
    result = analyze((), raw=DAMAGED + h.intermediates[0].pem, roots=[h.root], names=(MAIL,))
    assert not result.trusted
    assert {"parse_error", "ca_as_leaf", "name_mismatch"} <= set(codes(result))


# --- the limits of path building -------------------------------------------------------------------------------------

def test_a_chain_deeper_than_the_limit_is_not_followed_to_its_root():
    h = pki.hierarchy(MAIL, depth=chain.DEFAULT_MAX_CHAIN_DEPTH + 1)
    result = analyze(h.served_chain, roots=[h.root])
    assert not result.trusted and "chain_too_deep" in codes(result) and "missing_intermediate" not in codes(result)
    assert len(result.chain) == chain.DEFAULT_MAX_CHAIN_DEPTH + 1  # the leaf and the intermediates allowed
    at_limit = pki.hierarchy(MAIL, depth=chain.DEFAULT_MAX_CHAIN_DEPTH)
    assert analyze(at_limit.served_chain, roots=[at_limit.root]).trusted


def test_max_chain_depth_can_be_raised():
    h = pki.hierarchy(MAIL, depth=chain.DEFAULT_MAX_CHAIN_DEPTH + 1)
    result = analyze(h.served_chain, roots=[h.root], rules=pathrules.Rules(max_chain_depth=9))
    assert result.trusted and codes(result) == []


def test_a_leaf_among_the_roots_does_not_end_its_own_path():
    """A server certificate given in roots too (not self-signed) is no chain by itself: clients still need its
    issuer."""
    h = pki.hierarchy(MAIL)
    result = analyze([h.leaf], roots=[h.leaf])
    assert not result.trusted and "missing_intermediate" in codes(result)


def test_a_cross_sign_mesh_yields_at_most_max_paths():
    """Three levels of CAs, each cross-signed by four CAs of the level above: 4 * 4 * 4 = 64 paths to the roots."""
    roots = [pki.root(f"Root {n}") for n in range(4)]
    level = roots
    mesh = []
    for depth in range(3):
        keys = [pki.new_key() for _n in range(4)]
        level = [[parent.issue(subject=pki.name(f"CA {depth}.{n}"), ca=True, key=keys[n]) for parent in level]
                 for n in range(4)]
        mesh += [cert for versions in level for cert in versions]
        level = [versions[0] for versions in level]
    leaf = level[0].leaf(MAIL)
    index = chain.CertificateIndex()
    node = index.add(load.LoadedCertificate(leaf.der, "leaf.pem", 1), chain.GIVEN)
    for number, cert in enumerate(mesh, 1):
        index.add(load.LoadedCertificate(cert.der, "mesh.pem", number), chain.POOL)
    for number, cert in enumerate(roots, 1):
        index.add(load.LoadedCertificate(cert.der, "roots.pem", number), chain.SUPPLIED_ANCHOR)
    found = chain.search_paths(index, node, max_signature_checks=10_000)
    assert len(found.paths) == chain.MAX_PATHS == 32  # the limit docs/validation.md states
    assert all(path.kind == chain.TRUSTED for path in found.paths)


def test_a_self_issued_rollover_certificate_does_not_count_toward_path_length():
    """RFC 5280 6.1.4 (l): the old root (pathLen 0) signed its new key under the same name; the CA then issued the
    leaf with the new key. No intermediate that counts stands below the old root."""
    old = pki.root("Rollover CA", path_length=0)
    rollover = old.issue(subject=old.subject, ca=True)
    leaf = rollover.leaf(MAIL)
    result = analyze([leaf, rollover], roots=[old])
    assert result.trusted and chain_of(result) == fingerprints([leaf, rollover])
    assert "path_length_exceeded" not in codes(result)


def test_a_not_yet_valid_cross_sign_loses_to_a_valid_path():
    """The cross-sign by the operator's root is valid longer, so without notBefore it would win."""
    root_a, root_b = pki.root("Root A"), pki.root("Root B")
    inter = root_a.issue("Shared Intermediate", ca=True)
    inter_x = pki.cross_sign(inter, root_b, not_before=pki.NOW + 10 * pki.DAY, not_after=pki.NOW + 900 * pki.DAY)
    leaf = inter.leaf(MAIL)
    result = analyze([leaf, inter, inter_x], roots=[root_b], system=[root_a])
    assert chain_of(result) == fingerprints([leaf, inter]) and result.root.info.sha256 == sha256_hex(root_a.der)
    assert "not_yet_valid" not in codes(result) and result.alternatives == ()


# --- robustness: mutated extensions ----------------------------------------------------------------------------------

def test_mutated_extensions_give_findings_never_tracebacks():
    """Extension values of a CA (in the pool, the roots and the bundle) and of the leaf, changed byte by byte and signed
    again so the signature still verifies: describe and the path search (with every rule) must turn whatever
    cryptography raises (ValueError, TypeError, KeyError, DuplicateExtension... on the newest and the oldest version)
    into parse_error findings. 300 cases from a fixed seed."""
    rng = random.Random(20261203)
    top = pki.root()
    template = top.issue("Template CA", ca=True, dns_names=["ca.example.test"], ip_addresses=["192.0.2.1"],
                         aia_ca_issuers="http://ca.example.test/ca.crt", extensions=[(x509.NameConstraints(
                             [x509.DNSName("example.test"), x509.IPAddress(ipaddress.ip_network("192.0.2.0/24")),
                              x509.RFC822Name("example.test"), x509.DirectoryName(pki.name("x"))],
                             [x509.DNSName("bad.example.test")]), True)])
    values = [(extension.oid, extension.value.public_bytes()) for extension in template.cert.extensions]
    outcomes = collections.Counter()
    for case in range(300):
        oid, value = rng.choice(values)
        spoiled = [(oid, pki.mangled(value, rng, most=4))]
        key = pki.new_key()
        ca = pki.Issued(pki.build_cert(subject=pki.name("Fuzzed CA"), public_key=key.public_key(), issuer=top, ca=True,
                                       basic_constraints=oid != ExtensionOID.BASIC_CONSTRAINTS, key_ids=False,
                                       key_usage=None, raw_extensions=spoiled), key)
        leaf_extensions = spoiled if case % 3 == 0 else ()
        leaf = pki.Issued(pki.build_cert(subject=pki.name(MAIL), public_key=pki.new_key().public_key(), issuer=ca,
                                         ca=False, dns_names=[MAIL] if oid != ExtensionOID.SUBJECT_ALTERNATIVE_NAME
                                         else (), key_ids=False, raw_extensions=leaf_extensions,
                                         key_usage=None if oid == ExtensionOID.KEY_USAGE else "default",
                                         basic_constraints=oid != ExtensionOID.BASIC_CONSTRAINTS,
                                         server_auth=None if oid == ExtensionOID.EXTENDED_KEY_USAGE else True), None)
        where = ("pool", "roots", "bundle")[case % 3]
        try:
            result = analyze([leaf, *([ca] if where == "bundle" else [])], pool=[ca] if where == "pool" else [],
                             roots=[top, *([ca] if where == "roots" else [])], names=(MAIL,))
        except Exception as exc:  # pylint: disable=broad-exception-caught # anything but findings fails
            pytest.fail(f"{exc!r} for the CA\n{ca.pem.decode()}\nand the leaf\n{leaf.pem.decode()}")
        outcomes["parse_error" if "parse_error" in codes(result) else "trusted" if result.trusted else "other"] += 1
    assert outcomes["parse_error"] > 150 and outcomes["trusted"] + outcomes["other"] > 10, outcomes
