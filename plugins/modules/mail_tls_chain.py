#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: mail_tls_chain
short_description: Write the certificate chain, key and root files a mail server needs
version_added: 1.0.0
description:
  - Builds the chain exactly as M(mailops.tls.mail_tls_chain_facts) does, from certificates in any order and
    format, and writes the files Postfix and Dovecot read, always in serving order (leaf, then each issuer),
    with the intermediates taken from O(pool) included, so the files are complete even when the input was not.
  - Before writing, the chain to write is analysed again as a server would serve it (in serving order, without
    O(pool), with the root only as a candidate issuer). The module refuses to write when that analysis has a
    finding of severity C(error) (incomplete or untrusted chain, expired certificate, a name of O(names) not
    valid, private key not matching, ...) or one listed in O(fail_on), unless its code is in O(ignore), or
    O(force=true). Damaged input (code C(parse_error)) also stops it. Findings that writing fixes (wrong
    order, intermediates from the pool, a root, duplicate or unrelated certificates in the input) do not.
    The failure message lists each finding on its own line, and nothing is written.
  - When one chain of O(chains) is refused, none is written.
  - The private key is written unencrypted, as PKCS#8 PEM, so that a service reload needs no passphrase. It
    never appears in results, diffs or messages; diffs name it by type, size and the SHA-256 of its public key.
  - All the files of one call are written as one transaction, so a service never reads half a file and never
    a new file beside an old one once the call is over. Each new file is written beside its destination with
    its final owner, group and mode, flushed to disk and renamed over the old one; a journal in each directory
    lets the next call put every file back when a call was killed before its last rename. A call that fails
    puts every file back before it reports, and says which files still changed if that fails too. The SELinux
    context of an existing file is kept. The collection's C(docs/deploying-chains.md) describes the steps.
  - A symbolic link at an output path is refused unless O(follow=true). A file that holds a private key is
    refused in a directory that users other than root and the module's user own or can write, or below one
    (a sticky directory such as C(/tmp) excepted), as OpenSSH's C(StrictModes) refuses keys.
  - When a file already holds the same bytes with the same owner, group and mode, it is not touched. Files that
    hold a private key get mode C(0600) unless told otherwise, other files C(0644); a mode that gives other
    users any access to a private key is refused.
author:
  - mailops.tls maintainers (@mailops)
extends_documentation_fragment:
  - mailops.tls.chain_inputs
  - mailops.tls.chain_inputs.files
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  # The short name on purpose: ansible-core 2.19 reads the FQCN form as the ansible.builtin.files fragment.
  - action_common_attributes.files
attributes:
  action_group:
    support: full
    membership:
      - mailops.tls.trust
      - mailops.tls.judging
      - mailops.tls.chain_files
      - mailops.tls.policy
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff lists, for each file that changes, its owner, group and mode, then per position each
      certificate's subject, validity and SHA-256 fingerprint, and a private key only as its type, size and
      public key fingerprint.
  platform:
    platforms: posix
  safe_file_operations:
    support: full
  vault:
    support: none
notes:
  - Modes are octal strings, such as V('0600'), as for M(ansible.builtin.file). Quote them in YAML; an
    unquoted V(0600) also works (YAML reads it as octal), but V(600) does not and is refused. Symbolic modes
    are not supported.
  - While a call writes, its directories hold files named C(.<name>.mailtls-<id>.new) and C(.old) and a journal
    C(.mailtls-<id>.journal). A process killed meanwhile leaves them; the next call that writes into one of
    those directories completes or undoes that write first (in check mode it warns about it).
  - In check mode, an output whose directory does not exist yet is reported as a new file, as an earlier task
    of the play would create the directory.
  - O(path), O(content), O(private_key_path), O(private_key_passphrase), O(pkcs12_passphrase) and the output
    options describe one chain; O(chains) gives several, and then none of them may be given at the top level.
    The other input options (O(pool), O(roots), O(system_roots), O(names), O(valid_at), O(expires_soon_days),
    O(expiry_warning), O(expiry_critical), O(cn_fallback), O(max_chain_depth)) apply to every chain.
