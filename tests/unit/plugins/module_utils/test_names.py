# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for names.py: host name and IP address matching against certificate names."""
from __future__ import annotations

import dataclasses
import os

import pytest

from ansible_collections.mailops.tls.plugins.module_utils import names
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.names import (
    NameMatch,
    is_public_suffix,
    load_public_suffix_list,
    match_name,
    match_names,
)

FALLBACK = load_public_suffix_list(())
SYSTEM_PSL = next((path for path in names.SYSTEM_PSL_PATHS if os.path.isfile(path)), None)
needs_system_psl = pytest.mark.skipif(SYSTEM_PSL is None, reason="no system Public Suffix List (package publicsuffix)")

SMALL_PSL = """\
// A tiny list in the real format.
// ===BEGIN ICANN DOMAINS===
com
uk
co.uk
// every label under ck is a suffix, except www.ck
*.ck
!www.ck
// Unicode rule, stored as A-labels after parsing
公司.cn
test
// ===END ICANN DOMAINS===
// ===BEGIN PRIVATE DOMAINS===
github.io
// ===END PRIVATE DOMAINS===
"""


@pytest.fixture
def small_psl_path(tmp_path):
    path = tmp_path / "public_suffix_list.dat"
    path.write_text(SMALL_PSL, encoding="utf-8")
    return str(path)


@pytest.fixture
def small_psl(small_psl_path):
    return load_public_suffix_list((small_psl_path,))


# --- DNS names: (wanted, dns SANs, matches, matched_by, wildcard, words in the reason) -----------------------------

DNS_CASES = [
    # exact
    ("mail.example.test", ["mail.example.test"], True, "mail.example.test", False, "dNSName mail.example.test"),
    ("mail.example.test", ["smtp.example.test", "mx.example.test"], False, None, False, "not among"),
    # case-insensitive, both sides
    ("MAIL.Example.TEST", ["mail.example.test"], True, "mail.example.test", False, "matches"),
    ("mail.example.test", ["Mail.EXAMPLE.test"], True, "Mail.EXAMPLE.test", False, "matches"),
    ("MAIL.example.test", ["mailx.example.test"], False, None, False, "not among"),
    # trailing dots, either side
    ("mail.example.test.", ["mail.example.test"], True, "mail.example.test", False, "matches"),
    ("mail.example.test", ["mail.example.test."], True, "mail.example.test.", False, "matches"),
    ("mail.example.test.", ["mail.example.test."], True, "mail.example.test.", False, "matches"),
    ("mail.example.test.", ["mail.example"], False, None, False, "not among"),
    # exact entries win over wildcards, whatever the order
    ("mail.example.test", ["*.example.test", "mail.example.test"], True, "mail.example.test", False, "matches"),
    # valid wildcard: exactly one label
    ("mail.example.test", ["*.example.test"], True, "*.example.test", True, "wildcard"),
    ("MAIL.example.test.", ["*.Example.Test."], True, "*.Example.Test.", True, "wildcard"),
    ("example.test", ["*.example.test"], False, None, False, "does not cover example.test itself"),
    ("a.b.example.test", ["*.example.test"], False, None, False, "covers one label only"),
    ("mail.other.test", ["*.example.test"], False, None, False, "not among"),
    # invalid wildcard forms never match, and say why
    ("foo.example.test", ["f*.example.test"], False, None, False, "is not valid"),
    ("foo.example.test", ["*oo.example.test"], False, None, False, "is not valid"),
    ("www.mail.example.test", ["www.*.example.test"], False, None, False, "is not valid"),
    ("a.b.example.test", ["*.*.example.test"], False, None, False, "is not valid"),
    ("localhost", ["*"], False, None, False, "is not valid"),
    ("xn--bcher-kva.example.test", ["xn--*.example.test"], False, None, False, "is not valid"),
    ("foo.example.test", ["b*.example.test"], False, None, False, "not among"),
    # a full '*' label covers an A-label (RFC 6125 6.4.3 only forbids '*' inside an IDN label)
    ("xn--bcher-kva.example.test", ["*.example.test"], True, "*.example.test", True, "wildcard"),
    ("bücher.example.test", ["*.example.test"], True, "*.example.test", True, "wildcard"),
    # IDN: requested U-label against A-label SAN; Unicode (raw non-ASCII bytes) in a dNSName matches nothing
    ("bücher.example", ["xn--bcher-kva.example"], True, "xn--bcher-kva.example", False, "matches"),
    ("BÜCHER.example", ["xn--bcher-kva.example"], True, "xn--bcher-kva.example", False, "matches"),
    ("xn--bcher-kva.example", ["bücher.example"], False, None, False, "not ASCII"),
    ("bücher.example", ["bücher.example"], False, None, False, "not ASCII"),
    ("bücher.example", ["XN--BCHER-KVA.EXAMPLE."], True, "XN--BCHER-KVA.EXAMPLE.", False, "matches"),
    ("bucher.example", ["xn--bcher-kva.example"], False, None, False, "not among"),
    ("bücher.example", ["bucher.example"], False, None, False, "not among"),
    # IDNA 2008 / UTS #46 non-transitional: sharp s is its own letter (IDNA 2003 mapped it to ss)
    ("straße.example", ["strasse.example"], False, None, False, "not among"),
    ("mail.straße.de", ["mail.xn--strae-oqa.de"], True, "mail.xn--strae-oqa.de", False, "matches"),
    ("mail.ΣΊΣΥΦΟΣ.gr", ["mail.xn--kxa6ajbbmh.gr"], False, None, False, "not among"),  # final sigma is kept
    ("mail.σίσυφος.gr", ["mail.xn--kxa6ajbbmh.gr"], True, "mail.xn--kxa6ajbbmh.gr", False, "matches"),
    # white space in a dNSName is never stripped (OpenSSL, Python's ssl and cryptography reject it)
    ("mail.example.test", ["mail.example.test "], False, None, False, "white space"),
    ("mail.example.test", ["mail.example.test\t"], False, None, False, "(mail.example.test\\x09)"),  # escaped
    ("mail.example.test", [" mail.example.test"], False, None, False, "white space"),
    # a requested DNS name never matches an iPAddress-looking dNSName by accident
    ("mail.example.test", ["192.0.2.25"], False, None, False, "not among"),
]


