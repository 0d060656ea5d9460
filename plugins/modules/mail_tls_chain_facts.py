#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: mail_tls_chain_facts
short_description: Build and analyse the certificate chain a mail server must send
version_added: 1.0.0
description:
  - Reads certificates in any order and format, finds the leaf, builds the chain a server must send (leaf,
    its issuer, ..., root excluded) with signatures as proof, and reports every problem with a stable issue
    code (see the collection's C(docs/issue-codes.md)).
  - Parenthood is proved by signature (RSA PKCS#1 v1.5 and PSS, ECDSA, Ed25519, Ed448), never by names.
  - Returns the facts under C(ansible_facts.mail_tls_chain). Changes nothing.
author:
  - mailops.tls maintainers (@mailops)
extends_documentation_fragment:
  - mailops.tls.chain_inputs
  - mailops.tls.chain_inputs.files
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - ansible.builtin.action_common_attributes.facts
attributes:
  action_group:
    support: full
    membership:
      - mailops.tls.trust
      - mailops.tls.judging
      - mailops.tls.chain_files
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
seealso:
  - module: mailops.tls.mail_tls_assert
"""

EXAMPLES = r"""
- name: Analyse the chain Postfix serves
  mailops.tls.mail_tls_chain_facts:
    path: /etc/postfix/fullchain.pem
    names: [mail.example.org, smtp.example.org]

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ ansible_facts.mail_tls_chain.issues | map(attribute='message') }}"

- name: Build the chain from an unordered pile, a CA bundle and a private root
  mailops.tls.mail_tls_chain_facts:
    path:
      - /root/certs/from-ca-mail.p7b
      - /root/certs/leaf.crt
    pool: [/root/certs/intermediates/]
    roots: [/root/certs/private-root.pem]
    private_key_path: /etc/ssl/private/mail.key
    names: [imap.example.org]
    valid_at: "2027-01-31"