options:
  fullchain_path:
    description:
      - Write the leaf and then each intermediate, in serving order, root excluded, to this file.
      - For Postfix C(smtpd_tls_cert_file) and Dovecot C(ssl_cert) (2.3) or C(ssl_server_cert_file) (2.4).
    type: path
  fullchain_owner:
    description:
      - Owner (name or uid) of O(fullchain_path). Unset, a new file belongs to the user the module runs as,
        and an existing file keeps its owner.
    type: str
  fullchain_group:
    description:
      - Group (name or gid) of O(fullchain_path). Unset, as for O(fullchain_owner).
    type: str
  fullchain_mode:
    description:
      - Mode of O(fullchain_path) as an octal string. Defaults to V('0644').
    type: raw
  chain_path:
    description:
      - Write the intermediates only, in serving order, root excluded, to this file (empty when the root
        issued the leaf directly).
    type: path
  chain_owner:
    description:
      - Owner of O(chain_path), as for O(fullchain_owner).
    type: str
  chain_group:
    description:
      - Group of O(chain_path), as for O(fullchain_group).
    type: str
  chain_mode:
    description:
      - Mode of O(chain_path) as an octal string. Defaults to V('0644').
    type: raw
  combined_path:
    description:
      - Write the private key, then the leaf, then each intermediate to this one file, as Postfix 3.4 and
        newer read C(smtpd_tls_chain_files). Key and certificate change together, in one rename.
      - Needs the leaf's private key (O(private_key_path), or a key in O(path)).
    type: path
  combined_owner:
    description:
      - Owner of O(combined_path), as for O(fullchain_owner).
    type: str
  combined_group:
    description:
      - Group of O(combined_path), as for O(fullchain_group).
    type: str
  combined_mode:
    description:
      - Mode of O(combined_path) as an octal string. Defaults to V('0600'). A mode giving other users any
        access (such as V('0644')) is refused; V('0640') with O(combined_group) suits a service group.
    type: raw
  key_path:
    description:
      - Write the leaf's private key alone, as unencrypted PKCS#8 PEM, to this file.
      - For Postfix C(smtpd_tls_key_file) and Dovecot C(ssl_key) (2.3) or C(ssl_server_key_file) (2.4).
      - Needs the leaf's private key (O(private_key_path), or a key in O(path)).
    type: path
  key_owner:
    description:
      - Owner of O(key_path), as for O(fullchain_owner).
    type: str
  key_group:
    description:
      - Group of O(key_path), as for O(fullchain_group).
    type: str
  key_mode:
    description:
      - Mode of O(key_path) as an octal string. Defaults to V('0600'). A mode giving other users any access is
        refused.
    type: raw
  root_path:
    description:
      - Write the root the chain ends in (the trust anchor) to this file, to publish it for users of a private
        CA. Fails when the chain ends in no root.
    type: path
  root_owner:
    description:
      - Owner of O(root_path), as for O(fullchain_owner).
    type: str
  root_group:
    description:
      - Group of O(root_path), as for O(fullchain_group).
    type: str
  root_mode:
    description:
      - Mode of O(root_path) as an octal string. Defaults to V('0644').
    type: raw
  chains:
    description:
      - Several chains for one server, for example an RSA and an ECDSA certificate, each with its own inputs
        and output files. Every chain is analysed, and files are written only if no chain is refused.
      - Mutually exclusive with O(path), O(content), O(private_key_path), O(private_key_passphrase),
        O(pkcs12_passphrase) and every output option at the top level.
    type: list
    elements: dict
    suboptions:
      path:
        description:
          - Files with this chain's certificates (and possibly its key), as the top-level O(path).
          - One of O(chains[].path) and O(chains[].content) is required.
        type: list
        elements: path
      content:
        description:
          - PEM text with certificates, as the top-level O(content).
        type: str
      private_key_path:
        description:
          - This chain's private key, as the top-level O(private_key_path).
        type: path
        aliases: [privatekey_path]
      private_key_passphrase:
        description:
          - Passphrase of an encrypted private key.
        type: str
        aliases: [privatekey_passphrase]
      pkcs12_passphrase:
        description:
          - Passphrase of PKCS#12 files among O(chains[].path) or O(chains[].private_key_path).
        type: str
      fullchain_path:
        description:
          - As the top-level O(fullchain_path).
        type: path
      fullchain_owner:
        description:
          - As the top-level O(fullchain_owner).
        type: str
      fullchain_group:
        description:
          - As the top-level O(fullchain_group).
        type: str
      fullchain_mode:
        description:
          - As the top-level O(fullchain_mode).
        type: raw
      chain_path:
        description:
          - As the top-level O(chain_path).
        type: path
      chain_owner:
        description:
          - As the top-level O(chain_owner).
        type: str
      chain_group:
        description:
          - As the top-level O(chain_group).
        type: str
      chain_mode:
        description:
          - As the top-level O(chain_mode).
        type: raw
      combined_path:
        description:
          - As the top-level O(combined_path).
        type: path
      combined_owner:
        description:
          - As the top-level O(combined_owner).
        type: str
      combined_group:
        description:
          - As the top-level O(combined_group).
        type: str
      combined_mode:
        description:
          - As the top-level O(combined_mode).
        type: raw
      key_path:
        description:
          - As the top-level O(key_path).
        type: path
      key_owner:
        description:
          - As the top-level O(key_owner).
        type: str
      key_group:
        description:
          - As the top-level O(key_group).
        type: str
      key_mode:
        description:
          - As the top-level O(key_mode).
        type: raw
      root_path:
        description:
          - As the top-level O(root_path).
        type: path
      root_owner:
        description:
          - As the top-level O(root_owner).
        type: str
      root_group:
        description:
          - As the top-level O(root_group).
        type: str
      root_mode:
        description:
          - As the top-level O(root_mode).
        type: raw
  force:
    description:
      - Write even when the chain to write has findings that would stop it. Each such finding becomes a warning.
      - Does not make a missing root or key appear. O(root_path) still needs a root, O(key_path) and
        O(combined_path) still need the leaf's key.
    type: bool
    default: false
  backup:
    description:
      - When a file's content changes, keep the file it replaces under the name C(<path>.<pid>.<timestamp>~),
        with its owner, group and mode (the old file itself under a second name, never a copy, so an old key
        is never readable by anyone it was not readable by). The names are returned in RV(backup_files).
    type: bool
    default: false
  follow:
    description:
      - Write the file a symbolic link at an output path points to. By default such a link is refused, so that a
        link planted in the directory cannot redirect where a key goes.
    type: bool
    default: false
  fail_on:
    description:
      - Issue codes that stop the writing even when their severity is C(warning) or C(info), for example
        V(expires_soon) or V(wildcard_used), as for M(mailops.tls.mail_tls_assert).
      - Unknown codes are refused.
    type: list
    elements: str
    default: []
  ignore:
    description:
      - Issue codes that never stop the writing, even when their severity is C(error), as for
        M(mailops.tls.mail_tls_assert). Waived findings are returned in RV(waived).
    type: list
    elements: str
    default: []
