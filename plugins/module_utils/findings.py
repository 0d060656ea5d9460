# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The one vocabulary of issue codes shared by every module, the roles and docs/issue-codes.md."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)

# code -> (default severity, one-line summary). docs/issue-codes.md explains each; a test keeps them in step.
CODES = {
    "parse_error": (ERROR, "a file or one of its blocks cannot be read"),
    "ignored_block": (INFO, "a PEM block that is neither a certificate nor a private key was skipped"),
    "no_certificate": (ERROR, "no certificate was found in the input"),
    "wrong_order": (ERROR, "the certificates are not in the order leaf, issuer, issuer's issuer"),
    "missing_intermediate": (ERROR, "an intermediate certificate needed to reach the root is not in the bundle"),
    "root_included": (INFO, "the bundle contains the root certificate, which servers need not send"),
    "unrelated_certificate": (WARNING, "a certificate in the bundle is not part of the leaf's chain"),
    "duplicate_certificate": (WARNING, "the same certificate appears more than once"),
    "untrusted_root": (ERROR, "the chain ends in a root that is not a trust anchor"),
    "chain_cycle": (ERROR, "the issuers form a cycle and no path reaches a root"),
    "chain_search_limit": (ERROR, "the search for a path stopped at its signature-check budget"),
    "cross_signed": (INFO, "more than one valid path exists (a cross-signed CA); the chosen one is named"),
    "expired": (ERROR, "a certificate's validity has ended"),
    "not_yet_valid": (ERROR, "a certificate's validity has not begun"),
    "expires_soon": (WARNING, "a certificate expires within the warning threshold"),
    "expires_critical": (ERROR, "a certificate expires within the critical threshold"),
    "not_a_ca": (ERROR, "a certificate used as an issuer is not allowed to sign certificates"),
    "path_length_exceeded": (ERROR, "a CA's pathLenConstraint is exceeded by the certificates below it"),
    "bad_signature": (ERROR, "a certificate names an issuer whose key did not sign it"),
    "chain_too_deep": (ERROR, "the path has more intermediates than max_chain_depth allows"),
    "certificate_version": (ERROR, "a leaf or intermediate is an X.509 version 1 certificate"),
    "unknown_critical_extension": (ERROR, "a certificate has a critical extension clients do not understand"),
    "basic_constraints_not_critical": (ERROR, "a CA certificate's basicConstraints extension is not critical"),
    "san_criticality": (ERROR, "the leaf's subjectAltName criticality does not fit its subject"),
    "ca_as_leaf": (ERROR, "the leaf is a CA certificate issued by another CA"),
    "issuer_missing_server_auth": (ERROR, "an intermediate's extended key usage excludes TLS servers"),
    "name_constraint_violation": (ERROR, "a name is outside the name constraints of a CA above it"),
    "name_constraints_too_complex": (ERROR, "checking a CA's name constraints exceeded the work budget"),
    "name_mismatch": (ERROR, "the leaf is not valid for a name clients connect by"),
    "wildcard_used": (WARNING, "a name is matched only by a wildcard, which some mail clients reject"),
    "cn_only": (WARNING, "a name is only in the subject CN, which modern clients ignore"),
    "key_mismatch": (ERROR, "the private key does not belong to the leaf certificate"),
    "no_private_key": (ERROR, "the file given as the private key holds no private key"),
    "weak_key": (ERROR, "a key is too small to be trusted"),
    "weak_signature": (ERROR, "a certificate is signed with MD5 or SHA-1"),
    "missing_server_auth": (ERROR, "the leaf's extended key usage does not allow TLS servers"),
    "leaf_is_ca": (WARNING, "the leaf is a CA certificate, which some clients refuse for servers"),
    # Live endpoints: why no chain could be seen, and chains that differ where they must not.
    "connect_refused": (ERROR, "nothing accepts connections on the endpoint's address and port"),
    "connect_timeout": (ERROR, "the TCP connection was not established before the deadline"),
    "connect_failed": (ERROR, "the address does not resolve or cannot be reached"),
    "starttls_not_offered": (ERROR, "the server does not advertise STARTTLS (STLS for POP3)"),
    "starttls_rejected": (ERROR, "the server refused STARTTLS, for example with 454 TLS not available"),
    "protocol_error": (ERROR, "the server's dialogue was not the protocol expected"),
    "tls_handshake_failed": (ERROR, "the TLS handshake failed: an alert, plaintext or garbage"),
    "timeout": (ERROR, "the endpoint did not finish connect, dialogue and handshake before the deadline"),
    "probe_unsupported": (ERROR, "this Python cannot capture the chain and no openssl command was found"),
    "backend_mismatch": (ERROR, "backends answering for one name and service present different chains"),
    "service_mismatch": (WARNING, "services of one address answering for one name present different chains"),
    # The deploy role: server configuration that hides or overrides the deployed chain.
    "intermediate_in_cafile": (WARNING, "an intermediate sits in Postfix smtpd_tls_CAfile or Dovecot ssl_ca"),
    "setting_overridden": (WARNING, "another setting overrides the deployed certificate files"),
    "tlsproxy_overridden": (WARNING, "postscreen's TLS proxy was given certificate files of its own"),
    "old_chain_served": (ERROR, "after the deployment a port still presents the previous chain"),
    # DNS: DANE TLSA records (RFC 7672) and MTA-STS (RFC 8461), which sending servers enforce on port 25.
    "dns_lookup_failed": (ERROR, "a DNS lookup failed, or its DNSSEC validation did (a bogus signature)"),
    "tlsa_mismatch": (ERROR, "no usable TLSA record authenticates the chain, so DANE senders defer mail"),
    "tlsa_unusable": (WARNING, "a TLSA record cannot authenticate SMTP (PKIX-TA, PKIX-EE or unknown parameters)"),
    "tlsa_insecure": (WARNING, "TLSA records are published but not DNSSEC-validated, so DANE does not apply"),
    "tlsa_leftover": (INFO, "a TLSA record matches no certificate the server presents"),
    "mta_sts_invalid": (ERROR, "the MTA-STS record or policy cannot be fetched or parsed"),
    "mta_sts_mx_mismatch": (ERROR, "an MX host matches no mx pattern of the MTA-STS policy"),
    "mta_sts_certificate": (ERROR, "an MX host's certificate is not valid for its name under Web PKI rules"),
    "mta_sts_missing": (INFO, "the domain publishes no MTA-STS policy"),
    "tls_rpt_missing": (INFO, "the domain publishes no TLS-RPT record (_smtp._tls)"),
}