@pytest.mark.parametrize(("wanted", "dns_names", "matches", "matched_by", "wildcard", "reason"), DNS_CASES)
def test_dns_names(wanted, dns_names, matches, matched_by, wildcard, reason):
    result = match_name(wanted, dns_names, [], ["ignored.example.test"], psl=FALLBACK)
    assert result.matches is matches
    assert result.matched_by == matched_by
    assert result.wildcard is wildcard
    assert result.source == ("dns_san" if matches else None)
    assert result.cn_only is False
    assert reason in result.reason
    assert result.name == wanted


@pytest.mark.parametrize(
    ("wanted", "dns_names", "reason"),
    [
        # a wildcard that is not valid before one that covers only the names below the one asked for
        ("mail.example.test", ["*.mail.example.test", "ma*l.example.test"], "is not valid"),
        # a wildcard one label too high before one that would need two labels
        ("z.y.example.test", ["*.z.y.example.test", "*.example.test"], "does not cover z.y.example.test itself"),
        # a wildcard over a public suffix before a wildcard that is not valid
        ("x-mail.co.uk", ["*.co.uk", "*-mail.co.uk"], "co.uk is a public suffix"),
        # the name itself spoilt by white space before a wildcard over a public suffix
        ("mail.co.uk", ["*.co.uk", "mail.co.uk "], "holds white space"),
    ],
)
def test_of_several_near_misses_the_closest_is_the_reason(wanted, dns_names, reason):
    """Whatever the order of the entries, the reason names the entry closest to the name asked for."""
    for entries in (dns_names, dns_names[::-1]):
        result = match_name(wanted, entries, [], [], psl=FALLBACK)
        assert not result.matches and reason in result.reason


