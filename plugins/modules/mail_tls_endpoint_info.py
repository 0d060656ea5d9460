#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: mail_tls_endpoint_info
short_description: Probe live mail endpoints and judge the certificate chains they present
version_added: 1.0.0
description:
  - Connects to each endpoint (SMTP and submission with STARTTLS, SMTPS, IMAP with STARTTLS, IMAPS, POP3 with
    STLS, POP3S, ManageSieve, LMTP, or plain TLS), captures the certificate chain exactly as the server sends
    it, even when it does not verify, and judges it offline with the same analysis and issue codes as
    M(mailops.tls.mail_tls_chain_facts) (see the collection's C(docs/issue-codes.md)).
  - Compares the endpoints too. Endpoints answering for one name on one port that present different chains
    get C(backend_mismatch); services of one address answering for one name with different chains get
    C(service_mismatch).
  - Probes run concurrently (O(concurrency)), each within its own deadline (O(timeout)); one silent or
    hostile endpoint never delays the others beyond its deadline and never fails the call. Results come in
    input order, one per endpoint and key type.
  - The probes run on the host that runs the module. Delegate the task to C(localhost) to probe from the
    controller, which also works where the managed host's Python (3.9) cannot capture chains and has no
    C(openssl) command.
  - Only connects where told to; changes nothing.
author:
  - mailops.tls maintainers (@mailops)
extends_documentation_fragment:
  - mailops.tls.chain_inputs
  - mailops.tls.chain_inputs.endpoints
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  action_group:
    support: full
    membership:
      - mailops.tls.trust
      - mailops.tls.judging
      - mailops.tls.endpoints
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  endpoints:
    required: true
seealso:
  - module: mailops.tls.mail_tls_assert
  - module: mailops.tls.mail_tls_chain_facts
"""

EXAMPLES = r"""
- name: Probe two backends and the load balancer
  mailops.tls.mail_tls_endpoint_info:
    endpoints:
      - {address: 192.0.2.11, port: 993, server_name: imap.example.org, label: mx1}
      - {address: 192.0.2.12, port: 993, server_name: imap.example.org, label: mx2}
      - {address: imap.example.org, port: 993, label: load balancer}
      - {address: 192.0.2.11, port: 25, server_name: mail.example.org, label: mx1}
    roots: [/etc/ssl/private-ca/root.pem]
  delegate_to: localhost
  register: probe

- name: Show each endpoint's problems
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.issues | map(attribute='code') | join(', ') or 'ok' }}"
  loop: "{{ probe.endpoints }}"

- name: Ask a dual-certificate server for its RSA and its ECDSA chain
  mailops.tls.mail_tls_endpoint_info:
    endpoints:
      - {address: mail.example.org, port: 465}
    key_types: [rsa, ecdsa]
"""

RETURN = r"""
endpoints:
  description: One result per endpoint and key type, in input order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The endpoint as messages name it, C(address:port (label) protocol [key type][, probe N]).
      type: str
      sample: 192.0.2.11:993 (mx1) imaps
    address:
      description: What was connected to, as given, or one address of the name with
        O(endpoints[].every_address).
      type: str
    peer_address:
      description: The IP address that accepted the connection (for a name, the address that answered);
        V(null) when no address did.
      type: str
      sample: 2001:db8::11
    port:
      description: The TCP port.
      type: int
    protocol:
      description: The protocol spoken, given or derived from the port.
      type: str
    server_name:
      description: The public name given, or V(null).
      type: str
    sni:
      description: The name sent as SNI, or V(null) when none was sent.
      type: str
    label:
      description: The label given, or V(null).
      type: str
    key_type_requested:
      description: The key type asked for with O(key_types), or V(null).
      type: str
    key_type:
      description: The key type of the leaf the server presented.
      type: str
    sample:
      description: This probe's number among the probes of a load balancer (O(endpoints[].backends)), from 1;
        V(0) for an endpoint probed once.
      type: int
    ok:
      description: Whether a chain was captured.
      type: bool
    error:
      description: Why no chain was captured, with C(code) (for example V(connect_refused),
        V(starttls_not_offered), V(timeout)) and C(message); V(null) when O(endpoints[].address) answered.
      type: dict
    tls_version:
      description: The TLS version negotiated.
      type: str
      sample: TLSv1.3
    cipher:
      description: The cipher suite negotiated (OpenSSL's name).
      type: str
    seconds:
      description: Time from connect to the end of the handshake or the failure.
      type: float
    presented:
      description: The certificates exactly as the server sent them, in its order, as the certificate records of
        M(mailops.tls.mail_tls_chain_facts).
      type: list
      elements: dict
    chain:
      description: The chain the server should send (leaf first, root excluded), built from what it sent plus
        O(pool) and the anchors.
      type: list
      elements: dict
    root:
      description: The root the chain ends in, or V(null).
      type: dict
    names:
      description: One result per name checked (the server name, then O(names)), as in
        M(mailops.tls.mail_tls_chain_facts).
      type: list
      elements: dict
    complete:
      description: Whether what the server sent reaches a root without help from O(pool).
      type: bool
    ordered:
      description: Whether the server sent its certificates in order.
      type: bool
    trusted:
      description: Whether the chain ends in a trust anchor.
      type: bool
    issues:
      description: Every finding for this endpoint, with C(code), C(severity), C(message) and C(certificate).
      type: list
      elements: dict
sampled:
  description: Per load balancer endpoint (O(endpoints[].backends)) and key type, how it was sampled.
  returned: always
  type: list
  elements: dict
  contains:
    endpoint:
      description: The endpoint, C(address:port (label)).
      type: str
    address:
      description: What was connected to.
      type: str
    port:
      description: The TCP port.
      type: int
    server_name:
      description: The public name given, or V(null).
      type: str
    key_type_requested:
      description: The key type asked for with O(key_types), or V(null).
      type: str
    probes:
      description: Probes made, at most O(endpoints[].probes); fewer when every server answered with its own chain.
      type: int
    answered:
      description: Probes that captured a chain.
      type: int
    chains:
      description: How many different chains answered behind this port. More than one is a C(backend_mismatch).
      type: int
issues:
  description: Every finding of every endpoint, each with the key C(endpoint) naming it.
  returned: always
  type: list
  elements: dict
summary:
  description: Counts over all endpoints.
  returned: always
  type: dict
  contains:
    probed:
      description: Endpoint probes made (endpoints times key types).
      type: int
    answered:
      description: Probes that captured a chain.
      type: int
    clean:
      description: Probes that captured a chain and have no C(error) finding.
      type: int
    errors:
      description: Findings of severity C(error) over all endpoints.
      type: int
    warnings:
      description: Findings of severity C(warning) over all endpoints.
      type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.tls.plugins.module_utils.deps import cryptography_problem
from ansible_collections.mailops.tls.plugins.module_utils.endpoint_args import ENDPOINT_SPEC, probe_endpoints
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import endpoint_results
from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.module_args import JUDGING_SPEC


def main() -> None:
    argument_spec = dict(JUDGING_SPEC, **ENDPOINT_SPEC)
    argument_spec["endpoints"] = dict(ENDPOINT_SPEC["endpoints"], required=True)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    problem = cryptography_problem()
    if problem:
        module.fail_json(msg=problem)
    try:
        reports = probe_endpoints(module.params)
    except MailTlsError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **endpoint_results(reports))


if __name__ == "__main__":
    main()
