#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: mail_tls_assert
short_description: Fail when a mail server's certificate chain breaks policy
version_added: 0.1.0
description:
  - Analyses certificates exactly as M(mailops.tls.mail_tls_chain_facts) does and fails when any finding of
    severity C(error) is found, or any finding whose code is listed in O(fail_on), unless its code is listed in
    O(ignore).
  - Findings of severity C(warning) that are not violations become Ansible warnings.
  - The failure message lists every violation on its own line, so a pipeline log shows what to fix.
  - Changes nothing.
author:
  - mailops.tls maintainers (@mailops)
extends_documentation_fragment:
  - mailops.tls.chain_inputs
  - ansible.builtin.action_common_attributes
attributes:
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

- name: Accept a private CA that clients install by hand
  mailops.tls.mail_tls_assert:
    path: /etc/postfix/chain.pem
    roots: [/etc/ssl/private-ca/root.pem]
    ignore: [root_included]
"""

RETURN = r"""
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
  description: Findings waived by O(ignore).
  returned: always
  type: list
  elements: dict
issues:
  description: Every finding, as in M(mailops.tls.mail_tls_chain_facts).
  returned: always
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
certificates:
  description: Every certificate given, in input order, as the certificate records of
    M(mailops.tls.mail_tls_chain_facts).
  returned: always
  type: list
  elements: dict
chain:
  description: The chain as the server must send it, leaf first, root excluded, as the certificate records of
    M(mailops.tls.mail_tls_chain_facts).
  returned: always
  type: list
  elements: dict
root:
  description: The root the chain ends in, or V(null) when the chain is incomplete.
  returned: always
  type: dict
names:
  description: One result per O(names) entry, as in M(mailops.tls.mail_tls_chain_facts).
  returned: always
  type: list
  elements: dict
complete:
  description: Whether the given certificates alone reach a root.
  returned: always
  type: bool
ordered:
  description: Whether the given certificates are in serving order.
  returned: always
  type: bool
trusted:
  description: Whether the chain ends in a trust anchor.
  returned: always
  type: bool
key_matches:
  description: Whether the private key belongs to the leaf; V(null) when no key was given.
  returned: always
  type: bool
alternatives:
  description: Other valid paths to a trust anchor, as SHA-256 fingerprints.
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
from ansible_collections.mailops.tls.plugins.module_utils.policy import evaluate, failure_message


def main() -> None:
    argument_spec = dict(CHAIN_INPUT_SPEC,
                         fail_on={"type": "list", "elements": "str", "default": []},
                         ignore={"type": "list", "elements": "str", "default": []})
    module = AnsibleModule(argument_spec=argument_spec, required_one_of=CHAIN_INPUT_REQUIRED_ONE_OF,
                           supports_check_mode=True)
    problem = cryptography_problem()
    if problem:
        module.fail_json(msg=problem)
    try:
        analysis = analyze(request_from_params(module.params))
        verdict = evaluate(analysis.findings, module.params["fail_on"], module.params["ignore"])
    except MailTlsError as exc:
        module.fail_json(msg=str(exc))
    for warning in verdict.warnings:
        module.warn(f"[{warning.code}] {warning.message}")
    result = dict(analysis.as_dict(), changed=False, passed=verdict.passed,
                  violations=[f.as_dict() for f in verdict.violations], waived=[f.as_dict() for f in verdict.waived])
    if not verdict.passed:
        module.fail_json(msg=failure_message(verdict.violations, "the certificate chain"), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
