#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: mail_tls_dane_info
short_description: Check a mail domain as sending servers do, through DANE TLSA records and MTA-STS
version_added: 1.0.0
description:
  - Looks up the domain's MX hosts, their addresses and their TLSA records (C(_25._tcp.<mx>) and the other
    O(ports)) through one resolver, reads the resolver's DNSSEC verdict (the AD bit), probes each MX host on each
    port and judges the chain it presents as DANE-validating senders (Postfix, Exim, large providers) do, following
    RFC 7672 and RFC 7671.
  - DANE-EE (C(3 x x)) records ignore names and dates; DANE-TA (C(2 x x)) records need a presented issuer, a chain
    that verifies up to it and a server certificate valid for the MX host or the domain; PKIX-TA and PKIX-EE records
    (C(0 x x), C(1 x x)) are reported as unusable; answers without the AD bit mean DANE does not apply.
  - With O(path) or O(content), judges that chain (the one a deployment is about to serve) instead of probing, and
    returns the records to publish before it may go live and how long to wait (the TTL). The C(deploy) role uses
    this to refuse a rollover the published records do not cover yet.
  - Unless O(mta_sts=false), also fetches the MTA-STS policy (RFC 8461) over HTTPS with Web PKI verification,
    checks each MX host against its C(mx) patterns and each MX host's port-25 chain under Web PKI rules, and reports
    whether a TLS-RPT record (RFC 8460) is published.
  - DNS goes through a small built-in stub resolver (UDP, TCP when truncated), so the host that runs the module
    needs no DNS library. Point O(resolver) at a validating resolver; a stub that does not validate never sets the
    AD bit and every record reads as insecure.
  - Issue codes are in the collection's C(docs/issue-codes.md); C(docs/dane.md) shows the rollover step by step.