@pytest.mark.parametrize(
    ("wanted", "normalized"),
    [
        ("MAIL.Example.TEST.", "mail.example.test"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("Bücher。example", "xn--bcher-kva.example"),  # IDEOGRAPHIC FULL STOP is a dot in IDNA
        ("localhost", "localhost"),
        ("::1", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("[2001:DB8::0001]", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("192.0.2.25", "192.0.2.25"),
    ],
)
def test_normalized(wanted, normalized):
    assert match_name(wanted, [], [], [], psl=FALLBACK).normalized == normalized


# --- public suffixes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("wanted", "entry", "matches"),
    [
        ("example.com", "*.com", False),
        ("example.co.uk", "*.co.uk", False),
        ("example.com.au", "*.com.au", False),
        ("mail.example.com", "*.example.com", True),
        ("mail.example.co.uk", "*.example.co.uk", True),
        ("mail.example.org.uk", "*.example.org.uk", True),
        ("foo.example", "*.example", False),  # any single label is a TLD in the fallback
    ],
)
def test_public_suffix_wildcards_fallback(wanted, entry, matches):
    result = match_name(wanted, [entry], [], [], psl=FALLBACK)
    assert result.matches is matches
    if not matches:
        assert "is a public suffix" in result.reason


@pytest.mark.parametrize(
    ("wanted", "entry", "matches"),
    [
        ("example.com", "*.com", False),
        ("example.co.uk", "*.co.uk", False),
        ("a.foo.ck", "*.foo.ck", False),  # foo.ck is a suffix through *.ck
        ("a.www.ck", "*.www.ck", True),  # ... except www.ck
        ("a.xn--55qx5d.cn", "*.公司.cn", False),  # Unicode rule and Unicode SAN, both as A-labels
        ("a.example.ck", "*.example.ck", False),
        ("a.b.example.ck", "*.b.example.ck", True),
        ("mail.example.com", "*.example.com", True),
        ("mail.org.uk", "*.org.uk", True),  # org.uk is not in the small list; uk is
        ("a.example", "*.example", False),  # default rule: unlisted TLDs are suffixes too
        ("a.github.io", "*.github.io", True),  # private section not counted
    ],
)
def test_public_suffix_wildcards_injected_list(small_psl, wanted, entry, matches):
    assert match_name(wanted, [entry], [], [], psl=small_psl).matches is matches


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("com", True),
        ("COM.", True),
        ("co.uk", True),
        ("example.co.uk", False),
        ("example.com", False),
        ("foo.ck", True),
        ("www.ck", False),
        ("a.foo.ck", False),
        ("ck", True),
        ("公司.cn", True),
        ("xn--55qx5d.cn", True),
        ("org.uk", False),
        ("unlisted", True),
        ("github.io", False),
        ("", False),
        ("*.com", False),
    ],
)
def test_is_public_suffix_injected(small_psl, name, expected):
    assert is_public_suffix(name, small_psl) is expected


def test_rules_after_the_private_section_count(tmp_path):
    path = tmp_path / "private_first.dat"
    path.write_text("// ===BEGIN PRIVATE DOMAINS===\ngithub.io\n// ===END PRIVATE DOMAINS===\n"
                    "// ===BEGIN ICANN DOMAINS===\nco.uk\n// ===END ICANN DOMAINS===\n", encoding="utf-8")
    psl = load_public_suffix_list((str(path),))
    assert is_public_suffix("co.uk", psl) and not is_public_suffix("github.io", psl)


def test_private_section_on_request(small_psl_path):
    with_private = load_public_suffix_list([small_psl_path], include_private=True)
    assert is_public_suffix("github.io", with_private)
    assert not match_name("a.github.io", ["*.github.io"], [], [], psl=with_private).matches


@pytest.mark.parametrize(
    ("name", "expected"),
    [("com", True), ("de", True), ("co.uk", True), ("com.au", True), ("example.com", False), ("a.b.c", False)],
)
def test_is_public_suffix_fallback(name, expected):
    assert FALLBACK.source is None
    assert is_public_suffix(name, FALLBACK) is expected


def test_fallback_when_no_list_is_readable(tmp_path):
    psl = load_public_suffix_list([str(tmp_path / "missing.dat"), str(tmp_path)])
    assert psl.source is None
    assert psl.rules == FALLBACK.rules