"""

RETURN = r"""
ansible_facts:
  description: Facts about the chain.
  returned: always
  type: dict
  contains:
    mail_tls_chain:
      description: The analysis. Every certificate record has the same keys as RV(ansible_facts.mail_tls_chain.chain).
      returned: always
      type: dict
      contains:
        certificates:
          description: Every certificate given in O(path) and O(content), in input order, duplicates included.
          returned: always
          type: list
          elements: dict
        chain:
          description: The chain as the server must send it, leaf first, root excluded.
          returned: always
          type: list
          elements: dict
          contains:
            index:
              description: Position in RV(ansible_facts.mail_tls_chain.certificates), or V(null) if it came
                from O(pool) or O(roots).
              type: int
            source:
              description: Where it was found, for example C(block 2 of /etc/postfix/fullchain.pem), or
                C(block 7 of /etc/ssl/ca-bundle.pem (pool)) for certificates taken from O(pool), O(roots) or the
                system trust store.
              type: str
            subject:
              description: Subject in RFC 4514 form.
              type: str
              sample: CN=mail.example.org
            issuer:
              description: Issuer in RFC 4514 form.
              type: str
            common_names:
              description: The subject's CN values.
              type: list
              elements: str
            dns_names:
              description: subjectAltName dNSName entries.
              type: list
              elements: str
            ip_addresses:
              description: subjectAltName iPAddress entries.
              type: list
              elements: str
            serial:
              description: Serial number as colon-separated hex.
              type: str
            not_before:
              description: Start of validity, UTC, ISO 8601.
              type: str
              sample: "2026-01-01T00:00:00Z"
            not_after:
              description: End of validity, UTC, ISO 8601.
              type: str
            days_left:
              description: Whole days from O(valid_at) (or now) to C(not_after).
              type: int
            key_type:
              description: Public key type.
              type: str
              sample: rsa
              choices: [rsa, ecdsa, ed25519, ed448, dsa]
            key_size:
              description: Key size in bits.
              type: int
            key_curve:
              description: Curve name of an ECDSA key, otherwise V(null).
              type: str
            signature_algorithm:
              description: Signature algorithm name.
              type: str
              sample: sha256WithRSAEncryption
            is_ca:
              description: Whether basicConstraints says cA.
              type: bool
            path_length:
              description: basicConstraints pathLenConstraint, or V(null).
              type: int
            subject_key_id:
              description: Subject key identifier as colon-separated hex, or V(null).
              type: str
            authority_key_id:
              description: Authority key identifier as colon-separated hex, or V(null).
              type: str
            aia_ca_issuers:
              description: Where the issuer's certificate can be fetched (AIA caIssuers).
              type: list
              elements: str
            self_signed:
              description: Whether the certificate is signed by its own key.
              type: bool
            fingerprints:
              description: Fingerprints in the colon-separated uppercase hex of C(openssl x509 -fingerprint).
              type: dict
              contains:
                md5:
                  description: MD5 of the DER certificate.
                  type: str
                sha1:
                  description: SHA-1 of the DER certificate.
                  type: str
                sha256:
                  description: SHA-256 of the DER certificate; identifies the certificate in every result.
                  type: str
                spki_sha256:
                  description: SHA-256 of the SubjectPublicKeyInfo.
                  type: str
            tlsa:
              description:
                - The DANE TLSA records (RFC 6698) that match this certificate, as zone files write them after
                  C(IN TLSA). For the leaf usage 3 (DANE-EE), for every other certificate usage 2 (DANE-TA); selector
                  1 (public key) and 0 (certificate) with SHA-256, then the same with SHA-512.
                - The first is the one to publish (C(3 1 1) for the leaf, C(2 1 1) for its issuer).
              type: list
              elements: str
              sample: ["3 1 1 5e8a...04c1", "3 0 1 9b1f...77aa", "3 1 2 ...", "3 0 2 ..."]
        root:
          description: The root the chain ends in, or V(null) when the chain is incomplete.
          returned: always
          type: dict
        issues:
          description: Every finding.
          returned: always
          type: list
          elements: dict
          contains:
            code:
              description: Stable issue code, documented in C(docs/issue-codes.md).
              type: str
              sample: missing_intermediate
            severity:
              description: How bad it is.
              type: str
              choices: [error, warning, info]
            message:
              description: What is wrong, where, and how to fix it.
              type: str
            certificate:
              description: The certificate it is about (V(null) if none), with C(index), C(sha256) and C(subject).
              type: dict
        names:
          description: One result per O(names) entry.
          returned: always
          type: list
          elements: dict
          contains:
            name:
              description: The name as requested.
              type: str
            normalized:
              description: Lowercase A-label form, or the canonical IP address.
              type: str
            matches:
              description: Whether the leaf is valid for it.
              type: bool
            matched_by:
              description: The certificate entry that matched, or V(null).
              type: str
            source:
              description: Where that entry is.
              type: str
              choices: [dns_san, ip_san, common_name]
            wildcard:
              description: Whether only a wildcard matched.
              type: bool
            cn_only:
              description: Whether only the subject CN matched (no subjectAltName at all).
              type: bool
            reason:
              description: Why it matched or not.
              type: str
        complete:
          description: Whether the given certificates alone reach a root (no intermediate missing).
          returned: always
          type: bool
        ordered:
          description: Whether the given certificates are in serving order.
          returned: always
          type: bool
        trusted:
          description: Whether the chain ends in a trust anchor and breaks no rule of path validation (name
            constraints, extension criticality, version, extended key usage, depth; see docs/validation.md).
          returned: always
          type: bool
        key_matches:
          description: Whether the private key belongs to the leaf; V(null) when no key was given.
          returned: always
          type: bool
        alternatives:
          description: Other valid paths to a trust anchor (cross-signed CAs), each as the SHA-256 fingerprints of
            the certificates it would serve.
          returned: always
          type: list
          elements: list
        signature_checks:
          description: How many signatures were verified to build the chain.
          returned: always
          type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.tls.plugins.module_utils.analysis import analyze
from ansible_collections.mailops.tls.plugins.module_utils.deps import cryptography_problem
from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.module_args import (
    CHAIN_INPUT_REQUIRED_ONE_OF,
    CHAIN_INPUT_SPEC,
    request_from_params,
)


def main() -> None:
    module = AnsibleModule(argument_spec=CHAIN_INPUT_SPEC, required_one_of=CHAIN_INPUT_REQUIRED_ONE_OF,
                           supports_check_mode=True)
    problem = cryptography_problem()
    if problem:
        module.fail_json(msg=problem)
    try:
        analysis = analyze(request_from_params(module.params))
    except MailTlsError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts={"mail_tls_chain": analysis.as_dict()})


if __name__ == "__main__":
    main()