seealso:
  - module: mailops.tls.mail_tls_chain_facts
  - module: mailops.tls.mail_tls_assert
  - ref: ansible_collections.mailops.tls.docsite.deploying_chains
    description: The collection's guide, with the Postfix and Dovecot settings for each file.
  - name: Postfix smtpd_tls_chain_files
    description: The Postfix 3.4+ setting that reads key and chain from one file, as O(combined_path) writes it.
    link: https://www.postfix.org/postconf.5.html#smtpd_tls_chain_files
"""

EXAMPLES = r"""
- name: Postfix 3.4+, key and chain in one file (smtpd_tls_chain_files)
  mailops.tls.mail_tls_chain:
    path: [/root/certs/from-the-ca.pem, /root/certs/intermediates.p7b]
    private_key_path: /root/certs/mail.key
    names: [mail.example.org]
    combined_path: /etc/postfix/tls/mail.pem
  notify: Reload postfix

- name: Dovecot and older Postfix, separate certificate and key files, key readable by a group
  mailops.tls.mail_tls_chain:
    path: /root/certs/mail.p12
    pkcs12_passphrase: "{{ vault_p12_passphrase }}"
    names: [imap.example.org, mail.example.org]
    fullchain_path: /etc/dovecot/private/fullchain.pem
    key_path: /etc/dovecot/private/mail.key
    key_group: dovecot
    key_mode: "0640"
    root_path: /var/www/html/ca/root.pem
    backup: true

- name: RSA and ECDSA certificates for one Postfix, written only if both are deployable
  mailops.tls.mail_tls_chain:
    names: [mail.example.org]
    pool: [/usr/local/share/ca-intermediates/]
    chains:
      - path: [/root/certs/rsa.crt]
        private_key_path: /root/certs/rsa.key
        combined_path: /etc/postfix/tls/rsa.pem
      - path: [/root/certs/ecdsa.crt]
        private_key_path: /root/certs/ecdsa.key
        combined_path: /etc/postfix/tls/ecdsa.pem

- name: Refuse a certificate that expires within 30 days, not just an expired one
  mailops.tls.mail_tls_chain:
    path: /root/certs/renewed.pem
    fullchain_path: /etc/postfix/fullchain.pem
    fail_on: [expires_soon]
    expires_soon_days: 30
