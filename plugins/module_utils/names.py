# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Match requested host names and IP addresses against a certificate's names (RFC 9525, RFC 6125, CA/B BR).

Decisions, so that every caller gets the same answer:

* Order: subjectAltName only, as RFC 9525, Chromium, Apple, current Thunderbird, Python, Go and rustls do.
  The subject CN counts only with ``cn_fallback`` and only when the certificate has no subjectAltName at all
  (neither dNSName nor iPAddress entries), as legacy clients (OpenSSL's default host check, used by
  fetchmail, mutt and Postfix's SMTP client) do; either way a name found only there is flagged ``cn_only``.
  Callers pass only the dNSName and iPAddress entries, so a certificate whose subjectAltName holds other
  types only (e-mail, URI) counts as having none.
* Wildcards: ``*`` must be the whole left-most label (``*.example.org``) and appear nowhere else; it stands
  for exactly one non-empty label, and never when the rest (``com``, ``co.uk``) is a public suffix.
  Partial wildcards (``f*.example.org``) are refused, which also covers RFC 6125 section 6.4.3 item 3
  (no wildcard embedded in an A-label or U-label, ``xn--*``). A complete ``*`` label does cover an
  A-label (``*.example.org`` matches ``xn--bcher-kva.example.org``): the wildcard is not embedded in the
  IDN label, and OpenSSL's X509_check_host, CPython and Chromium behave the same way.
* IDN: Unicode names are converted label by label to A-labels by IDNA 2008 with the UTS #46
  non-transitional mapping, what browsers and mail clients resolve (``mail.straße.de`` is
  ``mail.xn--strae-oqa.de``, never ``mail.strasse.de`` as IDNA 2003 had it). The ``idna`` package does it
  where installed; without it, a label is lower-cased and NFC-normalized and then Punycode-encoded, which
  is the same for letters, marks and digits, and any other label is refused with a request to write it as
  an A-label. A certificate's dNSName is IA5String: raw non-ASCII bytes or white space in one make it
  match nothing (OpenSSL, Python's ``ssl`` and cryptography do the same).
* IP addresses: a requested address (IPv4 or IPv6, any textual form, brackets and an IPv6 zone index are
  dropped) matches iPAddress entries only, compared as addresses. It never matches a dNSName nor the CN,
  not even in a CN-only certificate: RFC 6125 section 6.4.4 allows the CN fallback for DNS names only, and
  OpenSSL's X509_check_ip and CPython never read the CN for an address.
* Public suffixes: the system Public Suffix List (Debian/Ubuntu package ``publicsuffix``, Fedora/RHEL
  ``publicsuffix-list``) is read once, ICANN section only: the Baseline Requirements (section 3.2.2.6)
  tell CAs to consult the ICANN DOMAINS section and not the PRIVATE DOMAINS one, and Chromium excludes
  private registries when it refuses wildcards. ``include_private=True`` adds the private section.
"""
from __future__ import annotations

import encodings.idna
import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Union

from ansible_collections.mailops.tls.plugins.module_utils.certs import printable
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError

try:
    import idna
except ImportError:  # optional: see _a_label's fallback
    idna = None

__all__ = [
    "SYSTEM_PSL_PATHS",
    "NameMatch",
    "PublicSuffixList",
    "is_public_suffix",
    "load_public_suffix_list",
    "match_name",
    "match_names",
]

SYSTEM_PSL_PATHS: tuple[str, ...] = (
    "/usr/share/publicsuffix/public_suffix_list.dat",
    "/usr/share/publicsuffix/effective_tld_names.dat",
)
"""Where Debian/Ubuntu (``publicsuffix``) and Fedora/RHEL (``publicsuffix-list``) install the list."""

_FALLBACK_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk",
        "com.au", "net.au", "org.au",
        "co.jp", "ne.jp", "or.jp",
        "co.nz", "com.br", "com.cn", "co.in", "co.za",
    }
)  # fmt: skip

_MAX_NAME = 253
_MAX_LABEL = 63
_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_ALL_DIGITS = re.compile(r"^[0-9]+$")
_IDN_CATEGORIES = frozenset({"Ll", "Lo", "Lm", "Mn", "Mc", "Nd"})
_HINT = "give a host name such as mail.example.org or an IP address such as 192.0.2.25"

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


@dataclass(frozen=True)
class NameMatch:
    """The verdict for one requested name against one certificate."""

    name: str
    """The name as requested."""
    normalized: str
    """A-label form, lowercase, without trailing dot; or the canonical text of an IP address."""
    matches: bool
    """True when a client verifying the certificate for ``name`` accepts it."""
    matched_by: Optional[str]
    """The SAN entry or CN value that matched, as written in the certificate; None without a match."""
    source: Optional[str]
    """'dns_san', 'ip_san' or 'common_name'; None without a match."""
    wildcard: bool
    """The match needed a wildcard."""
    cn_only: bool
    """The name is only in the subject CN of a certificate without subjectAltName: it matches with cn_fallback
    only, and legacy clients accept it."""
    reason: str
    """One sentence: why it matched or why not."""


@dataclass(frozen=True)
class PublicSuffixList:
    """Parsed Public Suffix List rules, names in A-label lowercase form."""

    rules: frozenset[str]
    """Plain rules (``com``, ``co.uk``)."""
    wildcard_parents: frozenset[str]
    """Parents of ``*.`` rules: ``ck`` for ``*.ck``."""
    exceptions: frozenset[str]
    """Exception rules without the ``!``: ``www.ck``."""
    source: Optional[str]
    """The file read, or None for the built-in fallback."""

    def is_public_suffix(self, name: str) -> bool:
        """Return whether ``name`` (normalized) is itself a public suffix, with the PSL default rule ``*``."""
        if not name or name in self.exceptions:
            return False
        if name in self.rules:
            return True
        _label, dot, parent = name.partition(".")
        if not dot:
            return True
        return parent in self.wildcard_parents


def load_public_suffix_list(
    paths: Sequence[str] = SYSTEM_PSL_PATHS, include_private: bool = False
) -> PublicSuffixList:
    """Parse the first readable list among ``paths`` once (cached); without one, use the built-in fallback.

    The fallback treats every single label (TLD) as a public suffix plus a few common two-label suffixes
    (co.uk, com.au, ...); install the ``publicsuffix`` package to get the full list.
    """
    return _load_public_suffix_list(tuple(paths), include_private)


@lru_cache(maxsize=16)
def _load_public_suffix_list(paths: tuple[str, ...], include_private: bool) -> PublicSuffixList:
    """Cached worker of load_public_suffix_list."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError):
            continue
        return _parse_public_suffix_list(text, path, include_private)
    return PublicSuffixList(_FALLBACK_SUFFIXES, frozenset(), frozenset(), None)


def _parse_public_suffix_list(text: str, source: str, include_private: bool) -> PublicSuffixList:
    """Parse PSL text: plain, ``*.`` and ``!`` rules, ICANN section only unless ``include_private``."""
    rules, wildcard_parents, exceptions = set(), set(), set()
    private = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("//"):
            if "===BEGIN PRIVATE DOMAINS===" in line:
                private = True
            elif "===END PRIVATE DOMAINS===" in line:
                private = False
            continue
        if not line or (private and not include_private):
            continue
        rule = line.split()[0]
        if rule.startswith("!"):
            target, name = exceptions, rule[1:]
        elif rule.startswith("*."):
            target, name = wildcard_parents, rule[2:]
        else:
            target, name = rules, rule
        normalized = _to_a_labels(name)
        if normalized is not None:
            target.add(normalized)
    return PublicSuffixList(frozenset(rules), frozenset(wildcard_parents), frozenset(exceptions), source)


def is_public_suffix(name: str, psl: Optional[PublicSuffixList] = None) -> bool:
    """Return whether ``name`` is a public suffix (``com``, ``co.uk``) per ``psl`` or the system list."""
    normalized = _to_a_labels(name)
    if normalized is None or "*" in normalized:
        return False
    return (load_public_suffix_list() if psl is None else psl).is_public_suffix(normalized)


def match_names(
    wanted: Sequence[str],
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    common_names: Sequence[str],
    psl: Optional[PublicSuffixList] = None,
    cn_fallback: bool = False,
) -> tuple[NameMatch, ...]:
    """Match each requested name, in order; see match_name."""
    if isinstance(wanted, str):
        raise TypeError("match_names() takes a sequence of names; use match_name() for one name")
    return tuple(match_name(name, dns_names, ip_addresses, common_names, psl, cn_fallback) for name in wanted)


def match_name(
    wanted: str,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    common_names: Sequence[str],
    psl: Optional[PublicSuffixList] = None,
    cn_fallback: bool = False,
) -> NameMatch:
    """Tell whether a certificate with these names is valid for ``wanted``; raise InputError if it is unusable.
    cn_fallback: a certificate without subjectAltName matches by its subject CN, as legacy clients have it.

    The certificate's names are used with control characters escaped, so that they cannot forge lines in reasons
    and messages; a name with one is never a valid host name, so no verdict changes."""
    dns_names, common_names = [printable(n) for n in dns_names], [printable(n) for n in common_names]
    address = _parse_wanted_address(wanted)
    if address is not None:
        return _match_address(wanted, address, dns_names, ip_addresses, common_names)
    normalized = _normalize_wanted(wanted)
    if dns_names or ip_addresses:
        verdict = _match_dns(wanted, normalized, dns_names, "dns_san", psl)
        if verdict.matches:
            return verdict
        if _match_dns(wanted, normalized, common_names, "common_name", psl).matches:
            return _no_match(wanted, normalized, "CN is ignored because the certificate has subjectAltNames; "
                                                 f"add {normalized} as a dNSName")
        if not dns_names:
            return _no_match(wanted, normalized, "the certificate has iPAddress subjectAltNames only, "
                                                 f"no dNSName for {normalized}")
        return verdict
    if not common_names:
        return _no_match(wanted, normalized, "the certificate has neither subjectAltNames nor a subject CN")
    legacy = _match_dns(wanted, normalized, common_names, "common_name", psl)
    if cn_fallback or not legacy.matches:
        return legacy
    return NameMatch(wanted, normalized, False, None, None, False, True,
                     f"the certificate has no subjectAltName and current clients ignore its subject CN "
                     f"{legacy.matched_by}; only legacy clients reading the CN (OpenSSL's default host check) "
                     "accept it")


def _match_dns(
    wanted: str, normalized: str, presented: Sequence[str], source: str, psl: Optional[PublicSuffixList]
) -> NameMatch:
    """Match a normalized DNS name against dNSName entries or CN values: exact first, then wildcards."""
    cn_only = source == "common_name"
    where = "subject CN" if cn_only else "subjectAltName dNSName"
    # A dNSName is IA5String: raw non-ASCII bytes in one (decoded as some other text) make it match nothing.
    entries = [(entry, _to_a_labels(entry) if cn_only or entry.isascii() else None) for entry in presented]
    for entry, form in entries:
        if form is not None and "*" not in form and form == normalized:
            reason = f"matches the {where} {entry}"
            if cn_only:
                reason += " of a certificate without subjectAltName, which RFC 9525 clients reject"
            return NameMatch(wanted, normalized, True, entry, source, False, cn_only, reason)
    near_misses = []
    wanted_parent = normalized.partition(".")[2]
    for entry, form in entries:
        if form is None or "*" not in form:
            continue
        parent = _wildcard_parent(form)
        if parent is None:
            if _pattern_covers(form, normalized):
                near_misses.append((1, f"the wildcard {entry} is not valid: '*' must be the whole left-most label "
                                       "and appear nowhere else"))
        elif parent != wanted_parent:
            if parent == normalized:
                near_misses.append((2, f"the wildcard {entry} does not cover {parent} itself, only one label "
                                       "below it"))
            elif normalized.endswith("." + parent):
                near_misses.append((3, f"the wildcard {entry} covers one label only"))
        elif (load_public_suffix_list() if psl is None else psl).is_public_suffix(parent):
            near_misses.append((0, f"the wildcard {entry} never matches because {parent} is a public suffix"))
        else:
            reason = f"matches the wildcard {where} {entry}"
            if cn_only:
                reason += " of a certificate without subjectAltName, which RFC 9525 clients reject"
            return NameMatch(wanted, normalized, True, entry, source, True, cn_only, reason)
    for entry, form in entries:
        if form is None and _to_a_labels(entry.strip()) == normalized:
            near_misses.append((0, f"the {where} {entry!r} holds white space or characters that are not ASCII, which "
                                   "clients never strip or convert: reissue with the name as plain A-labels"))
    if near_misses:
        return _no_match(wanted, normalized, min(near_misses)[1])
    if cn_only:
        listed = ", ".join(presented)
        return _no_match(wanted, normalized, f"the certificate has no subjectAltName and its CN {listed} does "
                                             f"not match {normalized}")
    listed = ", ".join(presented)
    return _no_match(wanted, normalized, f"{normalized} is not among the subjectAltName dNSNames ({listed})")


def _match_address(
    wanted: str, address: Address, dns_names: Sequence[str], ip_addresses: Sequence[str], common_names: Sequence[str]
) -> NameMatch:
    """Match a requested IP address against iPAddress entries only."""
    normalized = str(address)
    for entry in ip_addresses:
        presented = _parse_address(entry)
        if presented is not None and _same_address(presented, address):
            return NameMatch(wanted, normalized, True, entry, "ip_san", False, False,
                             f"matches the subjectAltName iPAddress {entry}")
    for entry in dns_names:
        presented = _parse_address(entry.rstrip("."))
        if presented is not None and _same_address(presented, address):
            return _no_match(wanted, normalized, f"{entry} is written as a dNSName, but an IP address matches only "
                                                 "an iPAddress subjectAltName")
    for entry in common_names:
        presented = _parse_address(entry)
        if presented is not None and _same_address(presented, address):
            return _no_match(wanted, normalized, f"the CN {entry} is never used for an IP address; put it in an "
                                                 "iPAddress subjectAltName")
    if not ip_addresses:
        return _no_match(wanted, normalized, "the certificate has no iPAddress subjectAltName")
    listed = ", ".join(ip_addresses)
    return _no_match(wanted, normalized, f"{normalized} is not among the subjectAltName iPAddresses ({listed})")


def _no_match(wanted: str, normalized: str, reason: str) -> NameMatch:
    """Build a negative verdict."""
    return NameMatch(wanted, normalized, False, None, None, False, False, reason)


def _same_address(first: Address, second: Address) -> bool:
    """Compare two addresses by family and bytes (a zone index does not count)."""
    return first.version == second.version and first.packed == second.packed


def _parse_address(text: str) -> Optional[Address]:
    """Parse an IPv4 or IPv6 address written in any form (``[::1]``, ``fe80::1%eth0``); None if it is not one."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.partition("%")[0] if ":" in text else text
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _parse_wanted_address(wanted: str) -> Optional[Address]:
    """Return the requested IP address, or None when ``wanted`` is not written as one."""
    if not isinstance(wanted, str):
        raise InputError(f"requested name {wanted!r} is not a string; {_HINT}")
    address = _parse_address(wanted)
    if address is None:
        return None
    return ipaddress.ip_address(address.packed)  # canonical text, without a zone index


def _normalize_wanted(wanted: str) -> str:
    """Return the requested DNS name as lowercase A-labels without trailing dot; raise InputError if invalid."""
    normalized, problem = _check_wanted(wanted)
    if problem is not None:
        raise InputError(f"requested name {wanted!r} is not a valid host name: {problem}; {_HINT}")
    return normalized


def _check_wanted(wanted: str) -> tuple[str, Optional[str]]:
    """Return the normalized requested name and what is wrong with it (None when it is valid)."""
    stripped = wanted[:-1] if wanted and encodings.idna.dots.match(wanted[-1]) else wanted
    if not stripped:
        return "", "it is empty"
    if any(char.isspace() for char in stripped):
        return "", "it contains white space"
    if "*" in stripped:
        return "", "it is a wildcard pattern, while clients always ask for one concrete name"
    labels = []
    for label in encodings.idna.dots.split(stripped):
        a_label, problem = _check_label(label)
        if problem is not None:
            return "", problem
        labels.append(a_label)
    normalized = ".".join(labels)
    if len(normalized) > _MAX_NAME:
        return normalized, f"it is {len(normalized)} characters long in A-label form, more than {_MAX_NAME}"
    if _ALL_DIGITS.match(labels[-1]):
        return normalized, "it looks like an IPv4 address but is not a valid one"
    return normalized, None


def _check_label(label: str) -> tuple[str, Optional[str]]:
    """Return one requested label as a lowercase A-label and what is wrong with it (None when valid)."""
    if not label:
        return "", "it has an empty label (two dots in a row or a leading dot)"
    if len(label) > _MAX_LABEL:
        return "", f"label {label!r} is {len(label)} characters long, more than {_MAX_LABEL}"
    if not label.isascii() and len(label.encode("punycode")) + 4 > _MAX_LABEL:
        return "", f"label {label!r} is longer than {_MAX_LABEL} characters in A-label form"
    try:
        a_label = _a_label(label)
    except UnicodeError as exc:
        return "", f"label {label!r} cannot be converted to an A-label with IDNA 2008 ({exc})"
    if len(a_label) > _MAX_LABEL:
        return "", f"label {label!r} is longer than {_MAX_LABEL} characters in A-label form"
    if not _LDH_LABEL.match(a_label):
        underscore = " (underscores are not allowed in host names)" if "_" in label else ""
        return a_label, f"label {label!r} may hold only letters, digits and inner hyphens{underscore}"
    return a_label, None


def _a_label(label: str) -> str:
    """One label as a lowercase A-label by IDNA 2008 with the UTS #46 non-transitional mapping; UnicodeError when it
    cannot be one. Without the idna package only labels of letters, marks and digits are converted (the mapping is
    then lower case and NFC, the same as UTS #46 for them)."""
    if label.isascii():
        return label.lower()
    if idna is not None:
        return idna.encode(label, uts46=True, transitional=False).decode("ascii")
    # character by character: str.lower() writes a final sigma at the end of a word, UTS #46 never does
    mapped = unicodedata.normalize("NFC", "".join(char.lower() for char in label))
    if unicodedata.normalize("NFKC", mapped) != mapped or not all(
            char == "-" or unicodedata.category(char) in _IDN_CATEGORIES for char in mapped):
        raise UnicodeError("without the Python package idna only letters, marks and digits are converted; install "
                           "idna or write the label as an A-label (xn--...)")
    return "xn--" + mapped.encode("punycode").decode("ascii")


def _to_a_labels(name: str) -> Optional[str]:
    """Normalize a presented name (SAN, CN, PSL rule) to lowercase A-labels; None if IDNA cannot convert it or it
    holds white space (clients never strip it)."""
    name = name[:-1] if name and encodings.idna.dots.match(name[-1]) else name
    if not name or any(char.isspace() for char in name):
        return None
    labels = []
    for label in encodings.idna.dots.split(name):
        if "*" in label:
            labels.append(label.lower())
            continue
        try:
            labels.append(_a_label(label))
        except UnicodeError:
            return None
    return ".".join(labels)


def _pattern_covers(form: str, normalized: str) -> bool:
    """Return whether a malformed wildcard would cover ``normalized`` if ``*`` were allowed where it stands."""
    pattern = r"\.".join("[^.]*".join(re.escape(part) for part in label.split("*")) for label in form.split("."))
    return re.fullmatch(pattern, normalized) is not None


def _wildcard_parent(entry: str) -> Optional[str]:
    """Return what follows ``*.`` in a well-formed wildcard (normalized), or None when it is not one."""
    normalized = _to_a_labels(entry)
    if normalized is None or not normalized.startswith("*."):
        return None
    parent = normalized[2:]
    if "*" in parent or "" in parent.split("."):
        return None
    return parent
