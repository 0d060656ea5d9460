#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: mail_tls_assert
short_description: Fail when a mail server's certificate chain breaks policy
version_added: 1.0.0
description:
  - Analyses certificate files exactly as M(mailops.tls.mail_tls_chain_facts) does, and live endpoints exactly as
    M(mailops.tls.mail_tls_endpoint_info) does, and fails when any finding of
    severity C(error) is found, or any finding whose code is listed in O(fail_on), unless its code is listed in
    O(ignore).
  - Findings of severity C(warning) that are not violations become Ansible warnings.
  - The failure message lists every violation on its own line, under the file chain or the endpoint it is
    about, so a pipeline log shows what to fix where, with the mail clients that refused such a chain in the
    collection's client lab (C(docs/clients.md), measured with real clients by C(make clients)).
  - A failure returns only RV(passed), RV(violations) and RV(waived); with C(-v) or more, or with O(details),
    RV(details) holds the rest of the result (the analysis and the endpoints), which is several kilobytes per chain.
  - Give O(path), O(content), O(endpoints), or several of them.
  - Changes nothing.
author:
  - mailops.tls maintainers (@mailops)
extends_documentation_fragment:
  - mailops.tls.chain_inputs
  - mailops.tls.chain_inputs.files
  - mailops.tls.chain_inputs.endpoints
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  action_group:
    support: full
    membership:
      - mailops.tls.trust
      - mailops.tls.judging
      - mailops.tls.chain_files
      - mailops.tls.endpoints
      - mailops.tls.policy
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  fail_on:
    description:
      - Issue codes that fail the task even when their severity is C(warning) or C(info), for example
        V(wildcard_used) or V(root_included).
      - Unknown codes are refused, so a typo cannot weaken the policy.
    type: list
    elements: str
    default: []
  ignore:
    description:
      - Issue codes waived by this policy, even when their severity is C(error). Waived findings are still
        returned in RV(waived).
    type: list
    elements: str
    default: []
  details:
    description:
      - Return the rest of the result under RV(details) also when the gate fails without C(-v), for plays that
        register the result and read what was probed (the C(mailops.tls.deploy) role does).
    type: bool
    default: false
seealso:
  - module: mailops.tls.mail_tls_chain_facts
"""

EXAMPLES = r"""
- name: Gate a pipeline on the chain Dovecot will serve
  mailops.tls.mail_tls_assert:
    path: /etc/dovecot/private/fullchain.pem
    private_key_path: /etc/dovecot/private/mail.key
    names: [imap.example.org, mail.example.org]
    fail_on: [wildcard_used, expires_soon]

- name: Gate on what every backend and the load balancer really serve on every IMAP and SMTP port
  mailops.tls.mail_tls_assert:
    endpoints:
      - {address: 192.0.2.11, port: 993, server_name: imap.example.org, label: mx1}
      - {address: 192.0.2.12, port: 993, server_name: imap.example.org, label: mx2}
      - {address: 192.0.2.11, port: 25, server_name: mail.example.org, label: mx1}
      - {address: 192.0.2.12, port: 25, server_name: mail.example.org, label: mx2}
      - {address: imap.example.org, port: 993, label: load balancer}
    fail_on: [service_mismatch]
  delegate_to: localhost

- name: Accept a private CA that clients install by hand
  mailops.tls.mail_tls_assert:
    path: /etc/postfix/chain.pem
    roots: [/etc/ssl/private-ca/root.pem]
    ignore: [root_included]

- name: Judge for legacy clients that still read the CN of a certificate without subjectAltName
  mailops.tls.mail_tls_assert:
    path: /etc/postfix/legacy-chain.pem
    names: [mail.example.org]
    cn_fallback: true
    ignore: [cn_only]
"""

RETURN = r"""
details:
  description: On failure, with C(-v) or more or with O(details), every other key of the result (RV(issues),
    RV(endpoints), the analysis of the files); kept out of the failure otherwise, where Ansible would print it
    whole.
  returned: on failure with C(-v) or more, or with O(details)
  type: dict
passed:
  description: Whether the policy passed.
  returned: always
  type: bool
violations:
  description: The findings that failed the policy, with the keys of RV(issues).
  returned: always
  type: list
  elements: dict
waived:
  description: Findings waived by O(ignore), with the keys of RV(issues).
  returned: always
  type: list
  elements: dict
issues:
  description: Every finding of the files and of the endpoints.
  returned: when the policy passed (on failure, in RV(details))
  type: list
  elements: dict
  contains:
    code:
      description: Stable issue code, documented in C(docs/issue-codes.md).
      type: str
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
    endpoint:
      description: The endpoint it is about, as RV(endpoints[].name), or V(null) for the files.
      type: str