def test_first_readable_list_wins_and_is_cached(tmp_path, small_psl_path):
    paths = [str(tmp_path / "missing.dat"), small_psl_path]
    first = load_public_suffix_list(paths)
    assert first.source == small_psl_path
    assert load_public_suffix_list(paths) is first


@needs_system_psl
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("com", True),
        ("co.uk", True),
        ("com.au", True),
        ("kawasaki.jp", False),  # !city.kawasaki.jp style exceptions
        ("foo.kawasaki.jp", True),  # *.kawasaki.jp
        ("city.kawasaki.jp", False),
        ("example.com", False),
        ("github.io", False),  # private section
        ("公司.cn", True),
    ],
)
def test_is_public_suffix_system_list(name, expected):
    psl = load_public_suffix_list()
    assert psl.source == SYSTEM_PSL
    assert is_public_suffix(name, psl) is expected
    assert is_public_suffix(name) is expected


@needs_system_psl
@pytest.mark.parametrize(
    ("wanted", "entry", "matches"),
    [
        ("example.co.uk", "*.co.uk", False),
        ("example.com", "*.com", False),
        ("mail.example.co.uk", "*.example.co.uk", True),
        ("a.github.io", "*.github.io", True),
    ],
)
def test_public_suffix_wildcards_system_list(wanted, entry, matches):
    assert match_name(wanted, [entry], [], []).matches is matches


# --- IP addresses ------------------------------------------------------------------------------------------------

IP_CASES = [
    # (wanted, dns SANs, ip SANs, CNs, matches, matched_by, words in the reason)
    ("192.0.2.25", [], ["192.0.2.25"], [], True, "192.0.2.25", "iPAddress 192.0.2.25"),
    ("192.0.2.25", [], ["192.0.2.26"], [], False, None, "not among"),
    ("::1", [], ["0:0:0:0:0:0:0:1"], [], True, "0:0:0:0:0:0:0:1", "matches"),
    ("0:0:0:0:0:0:0:1", [], ["::1"], [], True, "::1", "matches"),
    ("2001:DB8::1", [], ["2001:db8:0:0::0001"], [], True, "2001:db8:0:0::0001", "matches"),
    ("[2001:db8::1]", [], ["2001:db8::1"], [], True, "2001:db8::1", "matches"),
    ("2001:db8::1", [], ["2001:db8::2"], [], False, None, "not among"),
    # v4 and its v4-mapped v6 form are different iPAddress values (4 vs 16 bytes)
    ("192.0.2.25", [], ["::ffff:192.0.2.25"], [], False, None, "not among"),
    # never a dNSName
    ("192.0.2.25", ["192.0.2.25"], [], [], False, None, "written as a dNSName"),
    ("192.0.2.25", ["192.0.2.25"], ["192.0.2.25"], [], True, "192.0.2.25", "matches"),
    # never the CN, not even in a CN-only certificate
    ("192.0.2.25", [], [], ["192.0.2.25"], False, None, "never used for an IP address"),
    ("::1", [], [], ["0::1"], False, None, "never used for an IP address"),
    ("192.0.2.25", ["mail.example.test"], [], [], False, None, "no iPAddress"),
    ("192.0.2.25", [], [], ["mail.example.test"], False, None, "no iPAddress"),
    ("192.0.2.25", [], [], ["192.0.2.26"], False, None, "no iPAddress"),
    # never a wildcard
    ("192.0.2.25", ["*.0.2.25"], [], [], False, None, "no iPAddress"),
]


@pytest.mark.parametrize(("wanted", "dns_names", "ips", "cns", "matches", "matched_by", "reason"), IP_CASES)
def test_ip_addresses(wanted, dns_names, ips, cns, matches, matched_by, reason):
    result = match_name(wanted, dns_names, ips, cns, psl=FALLBACK)
    assert result.matches is matches
    assert result.matched_by == matched_by
    assert result.source == ("ip_san" if matches else None)
    assert result.wildcard is False
    assert result.cn_only is False
    assert reason in result.reason


