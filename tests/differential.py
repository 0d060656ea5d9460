# SPDX-License-Identifier: GPL-3.0-or-later
"""Differential testing of path validation: random certificate graphs judged by the library, by cryptography's
server verifier (PolicyBuilder, cryptography 42 and newer) and by `openssl verify -x509_strict -purpose sslserver
-verify_hostname`.

Each graph is a root (sometimes two, with a cross-sign), 0 to 3 intermediates and a leaf, with random key types,
validity windows, name constraints, extended key usages, pathLen, criticality, version 1 certificates, look-alike
issuers and SAN forms (IDNs, wildcards, IP addresses, CN only, white space). Every graph carries tags naming what it
exercises; agreement is counted per tag. A disagreement is either a documented difference (DIFFERENCES, explained
in docs/validation.md) or a failure.

    make differential    (PYTHONPATH=build/collections:tests python tests/differential.py --graphs 3000 --seed N)

The unit test test_differential.py runs a fixed seed of a few hundred graphs.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import functools
import ipaddress
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pki
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.mailops.tls.plugins.module_utils import analysis, load, pathrules
from ansible_collections.mailops.tls.plugins.module_utils.findings import ERROR

try:
    from cryptography.x509 import verification
except ImportError:  # cryptography < 42: compare with OpenSSL only
    verification = None

OPENSSL = shutil.which("openssl")
DOMAINS = ("example.test", "example.org", "other.test")
PRIVATE_EXTENSION = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH


@dataclass
class Graph:
    """One generated case: what is served, what is trusted, the name asked for and when."""

    number: int
    tags: set = field(default_factory=set)
    served: list = field(default_factory=list)  # leaf first, then what the server sends
    roots: list = field(default_factory=list)
    host: str = "mail.example.test"  # as the library is asked (may be a U-label)
    host_a_label: str = "mail.example.test"  # as the other verifiers are asked
    max_depth: int = pathrules.DEFAULT_RULES.max_chain_depth
    valid_at: datetime.datetime = pki.NOW


@functools.cache
def _rsa_key(number: int):
    """RSA keys are slow to make: a few, reused."""
    return pki.new_key("rsa")


class Generator:
    """Random graphs from one seed: the same seed gives graphs of the same shape (keys differ)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def key(self, graph: Graph):
        kind = self.rng.choices(("ecdsa", "ecdsa384", "rsa", "ed25519"), (6, 2, 2, 1))[0]
        graph.tags.add(f"key:{kind}")
        return _rsa_key(self.rng.randrange(3)) if kind == "rsa" else pki.new_key(kind)

    def validity(self, graph: Graph, role: str) -> dict:
        roll = self.rng.random()
        if roll < 0.05:
            graph.tags.add(f"expired:{role}")
            return {"not_before": pki.NOW - 400 * pki.DAY, "not_after": pki.NOW - pki.DAY}
        if roll < 0.09:
            graph.tags.add(f"not_yet_valid:{role}")
            return {"not_before": pki.NOW + pki.DAY, "not_after": pki.NOW + 400 * pki.DAY}
        return {}

    def ca_options(self, graph: Graph, role: str) -> dict:
        options = self.validity(graph, role)
        extensions = []
        if self.chance(0.15):
            options["path_length"] = self.rng.choice((0, 1))
            graph.tags.add("path_length")
        if role != "root" and self.chance(0.2):
            usages = self.rng.choice(([SERVER], [CLIENT], [SERVER, CLIENT]))
            extensions.append((x509.ExtendedKeyUsage(usages), False))
            graph.tags.add("eku:intermediate" + ("" if SERVER in usages else ":no_server_auth"))
        if self.chance(0.25):
            extensions.append((self.name_constraints(graph), self.rng.random() < 0.9))
        if self.chance(0.05):
            extensions.append((PRIVATE_EXTENSION, True))
            graph.tags.add(f"unknown_critical:{role}")
        if self.chance(0.05):
            options["basic_constraints_critical"] = False
            graph.tags.add(f"basic_constraints_not_critical:{role}")
        options["extensions"] = extensions
        return options

    def name_constraints(self, graph: Graph) -> x509.NameConstraints:
        graph.tags.add("name_constraints")
        permitted, excluded = [], []
        for _subtree in range(self.rng.randint(1, 3)):
            kind = self.rng.choice(("dns", "dns", "ip", "email", "directory"))
            graph.tags.add(f"name_constraints:{kind}")
            if kind == "dns":
                entry = x509.DNSName(self.rng.choice((*DOMAINS, "mail.example.test", "sub.example.org")))
            elif kind == "ip":
                entry = x509.IPAddress(ipaddress.ip_network(self.rng.choice(("192.0.2.0/24", "198.51.100.0/24"))))
            elif kind == "email":
                entry = x509.RFC822Name(self.rng.choice(DOMAINS))
            else:
                entry = x509.DirectoryName(pki.name(None, self.rng.choice(("mailops test", "elsewhere"))))
            (permitted if self.chance(0.6) else excluded).append(entry)
        return x509.NameConstraints(permitted_subtrees=permitted or None, excluded_subtrees=excluded or None)

    def leaf_options(self, graph: Graph) -> dict:
        options = self.validity(graph, "leaf")
        domain = self.rng.choice(DOMAINS)
        form = self.rng.choices(("exact", "wildcard", "idn", "ip", "cn_only", "space", "empty_subject",
                                 "other"), (10, 3, 2, 1, 2, 1, 1, 2))[0]
        graph.tags.add(f"san:{form}")
        graph.host = graph.host_a_label = f"mail.{domain}"
        options["dns_names"], options["common_name"] = [graph.host], graph.host
        if form == "wildcard":
            options["dns_names"] = [f"*.{domain}"]
        elif form == "idn":
            graph.host, graph.host_a_label = f"straße.{domain}", f"xn--strae-oqa.{domain}"
            options["dns_names"] = [self.rng.choice((graph.host_a_label, f"strasse.{domain}"))]
        elif form == "ip":
            graph.host = graph.host_a_label = self.rng.choice(("192.0.2.25", "198.51.100.25"))
            options["dns_names"], options["ip_addresses"] = [], ["192.0.2.25"]
        elif form == "cn_only":
            options["dns_names"], options["common_name"] = [], graph.host
        elif form == "space":
            options["dns_names"] = [graph.host + " "]
        elif form == "empty_subject":
            options["subject"] = x509.Name([])
            options["san_critical"] = self.chance(0.5)
            graph.tags.add(f"san_critical:{options['san_critical']}")
        elif form == "other":
            options["dns_names"] = [f"smtp.{domain}"]
        if form not in ("empty_subject", "cn_only") and self.chance(0.05):
            options["san_critical"] = True
            graph.tags.add("san_critical:True")
        usage = self.rng.choices(("server", "client", "none", "both"), (8, 1, 1, 1))[0]
        graph.tags.add(f"eku:leaf:{usage}")
        options["server_auth"] = {"server": True, "client": False, "none": None, "both": True}[usage]
        if usage == "both":
            options["server_auth"] = None
            options.setdefault("extensions", []).append((x509.ExtendedKeyUsage([SERVER, CLIENT]), False))
        if self.chance(0.05):
            options.setdefault("extensions", []).append((PRIVATE_EXTENSION, True))
            graph.tags.add("unknown_critical:leaf")
        return options

    def graph(self, number: int) -> Graph:
        graph = Graph(number)
        root = pki.root(f"Root {number}", key=self.key(graph), **self.ca_options(graph, "root"))
        graph.roots.append(root)
        issuer, chain = root, []
        depth = self.rng.choices((0, 1, 2, 3), (1, 5, 3, 1))[0]
        graph.tags.add(f"depth:{depth}")
        if depth >= 2 and self.chance(0.15):
            graph.max_depth = depth - 1
            graph.tags.add("max_chain_depth")
        for level in range(depth):
            issuer = issuer.issue(f"Intermediate {number}.{level}", ca=True, key=self.key(graph),
                                  **self.ca_options(graph, "intermediate"))
            chain.append(issuer)
        options = self.leaf_options(graph)
        common_name = options.pop("common_name")
        if self.chance(0.05):
            leaf = issuer.issue(common_name, ca=True, key=self.key(graph), **options)
            graph.tags.add("ca_as_leaf")
        else:
            leaf = issuer.issue(common_name, key=self.key(graph), **options)
        served = [leaf, *reversed(chain)]
        if chain and self.chance(0.05) and isinstance(served[1].key, ec.EllipticCurvePrivateKey):
            served[0] = pki.version_1(leaf, served[1])
            graph.tags.add("version_1:leaf")
        if chain and self.chance(0.15):
            self.cross_sign(graph, chain[0], served)
        if chain and self.chance(0.1):
            served.append(pki.lookalike(chain[-1], root))
            graph.tags.add("lookalike")
        graph.served = served
        return graph

    def cross_sign(self, graph: Graph, top, served: list) -> None:
        """A second root that cross-signs the top intermediate; which roots are trusted varies."""
        other = pki.root(f"Cross Root {graph.number}", key=self.key(graph), **self.validity(graph, "cross_root"))
        cross = pki.cross_sign(top, other, **self.validity(graph, "cross"))
        served.append(cross)
        trusted = self.rng.choice(("both", "other", "first"))
        graph.tags.add(f"cross_sign:{trusted}")
        graph.roots = {"both": [graph.roots[0], other], "other": [other], "first": graph.roots}[trusted]