"""

RETURN = r"""
written:
  description: Files whose content, owner, group or mode changed (in check mode, would change). When writing
    fails, the files that still changed after every file was put back (normally none).
  returned: always
  type: list
  elements: str
  sample: [/etc/postfix/tls/mail.pem]
backup_files:
  description: The copies made by O(backup).
  returned: always
  type: list
  elements: str
  sample: ["/etc/postfix/tls/mail.pem.4711.2026-03-01@12:00:00~"]
files:
  description: One entry per output file, in the order fullchain, chain, combined, key, root (chain by chain).
  returned: always
  type: list
  elements: dict
  contains:
    output:
      description: Which output it is.
      type: str
      choices: [fullchain, chain, combined, key, root]
    path:
      description: The path as given.
      type: str
    changed:
      description: Whether it changed (in check mode, would change).
      type: bool
    changes:
      description: What changed, such as C(content) or C(mode 0644 -> 0600).
      type: list
      elements: str
    backup_file:
      description: The copy made by O(backup), or V(null).
      type: str
    previous:
      description: The file's owner, group and mode before this run, so a rollback can put them back (the
        backup copy restores the content); V(null) when the file did not exist.
      type: dict
      contains:
        uid:
          description: The owner's user ID.
          type: int
        gid:
          description: The group ID.
          type: int
        mode:
          description: The permission bits, as an octal string.
          type: str
          sample: "0600"
violations:
  description: Findings about the chain to write that stop the writing (or were overridden by O(force)), with
    the keys of RV(issues). Returned when O(chains) is not used.
  returned: when O(chains) is not used
  type: list
  elements: dict
waived:
  description: Findings waived by O(ignore). Returned when O(chains) is not used.
  returned: when O(chains) is not used
  type: list
  elements: dict
issues:
  description: Every finding about the input, as M(mailops.tls.mail_tls_chain_facts) reports it. Some of them,
    such as C(wrong_order), are fixed by the files written.
  returned: when O(chains) is not used
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
  returned: when O(chains) is not used
  type: list
  elements: dict
chain:
  description: The chain written, leaf first, root excluded, as the certificate records of
    M(mailops.tls.mail_tls_chain_facts) (with C(source) saying where each came from).
  returned: when O(chains) is not used
  type: list
  elements: dict
root:
  description: The root the chain ends in, or V(null) when the chain is incomplete.
  returned: when O(chains) is not used
  type: dict
names:
  description: One result per O(names) entry, as in M(mailops.tls.mail_tls_chain_facts).
  returned: when O(chains) is not used
  type: list
  elements: dict
complete:
  description: Whether the given certificates alone reach a root.
  returned: when O(chains) is not used
  type: bool
ordered:
  description: Whether the given certificates were in serving order.
  returned: when O(chains) is not used
  type: bool
trusted:
  description: Whether the chain ends in a trust anchor.
  returned: when O(chains) is not used
  type: bool
key_matches:
  description: Whether the private key belongs to the leaf; V(null) when no key was given.
  returned: when O(chains) is not used
  type: bool
alternatives:
  description: Other valid paths to a trust anchor, as SHA-256 fingerprints.
  returned: when O(chains) is not used
  type: list
  elements: list
signature_checks:
  description: How many signatures were verified to build the chain.
  returned: when O(chains) is not used
  type: int
chains:
  description: One result per O(chains) entry, in order, each with the keys returned for a single chain
    (RV(certificates), RV(chain), RV(root), RV(issues), RV(names), RV(complete), RV(ordered), RV(trusted),
    RV(key_matches), RV(alternatives), RV(signature_checks), RV(violations), RV(waived)).
  returned: when O(chains) is used
  type: list
  elements: dict