# --- subject CN --------------------------------------------------------------------------------------------------

CN_CASES = [
    # (wanted, dns SANs, ip SANs, CNs, matches, source, cn_only, words in the reason)
    ("mail.example.test", [], [], ["mail.example.test"], True, "common_name", True, "without subjectAltName"),
    ("mail.example.test", [], [], ["mail.example.test "], False, None, False, "white space"),
    ("mail.example.test", [], [], ["Mail.Example.Test."], True, "common_name", True, "subject CN"),
    ("mail.example.test", [], [], ["*.example.test"], True, "common_name", True, "wildcard"),
    ("mail.example.test", [], [], ["other.example.test"], False, None, False, "no subjectAltName"),
    ("mail.example.test", [], [], ["Example Mail Service"], False, None, False, "no subjectAltName"),
    ("mail.example.test", [], [], ["a.example.test", "mail.example.test"], True, "common_name", True, "subject CN"),
    ("example.com", [], [], ["*.com"], False, None, False, "public suffix"),
    ("mail.example.test", [], [], [], False, None, False, "neither subjectAltNames nor a subject CN"),
    # any SAN, DNS or IP, switches the CN off
    ("mail.example.test", ["smtp.example.test"], [], ["mail.example.test"], False, None, False, "CN is ignored"),
    ("mail.example.test", [], ["192.0.2.25"], ["mail.example.test"], False, None, False, "CN is ignored"),
    ("mail.example.test", [], ["192.0.2.25"], ["other.example.test"], False, None, False, "iPAddress"),
    ("mail.example.test", ["mail.example.test"], [], ["mail.example.test"], True, "dns_san", False, "dNSName"),
]


@pytest.mark.parametrize(("wanted", "dns_names", "ips", "cns", "matches", "source", "cn_only", "reason"), CN_CASES)
def test_common_name_with_cn_fallback(wanted, dns_names, ips, cns, matches, source, cn_only, reason):
    result = match_name(wanted, dns_names, ips, cns, psl=FALLBACK, cn_fallback=True)
    assert result.matches is matches
    assert result.source == source
    assert result.cn_only is cn_only
    assert reason in result.reason


@pytest.mark.parametrize(("wanted", "dns_names", "ips", "cns", "matches", "source", "cn_only", "reason"), CN_CASES)
def test_common_name_is_ignored_by_default(wanted, dns_names, ips, cns, matches, source, cn_only, reason):
    """Without cn_fallback the CN never matches; where it would have, cn_only says that legacy clients accept it."""
    result = match_name(wanted, dns_names, ips, cns, psl=FALLBACK)
    assert not result.matches or source == "dns_san"
    assert result.cn_only is cn_only
    assert result.wildcard is False
    if cn_only:
        assert result.source is None and result.matched_by is None and "legacy clients" in result.reason
    else:
        assert result.source == source and reason in result.reason


# --- invalid requested names -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("wanted", "words"),
    [
        ("", "it is empty"),
        (".", "it is empty"),
        ("mail example.test", "white space"),
        (" mail.example.test", "white space"),
        ("mail.example.test\t", "white space"),
        ("a" * 64 + ".example.test", "64 characters long, more than 63"),
        ("ü" * 60 + ".example.test", "longer than 63 characters in A-label form"),
        (".".join(["a" * 63] * 4) + ".test", "more than 253"),
        ("mail..example.test", "empty label"),
        (".mail.example.test", "empty label"),
        ("mail.example.test..", "empty label"),
        ("*.example.test", "wildcard pattern"),
        ("_mta-sts.example.test", "underscores are not allowed"),
        ("-mail.example.test", "letters, digits and inner hyphens"),
        ("mail-.example.test", "letters, digits and inner hyphens"),
        ("mail@example.test", "letters, digits and inner hyphens"),
        ("192.168.001.001", "looks like an IPv4 address"),
        ("256.1.1.1", "looks like an IPv4 address"),
        ("[2001:db8::1", "letters, digits and inner hyphens"),  # brackets come in pairs
        ("192.0.2.25%eth0", "letters, digits and inner hyphens"),  # a zone index belongs to IPv6 only
    ],
)
def test_invalid_requested_names(wanted, words):
    with pytest.raises(InputError) as caught:
        match_name(wanted, ["mail.example.test"], [], [], psl=FALLBACK)
    message = str(caught.value)
    assert words in message
    assert repr(wanted) in message  # names the value
    assert "give a host name such as" in message  # says how to fix