# --- the verdicts -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdicts:
    library: bool
    library_legacy: bool  # with cn_fallback, as OpenSSL matches names
    library_codes: tuple
    library_legacy_codes: tuple
    cryptography: Optional[bool]
    cryptography_reason: str
    openssl: Optional[bool]
    openssl_reason: str


def library_verdict(graph: Graph, cn_fallback: bool) -> tuple[bool, tuple]:
    def loaded(items, source):
        return load.load_bytes(pki.pem_bundle(*items), source)

    result = analysis.analyze(analysis.Request(
        certificates=loaded(graph.served, "bundle.pem"), roots=loaded(graph.roots, "roots.pem"), names=(graph.host,),
        valid_at=graph.valid_at, rules=pathrules.Rules(cn_fallback=cn_fallback, max_chain_depth=graph.max_depth)))
    errors = tuple(sorted({f.code for f in result.findings if f.severity == ERROR}))
    return result.trusted and not errors, errors


def cryptography_verdict(graph: Graph) -> tuple[Optional[bool], str]:
    if verification is None:
        return None, "cryptography < 42 has no verifier"
    try:
        address = ipaddress.ip_address(graph.host_a_label)
        subject = x509.IPAddress(address)
    except ValueError:
        subject = x509.DNSName(graph.host_a_label)
    try:
        verifier = (verification.PolicyBuilder().store(verification.Store([root.cert for root in graph.roots]))
                    .time(graph.valid_at).max_chain_depth(graph.max_depth).build_server_verifier(subject))
        verifier.verify(graph.served[0].cert, [item.cert for item in graph.served[1:]])
    except verification.VerificationError as exc:
        return False, str(exc)
    return True, ""


