# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""DANE for SMTP (RFC 7672, 7671): a presented chain judged against TLSA records as DANE-validating senders do.

Rules followed, as Postfix and Exim apply them:
- Only DANE-TA(2) and DANE-EE(3) records count; PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP, as are records of
  unknown selector or matching type. Records present but all unusable: senders use TLS without authentication.
- DANE-EE: the record matches the server certificate; names and dates are not checked.
- DANE-TA: the record matches an issuer the server presents; the chain from the server certificate up to it must
  verify (signatures, CA flags, dates of the certificates below it), and the server certificate must be valid for
  the MX host name or the next-hop domain.
- Only DNSSEC-validated answers (the resolver's AD bit) count: insecure records mean DANE does not apply, and a
  failed lookup (SERVFAIL, what validating resolvers answer for a bogus signature) makes senders defer mail.
"""
from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils import certs as certlib
from ansible_collections.mailops.tls.plugins.module_utils import der as derlib
from ansible_collections.mailops.tls.plugins.module_utils import names as nameslib
from ansible_collections.mailops.tls.plugins.module_utils.findings import Finding, finding
from ansible_collections.mailops.tls.plugins.module_utils.tlsa import (
    DANE_EE,
    DANE_TA,
    SHA2_256,
    SPKI,
    TlsaRecord,
    record_for,
)

VERIFIED = "verified"  # a usable record authenticates the chain
MISMATCH = "mismatch"  # usable records exist and none authenticates the chain: senders defer mail
UNUSABLE = "unusable"  # records exist but none is usable: senders use TLS without authentication
INSECURE = "insecure"  # the answer is not DNSSEC-validated: DANE does not apply
NO_RECORDS = "no_records"  # validated denial: no TLSA records, DANE does not apply
LOOKUP_FAILED = "lookup_failed"  # no answer or a bogus one: senders defer mail
STATUSES = (VERIFIED, MISMATCH, UNUSABLE, INSECURE, NO_RECORDS, LOOKUP_FAILED)


@dataclass(frozen=True)
class TlsaSet:
    """The TLSA records of one service as a resolver answered (or as given), with its DNSSEC verdict."""

    name: str  # _25._tcp.mx1.example.org
    records: tuple[TlsaRecord, ...]
    secure: bool
    ttl: Optional[int] = None  # how long resolvers may keep the set (the zone's TTL), when known
    error: Optional[str] = None  # why the lookup failed; None when the resolver answered

    def as_dict(self) -> dict:
        return {"name": self.name, "records": [str(r) for r in self.records], "secure": self.secure,
                "ttl": self.ttl, "error": self.error}


@dataclass(frozen=True)
class RecordVerdict:
    """One record against the presented chain."""

    record: TlsaRecord
    usable: bool
    matches: tuple[int, ...]  # positions (0 = server certificate) of presented certificates it matches
    authenticates: bool
    reason: str

    def as_dict(self) -> dict:
        return dict(self.record.as_dict(), usable=self.usable, matches=list(self.matches),
                    authenticates=self.authenticates, reason=self.reason)


@dataclass(frozen=True)
class DaneVerdict:
    """The chain against one TLSA set: status (one of STATUSES), each record's verdict, the findings, and the
    records that would authenticate this chain (3 1 1 for its key, 2 1 1 for its issuer's)."""

    tlsa: TlsaSet
    status: str
    records: tuple[RecordVerdict, ...]
    findings: tuple[Finding, ...]
    to_publish: tuple[TlsaRecord, ...]

    @property
    def missing(self) -> tuple[TlsaRecord, ...]:
        """The records of to_publish that the set does not hold yet."""
        return tuple(record for record in self.to_publish if record not in self.tlsa.records)

    @property
    def leftover(self) -> tuple[TlsaRecord, ...]:
        """Usable records that match no presented certificate: an old key's, or a next key published early."""
        return tuple(v.record for v in self.records if v.usable and not v.matches)

    def as_dict(self) -> dict:
        return {"tlsa": self.tlsa.as_dict(), "status": self.status,
                "applies": self.status not in (INSECURE, NO_RECORDS),
                "records": [v.as_dict() for v in self.records], "to_publish": [str(r) for r in self.to_publish],
                "missing": [str(r) for r in self.missing], "leftover": [str(r) for r in self.leftover],
                "issues": [f.as_dict() for f in self.findings]}


def recommended_records(chain_der: Sequence[bytes]) -> tuple[TlsaRecord, ...]:
    """3 1 1 for the server's key and 2 1 1 for its issuer's (when the chain has one): "current + next" in
    RFC 7671 section 8 terms, the pair that survives a new key under the same issuer or a new issuer."""
    records = [record_for(chain_der[0], DANE_EE, SPKI, SHA2_256)] if chain_der else []
    if len(chain_der) > 1:
        records.append(record_for(chain_der[1], DANE_TA, SPKI, SHA2_256))
    return tuple(records)


def judge(chain_der: Sequence[bytes], tlsa: TlsaSet, mx_host: str, domain: Optional[str] = None,
          valid_at: Optional[datetime.datetime] = None, where: Optional[str] = None) -> DaneVerdict:
    """How a DANE-validating sender judges the chain an MX host presents (or would present) against tlsa."""
    where = where or f"{mx_host} ({tlsa.name})"
    valid_at = certlib.utc(valid_at or datetime.datetime.now(datetime.timezone.utc))
    to_publish = recommended_records(chain_der)
    if tlsa.error is not None:
        problem = finding("dns_lookup_failed", f"the TLSA lookup of {tlsa.name} failed ({tlsa.error}): DANE senders "
                          f"defer mail to {mx_host} until it answers. A validating resolver answers SERVFAIL for a "
                          "bogus signature: re-sign the zone and check its DS record at the parent")
        return DaneVerdict(tlsa, LOOKUP_FAILED, (), (problem,), to_publish)
    if not tlsa.records:
        return DaneVerdict(tlsa, NO_RECORDS if tlsa.secure else INSECURE, (), (), to_publish)
    if not tlsa.secure:
        problem = finding("tlsa_insecure", f"{where}: the TLSA records are not DNSSEC-validated (the resolver did not "
                          "set the AD bit), so DANE does not apply and senders ignore them: sign the zone and publish "
                          "its DS record, or ask a validating resolver")
        return DaneVerdict(tlsa, INSECURE, (), (problem,), to_publish)
    verdicts = tuple(_judge_record(record, chain_der, mx_host, domain, valid_at) for record in tlsa.records)
    findings = [finding("tlsa_unusable", f"{where}: {v.record} ({v.record.mnemonic}) {v.reason}; remove it or "
                        "publish a DANE-EE (3 1 1) or DANE-TA (2 1 1) record") for v in verdicts if not v.usable]
    usable = [v for v in verdicts if v.usable]
    if not usable:
        return DaneVerdict(tlsa, UNUSABLE, verdicts, tuple(findings), to_publish)
    if any(v.authenticates for v in usable):
        findings += [finding("tlsa_leftover", f"{where}: {v.record} matches no certificate the server presents: "
                             "remove it once no server uses that key (wait the TTL after the switch); keep it if it is "
                             "the next key, published ahead of a rollover") for v in usable if not v.matches]
        return DaneVerdict(tlsa, VERIFIED, verdicts, tuple(findings), to_publish)
    reasons = "; ".join(f"{v.record}: {v.reason}" for v in usable)
    findings.append(finding("tlsa_mismatch", f"{where}: no TLSA record authenticates the chain ({reasons}); "
                            "DANE senders defer mail to this host. Publish "
                            f"{' and '.join(str(r) for r in to_publish)} at {tlsa.name}, wait the TTL"
                            f"{f' ({tlsa.ttl} s)' if tlsa.ttl is not None else ''}, then serve the chain"))
    return DaneVerdict(tlsa, MISMATCH, verdicts, tuple(findings), to_publish)


def _judge_record(record: TlsaRecord, chain_der: Sequence[bytes], mx_host: str, domain: Optional[str],
                  valid_at: datetime.datetime) -> RecordVerdict:
    if record.usage not in (DANE_TA, DANE_EE):
        return RecordVerdict(record, False, (), False, "is a PKIX usage, which SMTP senders cannot use (RFC 7672 "
                                                       "section 3.1.3)")
    if not record.known:
        return RecordVerdict(record, False, (), False, "has an unknown selector or matching type, or data of the "
                                                       "wrong length for its hash")
    matches = tuple(position for position, der in enumerate(chain_der) if record.matches(der))
    if record.usage == DANE_EE:
        if 0 in matches:
            return RecordVerdict(record, True, matches, True, "matches the server certificate (DANE-EE: names and "
                                                              "dates are not checked)")
        return RecordVerdict(record, True, matches, False, "does not match the server certificate")
    issuers = [position for position in matches if position > 0]
    if not issuers:
        what = "only the server certificate itself" if matches else "no certificate the server presents"
        return RecordVerdict(record, True, matches, False, f"matches {what}, and DANE-TA needs an issuer the server "
                                                           "sends")
    problems = [_chain_problem(chain_der, position, valid_at) for position in issuers]
    if all(problems):
        return RecordVerdict(record, True, matches, False, problems[0])
    name_problem = _name_problem(chain_der[0], mx_host, domain)
    if name_problem:
        return RecordVerdict(record, True, matches, False, name_problem)
    return RecordVerdict(record, True, matches, True, f"matches issuer #{issuers[0] + 1} of the chain, which verifies "
                                                      "up to it, and the server certificate is valid for the name")


def _chain_problem(chain_der: Sequence[bytes], anchor: int, valid_at: datetime.datetime) -> Optional[str]:
    """Why the presented chain does not verify from the server certificate up to position anchor, or None."""
    parsed = [certlib.load_der(der) for der in chain_der[:anchor + 1]]
    for position in range(anchor):
        child, issuer = parsed[position], parsed[position + 1]
        if not certlib.signature_verifies(child, chain_der[position], certlib.read_public_key(issuer)):
            return f"certificate #{position + 2} of the chain did not sign certificate #{position + 1}"
        if not _is_ca(issuer):
            return f"certificate #{position + 2} of the chain is not a CA"
        if not certlib.not_before(child) <= valid_at <= certlib.not_after(child):
            return f"certificate #{position + 1} of the chain is outside its validity period"
    return None


def _is_ca(cert) -> bool:
    from cryptography import x509  # not at the top: the import is guarded in deps, callers already required it

    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _name_problem(leaf_der: bytes, mx_host: str, domain: Optional[str]) -> Optional[str]:
    """None when the server certificate is valid for the MX host or the next-hop domain (RFC 7672 section 3.2.2)."""
    cert = certlib.load_der(leaf_der)
    info = certlib.describe(cert, derlib.parse_certificate(leaf_der), certlib.read_public_key(cert), False)
    wanted = [name for name in dict.fromkeys([mx_host, domain]) if name]
    if any(nameslib.match_name(name, info.dns_names, info.ip_addresses, info.common_names).matches
           for name in wanted):
        return None
    return (f"the server certificate is not valid for {' or '.join(wanted)} (DANE-TA checks names): get one that "
            f"lists {mx_host}")