author:
  - mailops.tls maintainers (@mailops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  action_group:
    support: none
    membership: []
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  domain:
    description:
      - The mail domain (the next-hop domain senders look up), for example V(example.org).
    type: str
    required: true
  mx:
    description:
      - The MX host names to check. By default the domain's MX records are looked up (the domain itself when it has
        none).
    type: list
    elements: str
    default: []
  ports:
    description:
      - The TCP ports whose TLSA records (C(_<port>._tcp.<mx>)) and chains are checked; the protocol is the port's
        usual one (SMTP with STARTTLS on 25 and 587).
    type: list
    elements: int
    default: [25]
  resolver:
    description:
      - IP address of the validating resolver to ask. By default the first C(nameserver) of C(/etc/resolv.conf).
    type: str
  resolver_port:
    description:
      - UDP and TCP port of O(resolver).
    type: int
    default: 53
  tlsa:
    description:
      - TLSA records to judge against instead of looking them up, as C(usage selector matching-type hex), for
        example V(3 1 1 0c72...e2); the same for every MX host and port, and taken as DNSSEC-validated.
    type: list
    elements: str
    default: []
  path:
    description:
      - Files holding the chain to judge instead of the chains the MX hosts present (a planned deployment); the
        chain is built from them as M(mailops.tls.mail_tls_chain_facts) builds it. MTA-STS is then not checked.
    type: list
    elements: path
  content:
    description:
      - The chain to judge as PEM text, like O(path).
    type: str
  mta_sts:
    description:
      - Check the MTA-STS policy and the TLS-RPT record too.
    type: bool
    default: true
  roots:
    description:
      - Files or directories of extra trust anchors for the Web PKI checks of MTA-STS (the policy's HTTPS server
        and the MX hosts' chains), for example a test CA.
    type: list
    elements: path
    default: []
  system_roots:
    description:
      - Also trust the system trust store for the Web PKI checks.
    type: bool
    default: true
  valid_at:
    description:
      - Judge validity at this time instead of now (ISO 8601), as in M(mailops.tls.mail_tls_chain_facts).
    type: str
  timeout:
    description:
      - Seconds each DNS query, probe and policy fetch may take.
    type: float
    default: 10.0
  concurrency:
    description:
      - How many MX hosts and ports are probed at once.
    type: int
    default: 16
requirements:
  - cryptography >= 36.0 on the host that runs the module
seealso:
  - module: mailops.tls.mail_tls_endpoint_info
  - plugin: mailops.tls.tlsa
    plugin_type: filter
"""

EXAMPLES = r"""
- name: What DANE and MTA-STS senders see of example.org
  mailops.tls.mail_tls_dane_info:
    domain: example.org
    resolver: 127.0.0.53
  delegate_to: localhost
  register: dane

- name: Refuse to deploy a chain the published TLSA records do not cover yet
  mailops.tls.mail_tls_dane_info:
    domain: example.org
    mx: [mx1.example.org]
    path: [/root/certs/new-fullchain.pem]
    mta_sts: false
  register: planned
  failed_when: planned.records_to_publish | length > 0

- name: Records to remove after the rollover
  ansible.builtin.debug:
    msg: "{{ dane.leftover_records }}"
"""

RETURN = r"""
domain:
  description: The domain checked.
  returned: always
  type: str
resolver:
  description: The resolver asked, as C(address:port).
  returned: always
  type: str
mx:
  description: The MX hosts, by preference.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Host name.
      type: str
    preference:
      description: MX preference, V(null) when given in O(mx) or implied.
      type: int
    addresses:
      description: IPv4 and IPv6 addresses from DNS.
      type: list
      elements: str
    secure:
      description: Whether the MX and address answers were DNSSEC-validated (without it DANE does not apply).
      type: bool
    error:
      description: Why the address lookup failed, or V(null).
      type: str
endpoints:
  description:
    - One entry per MX host and port. Probed ones have every key of the C(endpoints) of
      M(mailops.tls.mail_tls_endpoint_info) plus the keys below; planned ones (O(path), O(content)) have only
      C(name), C(mx), C(port), C(probed), C(dane) and C(issues).
  returned: always
  type: list
  elements: dict
  contains:
    mx:
      description: The MX host name.
      type: str
    probed:
      description: Whether the chain judged was probed (false for a planned chain).
      type: bool
    dane:
      description: The DANE verdict, V(null) when the probe captured no chain.
      type: dict
      contains:
        status:
          description:
            - V(verified) a usable record authenticates the chain; V(mismatch) none does (senders defer mail);
              V(unusable) records exist but none is usable; V(insecure) not DNSSEC-validated; V(no_records);
              V(lookup_failed) no answer or a bogus one (senders defer mail).
          type: str
          choices: [verified, mismatch, unusable, insecure, no_records, lookup_failed]
        applies:
          description: Whether DANE senders enforce the records (false for V(insecure) and V(no_records)).
          type: bool
        tlsa:
          description: The record set, with C(name), C(records), C(secure), C(ttl) (the zone's TTL from the
            signature when known) and C(error).
          type: dict
        records:
          description: Each record's verdict, with C(usage), C(selector), C(matching_type), C(data), C(record),
            C(mnemonic), C(usable), C(matches) (positions in the chain), C(authenticates) and C(reason).
          type: list
          elements: dict
        to_publish:
          description: The records that authenticate this chain, C(3 1 1) for its key and C(2 1 1) for its issuer.
          type: list
          elements: str
        missing:
          description: The records of C(to_publish) not published yet.
          type: list
          elements: str
        leftover:
          description: Published usable records that match no certificate of the chain.
          type: list
          elements: str
        issues:
          description: The DANE findings.
          type: list
          elements: dict
    mta_sts:
      description: For port 25 with an MTA-STS policy, C(mode), the C(pattern) that covers the host (V(null) when
        none does) and C(certificate_valid) under Web PKI rules; otherwise V(null).
      type: dict
    issues:
      description: Every finding for this endpoint, the probe's and the DANE and MTA-STS ones.
      type: list
      elements: dict
mta_sts:
  description: The domain's MTA-STS C(id), parsed C(policy) (C(version), C(mode), C(mx), C(max_age)), C(error) and
    its C(tls_rpt) record; V(null) with O(mta_sts=false) or a planned chain.
  returned: always
  type: dict
records_to_publish:
  description: For each record set that does not authenticate the chain yet, its C(name), the C(records) to add
    and the C(ttl) to wait after publishing them.
  returned: always
  type: list
  elements: dict
  sample: [{name: _25._tcp.mx1.example.org, records: ["3 1 1 0c72...e2"], ttl: 3600}]
leftover_records:
  description: For each record set, its C(name) and the usable C(records) that match no certificate presented.
  returned: always
  type: list
  elements: dict
issues:
  description: Every finding, each with C(endpoint) naming its endpoint (V(null) for the domain's own).
  returned: always
  type: list
  elements: dict
summary:
  description: How many endpoints got each DANE status (one key per status of RV(endpoints[].dane.status)), and
    C(errors) and C(warnings), the numbers of findings of those severities.
  returned: always
  type: dict
  sample: {verified: 2, mismatch: 0, unusable: 0, insecure: 0, no_records: 0, lookup_failed: 0, errors: 0,
           warnings: 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.tls.plugins.module_utils.deps import cryptography_problem
from ansible_collections.mailops.tls.plugins.module_utils.domaincheck import check, request_from_options
from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "domain": {"type": "str", "required": True},
            "mx": {"type": "list", "elements": "str", "default": []},
            "ports": {"type": "list", "elements": "int", "default": [25]},
            "resolver": {"type": "str"},
            "resolver_port": {"type": "int", "default": 53},
            "tlsa": {"type": "list", "elements": "str", "default": []},
            "path": {"type": "list", "elements": "path"},
            "content": {"type": "str"},
            "mta_sts": {"type": "bool", "default": True},
            "roots": {"type": "list", "elements": "path", "default": []},
            "system_roots": {"type": "bool", "default": True},
            "valid_at": {"type": "str"},
            "timeout": {"type": "float", "default": 10.0},
            "concurrency": {"type": "int", "default": 16},
        },
        mutually_exclusive=[("path", "content")],
        supports_check_mode=True,
    )
    problem = cryptography_problem()
    if problem:
        module.fail_json(msg=problem)
    try:
        result = check(request_from_options(module.params))
    except MailTlsError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