def openssl_verdict(graph: Graph, workdir: Path) -> tuple[Optional[bool], str]:
    if OPENSSL is None:
        return None, "no openssl command"
    roots, untrusted, leaf = workdir / "roots.pem", workdir / "untrusted.pem", workdir / "leaf.pem"
    roots.write_bytes(pki.pem_bundle(*graph.roots))
    untrusted.write_bytes(pki.pem_bundle(*graph.served[1:]))
    leaf.write_bytes(graph.served[0].pem)
    try:
        ipaddress.ip_address(graph.host_a_label)
        host = ["-verify_ip", graph.host_a_label]
    except ValueError:
        host = ["-verify_hostname", graph.host_a_label]
    command = [OPENSSL, "verify", "-x509_strict", "-purpose", "sslserver", *host, "-attime",
               str(int(graph.valid_at.timestamp())), "-verify_depth", str(graph.max_depth), "-no-CApath",
               "-no-CAstore", "-CAfile", str(roots), *(["-untrusted", str(untrusted)] if graph.served[1:] else []),
               str(leaf)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.returncode == 0, " ".join(done.stdout.split()[-12:] + done.stderr.split()[:16])


def judge(graph: Graph, workdir: Path) -> Verdicts:
    strict, codes = library_verdict(graph, cn_fallback=False)
    legacy, legacy_codes = library_verdict(graph, cn_fallback=True) if "san:cn_only" in graph.tags else (strict, codes)
    crypto, crypto_reason = cryptography_verdict(graph)
    ossl, ossl_reason = openssl_verdict(graph, workdir)
    return Verdicts(strict, legacy, codes, legacy_codes, crypto, crypto_reason, ossl, ossl_reason)


# --- documented differences (docs/validation.md) ----------------------------------------------------------------------

def difference(graph: Graph, verdicts: Verdicts, oracle: str) -> Optional[str]:
    """Why the library may disagree with oracle on this graph, or None when it must agree."""
    other = verdicts.cryptography if oracle == "cryptography" else verdicts.openssl
    mine = verdicts.library if oracle == "cryptography" else verdicts.library_legacy
    if other is None or other == mine:
        return None
    for reason, applies in DIFFERENCES.get(oracle, ()):
        if applies(graph, verdicts, mine):
            return reason
    return "UNEXPLAINED"


# Codes where the library is stricter than `openssl verify -x509_strict` and agrees with cryptography's verifier.
STRICTER_THAN_OPENSSL = {"ca_as_leaf", "san_criticality"}

DIFFERENCES: dict = {
    "cryptography": (
        ("cryptography's Web PKI profile forbids Ed25519 keys and signatures; the library accepts them, as OpenSSL "
         "does",
         lambda graph, verdicts, mine: mine and "key:ed25519" in graph.tags and (
             "Forbidden" in verdicts.cryptography_reason or "candidates exhausted" in verdicts.cryptography_reason)),
        ("cryptography refuses every critical nameConstraints holding a directoryName subtree; the library applies "
         "directoryName constraints (RFC 5280), as OpenSSL does",
         lambda graph, verdicts, mine: mine and "unsupported directoryName constraint" in verdicts.cryptography_reason),
        ("cryptography ignores the directoryName subtrees of a non-critical nameConstraints; the library applies them, "
         "as OpenSSL does",
         lambda graph, verdicts, mine: not mine and verdicts.library_codes == ("name_constraint_violation",)
         and "name_constraints:directory" in graph.tags and verdicts.openssl is not True),
    ),
    "openssl": (
        ("OpenSSL accepts a CA certificate as the leaf and a critical subjectAltName beside a subject; the library "
         "refuses both, as cryptography does",
         lambda graph, verdicts, mine: not mine and verdicts.openssl
         and set(verdicts.library_legacy_codes) <= STRICTER_THAN_OPENSSL),
        ("OpenSSL lets a wildcard dNSName pass an excluded subtree it covers (*.example.org against an excluded "
         "mail.example.org); the library refuses it, as cryptography does",
         lambda graph, verdicts, mine: not mine and verdicts.openssl and "san:wildcard" in graph.tags
         and verdicts.library_legacy_codes == ("name_constraint_violation",)),
        ("OpenSSL builds one path, taking the first issuer it finds, and does not try the cross-signed alternative "
         "when that path fails (missing root, expiry, pathLen, a constraint); the library and cryptography try every "
         "path",
         lambda graph, verdicts, mine: mine and any(tag.startswith("cross_sign") for tag in graph.tags)
         and difference(graph, verdicts, "cryptography") != "UNEXPLAINED"),
    ),
}


# --- running many -----------------------------------------------------------------------------------------------------

@dataclass
class Tally:
    graphs: int = 0
    accepted: int = 0  # graphs the library accepts
    agree: collections.Counter = field(default_factory=collections.Counter)
    explained: collections.Counter = field(default_factory=collections.Counter)
    unexplained: list = field(default_factory=list)
    per_tag: dict = field(default_factory=lambda: collections.defaultdict(collections.Counter))


def run(count: int, seed: int) -> Tally:
    tally = Tally()
    generator = Generator(seed)
    with tempfile.TemporaryDirectory(prefix="mailops-differential-") as temp:
        for number in range(count):
            graph = generator.graph(number)
            verdicts = judge(graph, Path(temp))
            tally.graphs += 1
            tally.accepted += verdicts.library
            for oracle in ("cryptography", "openssl"):
                if (verdicts.cryptography if oracle == "cryptography" else verdicts.openssl) is None:
                    continue
                reason = difference(graph, verdicts, oracle)
                outcome = "agree" if reason is None else "explained" if reason != "UNEXPLAINED" else "unexplained"
                for tag in graph.tags:
                    tally.per_tag[tag][f"{oracle}:{outcome}"] += 1
                if reason is None:
                    tally.agree[oracle] += 1
                elif reason != "UNEXPLAINED":
                    tally.explained[f"{oracle}: {reason}"] += 1
                else:
                    tally.unexplained.append((oracle, graph, verdicts))
    return tally


def describe(oracle: str, graph: Graph, verdicts: Verdicts) -> str:
    return (f"graph {graph.number} [{', '.join(sorted(graph.tags))}] host {graph.host}: library "
            f"{'accepts' if verdicts.library else 'rejects'} {list(verdicts.library_codes)} (legacy names: "
            f"{verdicts.library_legacy}); cryptography {verdicts.cryptography} {verdicts.cryptography_reason!r}; "
            f"openssl {verdicts.openssl} {verdicts.openssl_reason!r} (judged against {oracle})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--graphs", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    started = time.monotonic()
    tally = run(args.graphs, args.seed)
    print(f"{tally.graphs} graphs (seed {args.seed}) in {time.monotonic() - started:.0f} s; verifiers: "
          f"cryptography {'yes' if verification else 'no (< 42)'}, openssl {'yes' if OPENSSL else 'no'}")
    print(f"{'tag':42} {'cryptography agree/explained/unexplained':>42} {'openssl agree/explained/unexplained':>38}")
    for tag in sorted(tally.per_tag):
        counts = tally.per_tag[tag]
        row = ["/".join(str(counts[f"{oracle}:{outcome}"]) for outcome in ("agree", "explained", "unexplained"))
               for oracle in ("cryptography", "openssl")]
        print(f"{tag:42} {row[0]:>42} {row[1]:>38}")
    for reason, count in sorted(tally.explained.items()):
        print(f"documented difference, {count} graph(s): {reason}")
    for oracle, graph, verdicts in tally.unexplained:
        print("UNEXPLAINED:", describe(oracle, graph, verdicts))
    return 1 if tally.unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