@pytest.mark.parametrize(
    "wanted",
    [
        "a" * 63 + ".example.test",  # longest label
        ".".join(["a" * 63] * 3) + "." + "b" * 61,  # 253 characters
        ".".join(["a" * 63] * 3) + "." + "b" * 61 + ".",  # 253 plus the trailing dot
        "ü" * 50 + ".example.test",  # A-label within 63
        "ü" * 57 + ".example.test",  # A-label of exactly 63
        "localhost",
        "1mail.example.test",  # leading digit is fine
    ],
)
def test_valid_requested_names_at_the_limits(wanted):
    assert match_name(wanted, [], [], [], psl=FALLBACK).matches is False


def test_non_string_requested_name():
    with pytest.raises(InputError, match="is not a string"):
        match_name(None, [], [], [], psl=FALLBACK)


# --- helpers for findings ----------------------------------------------------------------------------------------

def test_match_names_keeps_order():
    results = match_names(
        ["mail.example.test", "192.0.2.25", "other.test"], ["mail.example.test"], ["192.0.2.25"], [], psl=FALLBACK
    )
    assert [r.matches for r in results] == [True, True, False]
    assert [r.source for r in results] == ["dns_san", "ip_san", None]
    assert isinstance(results, tuple)


def test_match_names_rejects_a_single_string():
    with pytest.raises(TypeError):
        match_names("mail.example.test", ["mail.example.test"], [], [])


def test_match_names_raises_for_an_invalid_name():
    with pytest.raises(InputError, match="'bad name'"):
        match_names(["mail.example.test", "bad name"], ["mail.example.test"], [], [], psl=FALLBACK)


def test_name_match_is_frozen_and_serialisable():
    result = match_name("mail.example.test", ["*.example.test"], [], [], psl=FALLBACK)
    assert isinstance(result, NameMatch)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.matches = False  # type: ignore[misc]
    assert dataclasses.asdict(result) == {
        "name": "mail.example.test",
        "normalized": "mail.example.test",
        "matches": True,
        "matched_by": "*.example.test",
        "source": "dns_san",
        "wildcard": True,
        "cn_only": False,
        "reason": "matches the wildcard subjectAltName dNSName *.example.test",
    }


# --- IDNA 2008 without the idna package ----------------------------------------------------------------------------

FALLBACK_LABELS = ["straße", "Bücher", "σίσυφος", "ΣΊΣΥΦΟΣ", "München", "ﬁnanz", "\uff41\uff42\uff43", "mail", "日本語",
                   "\u200dx", "i\u0307stanbul", "İstanbul", "ⅷ", "ǆemal", "x\u0301y"]


@pytest.mark.parametrize("label", FALLBACK_LABELS)
def test_fallback_converts_as_the_idna_package_or_refuses(label, monkeypatch):
    """Without the idna package a label is converted exactly as idna converts it, or refused with a clear request;
    never converted differently."""
    try:
        expected = names.idna.encode(label, uts46=True, transitional=False).decode()
    except UnicodeError:
        expected = None
    monkeypatch.setattr(names, "idna", None)
    try:
        converted = names._a_label(label)
    except UnicodeError as exc:
        assert "install idna or write the label as an A-label" in str(exc)
        return
    assert converted == expected


@pytest.mark.parametrize("label", ["straße", "Bücher", "日本語", "x\u0301y"])
def test_fallback_converts_labels_of_letters_marks_and_digits(label, monkeypatch):
    """Refusing is only for labels the fallback cannot map as UTS #46 does; these it must convert."""
    expected = names.idna.encode(label, uts46=True, transitional=False).decode()
    monkeypatch.setattr(names, "idna", None)
    assert names._a_label(label) == expected