# Codes only live endpoints give: a probe that saw no chain, or chains that differ between endpoints.
PROBE_ERROR_CODES = ("connect_refused", "connect_timeout", "connect_failed", "starttls_not_offered",
                     "starttls_rejected", "protocol_error", "tls_handshake_failed", "timeout", "probe_unsupported")
ENDPOINT_CODES = (*PROBE_ERROR_CODES, "backend_mismatch", "service_mismatch")
DEPLOY_CODES = ("intermediate_in_cafile", "setting_overridden", "tlsproxy_overridden", "old_chain_served")
DANE_CODES = ("dns_lookup_failed", "tlsa_mismatch", "tlsa_unusable", "tlsa_insecure", "tlsa_leftover")
MTA_STS_CODES = ("mta_sts_invalid", "mta_sts_mx_mismatch", "mta_sts_certificate", "mta_sts_missing", "tls_rpt_missing")
CHAIN_CODES = tuple(code for code in CODES
                    if code not in (*ENDPOINT_CODES, *DEPLOY_CODES, *DANE_CODES, *MTA_STS_CODES))


@dataclass(frozen=True)
class CertificateRef:
    """Which certificate a finding is about: its position in the input (None if not given) and SHA-256."""

    index: Optional[int]
    sha256: str
    subject: str


@dataclass(frozen=True)
class Finding:
    """One issue found: a stable code, a severity and a message saying what, where and how to fix it."""

    code: str
    severity: str
    message: str
    certificate: Optional[CertificateRef] = None

    def as_dict(self) -> dict:
        cert = self.certificate
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "certificate": None if cert is None else {"index": cert.index, "sha256": cert.sha256,
                                                      "subject": cert.subject},
        }


def finding(code: str, message: str, certificate: Optional[CertificateRef] = None,
            severity: Optional[str] = None) -> Finding:
    """Create a finding with the code's default severity unless one is given."""
    if code not in CODES:
        raise KeyError(f"unknown issue code {code!r}: add it to CODES and docs/issue-codes.md")
    return Finding(code, severity or CODES[code][0], message, certificate)