"""

import os
from collections.abc import Sequence
from contextlib import nullcontext

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.tls.plugins.module_utils import chainfiles, fileset
from ansible_collections.mailops.tls.plugins.module_utils.deps import cryptography_problem
from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.module_args import CHAIN_INPUT_SPEC

# no_log False: key_owner, key_group and key_mode are about the key file, not secrets.
OUTPUT_SPEC = {f"{kind}_{attribute}": {"type": kind_type, "no_log": False}
               for kind in chainfiles.KINDS
               for attribute, kind_type in (("path", "path"), ("owner", "str"), ("group", "str"), ("mode", "raw"))}
CHAIN_SPEC = dict({name: CHAIN_INPUT_SPEC[name] for name in chainfiles.CHAIN_OPTIONS}, **OUTPUT_SPEC)


def argument_spec() -> dict:
    return dict(CHAIN_INPUT_SPEC, **OUTPUT_SPEC,
                chains={"type": "list", "elements": "dict", "options": CHAIN_SPEC,
                        "required_one_of": [("path", "content"), chainfiles.PATH_OPTIONS]},
                force={"type": "bool", "default": False},
                backup={"type": "bool", "default": False},
                follow={"type": "bool", "default": False},
                fail_on={"type": "list", "elements": "str", "default": []},
                ignore={"type": "list", "elements": "str", "default": []})


def warn_of_pending_writes(module: AnsibleModule, targets: Sequence[str]) -> None:
    """In check mode, say when a killed run left files that the next real run puts back before comparing."""
    for journal in fileset.pending([os.path.dirname(target) for target in targets]):
        module.warn(f"an interrupted write left {journal}: the next run without check mode first puts back the "
                    "files it names, so this check may compare against files that are about to change")


def report(result: dict, work: list, changed: Sequence[str], backups: dict, diff: bool) -> list:
    """Fill result with what changed (the targets in changed) and return the diffs."""
    diffs = []
    for planned, target, current, change in work:
        path = planned.output.path
        done = target in changed
        if done:
            result["written"].append(path)
            if diff:
                expected = chainfiles.expected_state(planned, current, *chainfiles.default_owner(target))
                diffs.append({"before_header": path, "after_header": path,
                              "before": chainfiles.listing(current, path), "after": chainfiles.listing(expected, path)})
        backup_file = backups.get(target)
        if backup_file:
            result["backup_files"].append(backup_file)
        previous = {"uid": current.uid, "gid": current.gid, "mode": f"{current.mode:04o}"} if current.exists else None
        result["files"].append({"output": planned.output.kind, "path": path, "changed": done,
                                "changes": change.describe() if done else [], "backup_file": backup_file,
                                "previous": previous})
    result["changed"] = bool(result["written"])
    return diffs


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[("path", "content", "chains"), ("chains", *chainfiles.PATH_OPTIONS)],
        mutually_exclusive=[("chains", name) for name in CHAIN_SPEC],
        supports_check_mode=True)
    problem = cryptography_problem()
    if problem:
        module.fail_json(msg=problem)
    params = module.params
    try:
        plans = chainfiles.plan(params)
    except MailTlsError as exc:
        module.fail_json(msg=str(exc))
    result: dict = {"changed": False, "written": [], "backup_files": [], "files": []}
    if params["chains"]:
        result["chains"] = [p.as_dict() for p in plans]
    else:
        result.update(plans[0].as_dict())
    if any(not p.verdict.passed for p in plans) and not params["force"]:
        module.fail_json(msg=chainfiles.refusal_message(plans), **result)
    for chain_plan in plans:
        for finding in chain_plan.verdict.violations:
            module.warn(f"force: written despite [{finding.code}] {finding.message}")
        for finding in chain_plan.verdict.warnings:
            module.warn(f"[{finding.code}] {finding.message}")
    planned_files = [f for p in plans for f in p.files]
    work: list = []
    try:
        targets = [fileset.destination(f.output.path, params["follow"], f.output.holds_key, module.check_mode)
                   for f in planned_files]
        if module.check_mode:
            warn_of_pending_writes(module, targets)
        with (nullcontext() if module.check_mode
              else fileset.FileSet(targets, prepare=chainfiles.keep_selinux_context(module))) as files:
            work = []
            for planned, target in zip(planned_files, targets):
                current = chainfiles.read_state(target)
                work.append((planned, target, current, chainfiles.compare(planned, current)))
            backups = files.commit([chainfiles.new_file(planned, target, current, change, params["backup"])
                                    for planned, target, current, change in work if change.changed]) if files else {}
    except fileset.WriteError as exc:
        report(result, work, exc.changed, {}, module._diff)
        module.fail_json(msg=f"writing the chain files failed: {exc}", **result)
    except MailTlsError as exc:
        module.fail_json(msg=str(exc), **result)
    except OSError as exc:  # completing an interrupted write found in the directories
        module.fail_json(msg=f"the chain files cannot be written: {exc}", **result)
    changed = [target for _planned, target, _current, change in work if change.changed]
    diffs = report(result, work, changed, backups, module._diff)
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
