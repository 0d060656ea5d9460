#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: mail_tls_root_info
short_description: Find the root certificate of a mail server's CA and describe it for publication
version_added: 1.0.0
description:
  - Finds the CA root certificate that users of a private or uncommon CA must install, and returns it as PEM with
    everything a page for users and support staff shows (subject, validity, serial, fingerprints) and a file name
    made from the CA's name.
  - The root is the only certificate in O(path) and O(content); or the root at the top of the chain they build,
    completed from O(pool), O(roots) and the system trust store; or, with O(sha256), the certificate with that
    fingerprint among all of these (for the C(root) record of a M(mailops.tls.mail_tls_chain_facts) result).
  - Warns when the certificate is not self-signed (so not a root), when it is in the system trust store (a publicly
    trusted root needs no publishing) and when it has expired.
  - The role C(mailops.tls.publish_root) uses it with M(mailops.tls.mail_tls_root_files) to publish the root.
  - Changes nothing.
author:
  - mailops.tls maintainers (@mailops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  action_group:
    support: full
    membership:
      - mailops.tls.trust
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  path:
    description:
      - Files with the root, or with a chain or bundle that leads to it, on the host that runs the module, in any
        format M(mailops.tls.mail_tls_chain_facts) reads (PEM, DER, PKCS#7, PKCS#12).
      - Give O(path), O(content) or O(sha256) (or several).
    type: list
    elements: path
  content:
    description:
      - PEM text with the root, or with a chain that leads to it, read after the files of O(path).
      - Kept out of logs and results when it may hold a private key (a PEM key block, or text that is not PEM);
        certificates alone are public and logged as given.
    type: str
  sha256:
    description:
      - The SHA-256 fingerprint of the certificate to publish, with or without colons, in any case. It is looked
        for in O(path), O(content), O(roots), O(pool) and the system trust store.
      - For example the C(root.fingerprints.sha256) of a M(mailops.tls.mail_tls_chain_facts) result.
    type: str
  roots:
    description:
      - Files or directories of trust anchors, for example the private CA's root, to complete a chain up to its root.
    type: list
    elements: path
    default: []
    aliases: [root_certificates]
  pool:
    description:
      - Files or directories of extra intermediates to complete a chain up to its root.
    type: list
    elements: path
    default: []
    aliases: [intermediate_certificates]
  system_roots:
    description:
      - Also complete chains from the system trust store. The store is always read to tell whether the root is
        publicly trusted.
    type: bool
    default: true
requirements:
  - Python >= 3.9 and cryptography >= 36.0 on the host that runs the module
seealso:
  - module: mailops.tls.mail_tls_root_files
  - module: mailops.tls.mail_tls_chain_facts
"""

EXAMPLES = r"""
- name: Describe the private CA's root
  mailops.tls.mail_tls_root_info:
    path: /etc/ssl/private-ca/root.pem
  register: root

- name: Show its SHA-256 fingerprint
  ansible.builtin.debug:
    msg: "{{ root.name }}: {{ root.root.fingerprints.sha256 }}"

- name: Find the root a chain ends in, by the fingerprint mail_tls_chain_facts reported
  mailops.tls.mail_tls_root_info:
    path: [/etc/postfix/fullchain.pem]
    roots: [/etc/ssl/private-ca/]
    sha256: "{{ ansible_facts.mail_tls_chain.root.fingerprints.sha256 }}"
  delegate_to: localhost
"""

RETURN = r"""
root:
  description: The certificate, as the certificate records of M(mailops.tls.mail_tls_chain_facts).
  returned: success
  type: dict
  contains:
    index:
      description: Position among the certificates of O(path) and O(content), or V(null) if it came from O(roots),
        O(pool) or the system trust store.
      type: int
    source:
      description: Where it was found, for example C(block 1 of /etc/ssl/private-ca/root.pem).
      type: str
    subject:
      description: Subject in RFC 4514 form.
      type: str
      sample: CN=Example Private Root CA,O=Example
    issuer:
      description: Issuer in RFC 4514 form (the subject again for a root).
      type: str
    common_names:
      description: The subject's CN values.
      type: list
      elements: str
    dns_names:
      description: subjectAltName dNSName entries (usually none for a CA).
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
    not_after:
      description: End of validity, UTC, ISO 8601.
      type: str
    days_left:
      description: Whole days from now to C(not_after).
      type: int
    key_type:
      description: Public key type.
      type: str
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
      description: Whether the certificate is signed by its own key, as a root is.
      type: bool
    fingerprints:
      description: Fingerprints in the colon-separated uppercase hex of C(openssl x509 -fingerprint), as the
        publication pages show them.
      type: dict
      contains:
        md5:
          description: MD5 of the DER certificate.
          type: str
        sha1:
          description: SHA-1 of the DER certificate.
          type: str
        sha256:
          description: SHA-256 of the DER certificate.
          type: str
        spki_sha256:
          description: SHA-256 of the SubjectPublicKeyInfo.
          type: str
pem:
  description: The certificate as PEM text.
  returned: success
  type: str
name:
  description: The CA's name, its subject CN (else its organization, else its whole subject).
  returned: success
  type: str
  sample: Example Private Root CA
slug:
  description: A file name made from RV(name), lowercase ASCII letters, digits and dashes.
  returned: success
  type: str
  sample: example-private-root-ca
self_signed:
  description: Whether the certificate is signed by its own key, as a root is.
  returned: success
  type: bool
publicly_trusted:
  description: Whether the system trust store holds it (or a certificate with its subject and public key).
  returned: success
  type: bool
trust_store:
  description: The system trust store that was read (a bundle, or a hashed directory such as E(SSL_CERT_DIR)
    names), or V(null) when this host has none.
  returned: success
  type: str
notes:
  description: The warnings, also given as Ansible warnings.
  returned: success
  type: list
  elements: str
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.tls.plugins.module_utils.analysis import (
    load_certificates,
    load_judgement,
    load_trust_store,
    system_trust_store,
)
from ansible_collections.mailops.tls.plugins.module_utils.deps import cryptography_problem
from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.load import may_hold_private_key
from ansible_collections.mailops.tls.plugins.module_utils.rootpub import find_root

ARGUMENT_SPEC = {
    "path": {"type": "list", "elements": "path"},
    "content": {"type": "str", "no_log": True},
    "sha256": {"type": "str"},
    "roots": {"type": "list", "elements": "path", "default": [], "aliases": ["root_certificates"]},
    "pool": {"type": "list", "elements": "path", "default": [], "aliases": ["intermediate_certificates"]},
    "system_roots": {"type": "bool", "default": True},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_one_of=[("path", "content", "sha256")],
                           supports_check_mode=True)
    problem = cryptography_problem()
    if problem:
        module.fail_json(msg=problem)
    params = module.params
    if params["content"] and not may_hold_private_key(params["content"]):
        # Certificates alone are public, and the root's PEM returned must not be masked as a secret would be.
        module.no_log_values.discard(params["content"])
    try:
        given, _keys = load_certificates(params["path"] or (), params["content"])
        judgement = load_judgement(params["pool"], params["roots"], params["system_roots"])
        store = system_trust_store()
        system = judgement.system_roots if params["system_roots"] else load_trust_store(store)
        published = find_root(given, judgement, system, store, params["sha256"])
    except MailTlsError as exc:
        module.fail_json(msg=str(exc))
    for note in published.notes:
        module.warn(note)
    module.exit_json(changed=False, **published.as_dict(datetime.datetime.now(datetime.timezone.utc)))


if __name__ == "__main__":
    main()