endpoints:
  description: One result per endpoint and key type, as RV(mailops.tls.mail_tls_endpoint_info#module:endpoints)
    of M(mailops.tls.mail_tls_endpoint_info).
  returned: when O(endpoints) is given and the policy passed (on failure, in RV(details))
  type: list
  elements: dict
  contains:
    name:
      description: The endpoint as messages name it.
      type: str
    peer_address:
      description: The IP address that accepted the connection; V(null) when no address did.
      type: str
sampled:
  description: Per load balancer endpoint (O(endpoints[].backends)) and key type, the probes made and the different
    chains that answered, as RV(mailops.tls.mail_tls_endpoint_info#module:sampled) of
    M(mailops.tls.mail_tls_endpoint_info).
  returned: when O(endpoints) is given and the policy passed (on failure, in RV(details))
  type: list
  elements: dict
certificates:
  description: Every certificate given, in input order, as the certificate records of
    M(mailops.tls.mail_tls_chain_facts).
  returned: when O(path) or O(content) is given and the policy passed (on failure, in RV(details))
  type: list
  elements: dict
chain:
  description: The chain as the server must send it, leaf first, root excluded, as the certificate records of
    M(mailops.tls.mail_tls_chain_facts).
  returned: when O(path) or O(content) is given and the policy passed (on failure, in RV(details))
  type: list
  elements: dict
root:
  description: The root the chain ends in, or V(null) when the chain is incomplete.
  returned: when O(path) or O(content) is given and the policy passed (on failure, in RV(details))
  type: dict
names:
  description: One result per O(names) entry, as in M(mailops.tls.mail_tls_chain_facts).
  returned: when O(path) or O(content) is given and the policy passed (on failure, in RV(details))
  type: list
  elements: dict
complete:
  description: Whether the given certificates alone reach a root.
  returned: when O(path) or O(content) is given and the policy passed (on failure, in RV(details))
  type: bool
ordered:
  description: Whether the given certificates are in serving order.
  returned: when O(path) or O(content) is given and the policy passed (on failure, in RV(details))
  type: bool
trusted:
  description: Whether the chain ends in a trust anchor.
  returned: when O(path) or O(content) is given and the policy passed (on failure, in RV(details))
  type: bool
key_matches:
  description: Whether the private key belongs to the leaf; V(null) when no key was given.
  returned: when O(path) or O(content) is given and the policy passed (on failure, in RV(details))
  type: bool
alternatives:
  description: Other valid paths to a trust anchor, as SHA-256 fingerprints.
  returned: when O(path) or O(content) is given and the policy passed (on failure, in RV(details))
  type: list
  elements: list
signature_checks:
  description: How many signatures were verified to build the chain.
  returned: when O(path) or O(content) is given and the policy passed (on failure, in RV(details))
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.tls.plugins.module_utils.analysis import analyze
from ansible_collections.mailops.tls.plugins.module_utils.deps import cryptography_problem
from ansible_collections.mailops.tls.plugins.module_utils.endpoint_args import ENDPOINT_SPEC, probe_endpoints
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import endpoint_results
from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.module_args import (
    CHAIN_INPUT_SPEC,
    judgement_from_params,
    request_from_params,
)
from ansible_collections.mailops.tls.plugins.module_utils.policy import gate, gate_message

FILES = "the certificate chain"
COMPACT_KEYS = ("changed", "passed", "violations", "waived")


def judge(params: dict) -> tuple[dict, list]:
    """The analysis results and (subject, endpoint name or None, findings) for every subject given."""
    judgement = judgement_from_params(params)
    result, subjects = {}, []
    if params["path"] or params["content"]:
        analysis = analyze(request_from_params(params, judgement))
        result.update(analysis.as_dict())
        subjects.append((FILES, None, analysis.findings))
    if params["endpoints"]:
        reports = probe_endpoints(params, judgement)
        probed = endpoint_results(reports)
        result.update(endpoints=probed["endpoints"], sampled=probed["sampled"])
        subjects.extend((report.name, report.name, report.findings) for report in reports)
    return result, subjects


def main() -> None:
    argument_spec = dict(CHAIN_INPUT_SPEC, **ENDPOINT_SPEC,
                         fail_on={"type": "list", "elements": "str", "default": []},
                         ignore={"type": "list", "elements": "str", "default": []},
                         details={"type": "bool", "default": False})
    module = AnsibleModule(argument_spec=argument_spec, required_one_of=[("path", "content", "endpoints")],
                           supports_check_mode=True)
    problem = cryptography_problem()
    if problem:
        module.fail_json(msg=problem)
    try:
        result, subjects = judge(module.params)
        judged = gate([(name, findings) for name, _endpoint, findings in subjects], module.params["fail_on"],
                      module.params["ignore"])
    except MailTlsError as exc:
        module.fail_json(msg=str(exc))
    where = {name: endpoint for name, endpoint, _findings in subjects}
    for name, verdict in judged:
        for warning in verdict.warnings:
            module.warn(f"{name}: [{warning.code}] {warning.message}")

    def listed(kind: str) -> list:
        return [dict(f.as_dict(), endpoint=where[name]) for name, verdict in judged for f in getattr(verdict, kind)]

    result.update(changed=False, passed=all(verdict.passed for _name, verdict in judged),
                  violations=listed("violations"), waived=listed("waived"),
                  issues=[dict(f.as_dict(), endpoint=endpoint)
                          for _name, endpoint, findings in subjects for f in findings])
    if not result["passed"]:
        module.fail_json(msg=gate_message(judged),
                         **failure(result, module._verbosity >= 1 or module.params["details"]))
    module.exit_json(**result)


def failure(result: dict, with_details: bool) -> dict:
    """What a failed gate returns: the violations and waivers, and the rest under details when asked for (-v, or
    the details option; Ansible prints a failed result whole, and the rest is every certificate twice and every
    finding again)."""
    compact = {key: result[key] for key in COMPACT_KEYS}
    if with_details:
        compact["details"] = {key: value for key, value in result.items() if key not in compact}
    return compact


if __name__ == "__main__":
    main()
