#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: mail_tls_deploy
short_description: Deploy a chain to one server's Postfix and Dovecot, verify it live, roll back on failure
version_added: 1.0.0
description:
  - The engine of the R(deploy role,ansible_collections.mailops.tls.deploy_role) for one backend, in one call, so
    that a deployment costs a few Ansible tasks instead of one per step. The role's C(README.md) describes the steps;
    most users run the role rather than this module.
  - Builds each chain as M(mailops.tls.mail_tls_chain) does and refuses, before anything is changed, a chain that
    module would refuse (the message lists every finding and starts with C(not deployable, nothing was changed)).
  - Reads Postfix (C(postconf)) and Dovecot (C(dovecot --version), C(doveconf), the main configuration file), and
    plans the files by version. Postfix 3.4 and newer get one key+chain file per key type (C(smtpd_tls_chain_files));
    older ones, and Dovecot, a certificate chain file and a key file. Dovecot gets a drop-in with its version's
    setting names, and an C(!include_try) line for it at the end of its main file where none includes it yet.
  - Writes every changed file (chain files, drop-in, main file) as one transaction as M(mailops.tls.mail_tls_chain)
    does, keeping a backup of each replaced file, then sets the Postfix parameters that differ in one C(postconf)
    call. Runs each changed service's check command, reloads (never restarts) each changed service, then probes
    every endpoint of O(endpoints) until each serves the deployed chain (its leaf, a complete chain to the
    deployed chain's root) or O(verify_retries) retries have passed.
  - When a check, a reload or the live verification fails, puts back every file (the old file itself from its
    backup, the old owner, group and mode, or no file), every Postfix parameter, reloads the changed services
    again and probes until every endpoint serves the leaf it served before the call; the failure message says
    what failed and whether every port serves the previous chain again. Backups are removed once the deployment
    or its rollback is proven, and kept when a rollback could not be proven.
  - Reports configuration mistakes that would keep a server on other files as warnings with a code
    (C(setting_overridden), C(tlsproxy_overridden), C(intermediate_in_cafile)).
author:
  - mailops.tls maintainers (@mailops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - action_common_attributes.files
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
    details: Reads the files of O(certificates), O(private_key), O(alt_certificates), O(alt_private_key), O(pool)
      and O(roots) on the controller and sends them with the module, in one transfer, unless O(remote_src=true).
  async:
    support: none
  action_group:
    support: full
    membership:
      - mailops.tls.trust
      - mailops.tls.policy
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Reads the servers and plans everything; writes, sets, reloads and probes nothing.
  diff_mode:
    support: full
    details: Each chain file as M(mailops.tls.mail_tls_chain) lists it (never key material), the drop-in and the
      main file as text, and the Postfix parameters that change.
  platform:
    platforms: posix
  safe_file_operations:
    support: full
  vault:
    support: none
options:
  certificates:
    description:
      - Files or directories with the leaf and any intermediates, in any order and format (PEM, DER, PKCS#7,
        PKCS#12), as M(mailops.tls.mail_tls_chain)'s O(mailops.tls.mail_tls_chain#module:path) takes them.
      - On the controller, unless O(remote_src=true). Required (the action plugin sends the files as O(sources)).
    type: list
    elements: path
  private_key:
    description:
      - The leaf's private key (PEM, DER or PKCS#12), on the controller unless O(remote_src=true). Required.
    type: path
  private_key_passphrase:
    description: The passphrase of an encrypted O(private_key).
    type: str
  alt_certificates:
    description:
      - A second chain, with a key of the other type (ECDSA beside RSA), served beside the first.
      - Postfix gets it as its second key+chain file (or C(smtpd_tls_eccert_file)), Dovecot as its alternative
        certificate.
    type: list
    elements: path
    default: []
  alt_private_key:
    description: The private key of O(alt_certificates); required with it.
    type: path
  alt_private_key_passphrase:
    description: The passphrase of an encrypted O(alt_private_key).
    type: str
  pkcs12_passphrase:
    description: The passphrase of PKCS#12 inputs.
    type: str
  remote_src:
    description: The input files are on the managed host already; nothing is sent from the controller.
    type: bool
    default: false
  sources:
    description:
      - Set by the module's action plugin, never by hand. The input files read on the controller, sent with the
        module. They replace O(certificates), O(private_key), O(alt_certificates), O(alt_private_key), O(pool) and
        O(roots).
    type: list
    elements: dict
    default: []
    suboptions:
      option:
        description: The option that named the input.
        type: str
        required: true
        choices: [certificates, alt_certificates, pool, roots, private_key, alt_private_key]
      path:
        description: The input's path as named on the controller.
        type: str
        required: true
      directory:
        description: Whether the input is a directory (its files are written into one on the host).
        type: bool
        default: false
      files:
        description: The file, or each file of the directory.
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: The file's name.
            type: str
            required: true
          data:
            description: The file's bytes, in base64.
            type: str
            required: true
  pool:
    description: Files or directories of intermediates to complete the chains from.
    type: list
    elements: path
    default: []
  roots:
    description: Trust anchors the chains must end in (a private CA's root), besides the system's if O(system_roots).
    type: list
    elements: path
    default: []
  system_roots:
    description: Trust the host's system trust store too.
    type: bool
    default: true
  names:
    description: The names clients connect by; each must be valid for the leaf.
    type: list
    elements: str
    required: true
  expires_soon_days:
    description: A certificate that expires within this many days gets C(expires_soon).
    type: int
    default: 30
  fail_on:
    description: Issue codes that refuse the deployment although they are only warnings.
    type: list
    elements: str
    default: []
  ignore:
    description: Issue codes that never refuse the deployment.
    type: list
    elements: str
    default: []
  tls_dir:
    description: The directory of the chain and key files; created with O(tls_dir_mode) when missing.
    type: path
    default: /etc/ssl/mailops
  tls_dir_mode:
    description: The mode of a new O(tls_dir), as an octal string.
    type: str
    default: '0755'
  file_owner:
    description: The owner of every file written.
    type: str
    default: root
  keep_backups:
    description: Keep the backups of replaced files after a proven deployment or rollback.
    type: bool
    default: false
  postfix:
    description: Postfix, and the files it reads.
    type: dict
    default: {}
    suboptions:
      enabled:
        description: Deploy to Postfix.
        type: bool
        default: true
      config_dir:
        description: Postfix's configuration directory.
        type: path
        default: /etc/postfix
      version:
        description: The version to write the settings for; empty means the installed one (C(mail_version)).
        type: str
        default: ''
      chain_file:
        description: The key+chain file of Postfix 3.4 and newer; default C(postfix-chain.pem) in O(tls_dir).
        type: path
      alt_chain_file:
        description: The key+chain file of O(alt_certificates); default C(postfix-chain-alt.pem) in O(tls_dir).
        type: path
      cert_file:
        description: The chain file of Postfix before 3.4; default O(dovecot.cert_file).
        type: path
      key_file:
        description: The key file of Postfix before 3.4; default O(dovecot.key_file).
        type: path
      alt_cert_file:
        description: The second chain file of Postfix before 3.4; default O(dovecot.alt_cert_file).
        type: path
      alt_key_file:
        description: The second key file of Postfix before 3.4; default O(dovecot.alt_key_file).
        type: path
      extra_settings:
        description: Further main.cf parameters to set in the same transaction (rolled back with it).
        type: dict
        default: {}
      manage_tlsproxy:
        description: Point postscreen's C(tlsproxy_tls_*) parameters back at the deployed files where main.cf
          sets them to other files.
        type: bool
        default: true
      check_command:
        description: The command that validates the configuration; default C(postfix -c CONFIG_DIR check).
        type: list
        elements: str
      reload_command:
        description: The command that reloads Postfix; default C(postfix -c CONFIG_DIR reload).
        type: list
        elements: str
  dovecot:
    description: Dovecot, and the files it reads.
    type: dict
    default: {}
    suboptions:
      enabled:
        description: Deploy to Dovecot.
        type: bool
        default: true
      config_file:
        description: Dovecot's main configuration file.
        type: path
        default: /etc/dovecot/dovecot.conf
      dropin:
        description: The drop-in file with the TLS settings.
        type: path
        default: /etc/dovecot/conf.d/99-mailops-tls.conf
      add_include:
        description: Add an C(!include_try) line for O(dovecot.dropin) to O(dovecot.config_file) when no include
          line reads it; when false, such a configuration is refused.
        type: bool
        default: true
      version:
        description: The version to write the settings for; empty means the installed one.
        type: str
        default: ''
      cert_file:
        description: The chain file; default C(fullchain.pem) in O(tls_dir).
        type: path
      key_file:
        description: The key file; default C(key.pem) in O(tls_dir).
        type: path
      alt_cert_file:
        description: The chain file of O(alt_certificates); default C(fullchain-alt.pem) in O(tls_dir).
        type: path
      alt_key_file:
        description: The key file of O(alt_certificates); default C(key-alt.pem) in O(tls_dir).
        type: path
      key_group:
        description: A group that may read the key files (mode C(0640)); empty means none (mode C(0600)).
        type: str
        default: ''
      check_command:
        description: The command that validates the configuration; default C(doveconf -c CONFIG_FILE -n).
        type: list
        elements: str
      reload_command:
        description: The command that reloads Dovecot; default C(doveadm -c CONFIG_FILE reload).
        type: list
        elements: str
  verify:
    description: Probe O(endpoints) after the reload, and before any change to prove a rollback.
    type: bool
    default: true
  verify_address:
    description: How the failure message names this backend.
    type: str
    default: this host
  endpoints:
    description:
      - Every port and public name of this backend to verify, as M(mailops.tls.mail_tls_endpoint_info)'s
        O(mailops.tls.mail_tls_endpoint_info#module:endpoints).
    type: list
    elements: dict
    default: []
    suboptions:
      address:
        description: Host name or IP address to connect to.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        required: true
      protocol:
        description: The protocol; by default the one of the port.
        type: str
        choices: [smtp, lmtp, imap, pop3, sieve, tls, smtps, imaps, pop3s]
      server_name:
        description: The public name sent as SNI and checked against the certificate.
        type: str
      label:
        description: A short name for messages, such as the inventory host name.
        type: str
  timeout:
    description: Seconds for each connection and handshake.
    type: float
    default: 10.0
  verify_retries:
    description: How many times to probe again while the services pick up the reload (and after a rollback).
    type: int
    default: 10
  verify_delay:
    description: Seconds between two probes.
    type: float
    default: 1.0
  verify_fail_on:
    description: Issue codes that fail the live verification besides O(fail_on).
    type: list
    elements: str
    default: [service_mismatch]
  verify_ignore:
    description: Issue codes the live verification ignores besides O(ignore).
    type: list
    elements: str
    default: []
notes:
  - The call runs on the managed host from the first read to the last probe. A call killed while it writes leaves
    journals that the next call completes or undoes (see M(mailops.tls.mail_tls_chain)); one killed after the
    files are written leaves them, and the Postfix parameters, for the next run to deploy again.
seealso:
  - module: mailops.tls.mail_tls_chain
  - module: mailops.tls.mail_tls_assert
  - ref: ansible_collections.mailops.tls.deploy_role
    description: The role that runs this module on every backend, then verifies the load balancer.
"""

EXAMPLES = r"""
- name: Deploy the chain to this backend's Postfix and Dovecot and verify SMTP and IMAPS
  mailops.tls.mail_tls_deploy:
    certificates: [certs/mail.example.org.pem, certs/intermediates.pem]
    private_key: certs/mail.example.org.key
    roots: [/etc/ssl/private-ca/root.pem]
    names: [mail.example.org, imap.example.org]
    endpoints:
      - {address: 192.0.2.25, port: 25, server_name: mail.example.org}
      - {address: 192.0.2.25, port: 993, server_name: imap.example.org}
  register: deployed

- name: Show what changed
  ansible.builtin.debug:
    msg: "{{ deployed.written }} {{ deployed.postfix_settings }} reloaded {{ deployed.reloaded }}"
"""

RETURN = r"""
succeeded:
  description: Whether the chain was deployed and verified (V(false) in check mode).
  returned: always
  type: bool
rolled_back:
  description: Whether a failure after the first write was rolled back.
  returned: always
  type: bool
restored:
  description: Whether the rollback put everything back and every port serves the previous chain again.
  returned: always
  type: bool
failure:
  description: What failed, when the deployment failed after the first write; else V(null).
  returned: always
  type: str
files:
  description: Every chain file, as M(mailops.tls.mail_tls_chain) returns them (C(path), C(changed), C(changes),
    C(backup_file), C(previous)).
  returned: always
  type: list
  elements: dict
written:
  description: The chain files written (or that would be, in check mode).
  returned: always
  type: list
  elements: str
backup_files:
  description: Backups left on the host (only with O(keep_backups) or after a rollback that was not proven).
  returned: always
  type: list
  elements: str
postfix_version:
  description: The Postfix version the settings were written for, or V(null) without Postfix.
  returned: always
  type: str
postfix_settings:
  description: The main.cf parameters set (or that would be), with their new values.
  returned: always
  type: dict
dovecot_version:
  description: The Dovecot version the settings were written for, or V(null) without Dovecot.
  returned: always
  type: str
dovecot_dropin_changed:
  description: Whether the drop-in was written.
  returned: always
  type: bool
dovecot_include_added:
  description: Whether an include line for the drop-in was added to the main file.
  returned: always
  type: bool
reloaded:
  description: The services reloaded, C(postfix) and C(dovecot).
  returned: always
  type: list
  elements: str
leaf_sha256:
  description: The SHA-256 fingerprints of the deployed leaves (the first chain's, then O(alt_certificates)').
  returned: always
  type: list
  elements: str
chains:
  description: The first chain and the O(alt_certificates) chain, as the entries of
    M(mailops.tls.mail_tls_chain)'s C(chains) result.
  returned: always
  type: list
  elements: dict
fullchain_pem:
  description: Each deployed chain (leaf and intermediates) as PEM, for checks such as DANE TLSA records.
  returned: always
  type: list
  elements: str
root_pem:
  description: The roots the deployed chains end in, as PEM (public certificates).
  returned: always
  type: str
configuration_warnings:
  description: Configuration mistakes found, each with C(code), C(service) and C(message).
  returned: always
  type: list
  elements: dict
verified:
  description: What each endpoint served at the last probe, with C(endpoint), C(port), C(server_name),
    C(key_type), C(leaf_sha256), C(deployed) and C(issues) (codes).
  returned: always
  type: list
  elements: dict
transferred:
  description: How many files were sent from the controller.
  returned: always
  type: int
"""

import base64
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.tls.plugins.module_utils import chainfiles, deploy
from ansible_collections.mailops.tls.plugins.module_utils.deps import cryptography_problem
from ansible_collections.mailops.tls.plugins.module_utils.endpoint_args import ENDPOINT_OPTIONS
from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError

SOURCE_OPTIONS = ("certificates", "alt_certificates", "pool", "roots", "private_key", "alt_private_key")
COMMANDS = {"type": "list", "elements": "str"}
POSTFIX_SPEC = {"enabled": {"type": "bool", "default": True}, "config_dir": {"type": "path", "default": "/etc/postfix"},
                "version": {"type": "str", "default": ""},
                **{name: {"type": "path"} for name in deploy.POSTFIX_FILES},
                "extra_settings": {"type": "dict", "default": {}}, "manage_tlsproxy": {"type": "bool", "default": True},
                "check_command": COMMANDS, "reload_command": COMMANDS}
DOVECOT_SPEC = {"enabled": {"type": "bool", "default": True},
                "config_file": {"type": "path", "default": "/etc/dovecot/dovecot.conf"},
                "dropin": {"type": "path", "default": "/etc/dovecot/conf.d/99-mailops-tls.conf"},
                "add_include": {"type": "bool", "default": True}, "version": {"type": "str", "default": ""},
                **{name: {"type": "path"} for name in deploy.DOVECOT_FILES},
                "key_group": {"type": "str", "default": "", "no_log": False}, "check_command": COMMANDS,
                "reload_command": COMMANDS}
SECRET = {"type": "str", "no_log": True}
ARGUMENT_SPEC = {
    "certificates": {"type": "list", "elements": "path"}, "private_key": {"type": "path", "no_log": False},
    "private_key_passphrase": SECRET, "alt_certificates": {"type": "list", "elements": "path", "default": []},
    "alt_private_key": {"type": "path", "no_log": False}, "alt_private_key_passphrase": SECRET,
    "pkcs12_passphrase": SECRET, "remote_src": {"type": "bool", "default": False},
    "sources": {"type": "list", "elements": "dict", "default": [],
                "options": {"option": {"type": "str", "required": True, "choices": list(SOURCE_OPTIONS)},
                            "path": {"type": "str", "required": True},
                            "directory": {"type": "bool", "default": False},
                            "files": {"type": "list", "elements": "dict", "default": [],
                                      "options": {"name": {"type": "str", "required": True},
                                                  "data": {"type": "str", "required": True, "no_log": True}}}}},
    "pool": {"type": "list", "elements": "path", "default": []},
    "roots": {"type": "list", "elements": "path", "default": []},
    "system_roots": {"type": "bool", "default": True}, "names": {"type": "list", "elements": "str", "required": True},
    "expires_soon_days": {"type": "int", "default": 30},
    "fail_on": {"type": "list", "elements": "str", "default": []},
    "ignore": {"type": "list", "elements": "str", "default": []},
    "tls_dir": {"type": "path", "default": "/etc/ssl/mailops"}, "tls_dir_mode": {"type": "str", "default": "0755"},
    "file_owner": {"type": "str", "default": "root"}, "keep_backups": {"type": "bool", "default": False},
    "postfix": {"type": "dict", "default": {}, "options": POSTFIX_SPEC},
    "dovecot": {"type": "dict", "default": {}, "options": DOVECOT_SPEC},
    "verify": {"type": "bool", "default": True}, "verify_address": {"type": "str", "default": "this host"},
    "endpoints": {"type": "list", "elements": "dict", "default": [],
                  "options": {name: ENDPOINT_OPTIONS[name]
                              for name in ("address", "port", "protocol", "server_name", "label")}},
    "timeout": {"type": "float", "default": 10.0}, "verify_retries": {"type": "int", "default": 10},
    "verify_delay": {"type": "float", "default": 1.0},
    "verify_fail_on": {"type": "list", "elements": "str", "default": ["service_mismatch"]},
    "verify_ignore": {"type": "list", "elements": "str", "default": []},
}


def with_defaults(params: dict) -> dict:
    """The file paths not given, from tls_dir; the commands not given, from the configuration paths."""
    tls_dir, postfix, dovecot = params["tls_dir"], dict(params["postfix"]), dict(params["dovecot"])
    for name, file_name in (("cert_file", "fullchain.pem"), ("key_file", "key.pem"),
                            ("alt_cert_file", "fullchain-alt.pem"), ("alt_key_file", "key-alt.pem")):
        dovecot[name] = dovecot[name] or os.path.join(tls_dir, file_name)
        postfix[name] = postfix[name] or dovecot[name]
    postfix["chain_file"] = postfix["chain_file"] or os.path.join(tls_dir, "postfix-chain.pem")
    postfix["alt_chain_file"] = postfix["alt_chain_file"] or os.path.join(tls_dir, "postfix-chain-alt.pem")
    postfix["check_command"] = postfix["check_command"] or ["postfix", "-c", postfix["config_dir"], "check"]
    postfix["reload_command"] = postfix["reload_command"] or ["postfix", "-c", postfix["config_dir"], "reload"]
    dovecot["check_command"] = dovecot["check_command"] or ["doveconf", "-c", dovecot["config_file"], "-n"]
    dovecot["reload_command"] = dovecot["reload_command"] or ["doveadm", "-c", dovecot["config_file"], "reload"]
    return dict(params, postfix=postfix, dovecot=dovecot)


def materialize(sources: list, directory: str) -> dict:
    """Write the files sent from the controller into directory (mode 0600); returns option -> host paths."""
    paths: dict = {}
    for number, source in enumerate(sources):
        base = os.path.basename(source["path"].rstrip("/")) or "input"
        target = os.path.join(directory, f"{number}-{base}")
        if source.get("directory"):
            os.mkdir(target, 0o700)
        for item in source["files"]:
            name = os.path.join(target, os.path.basename(item["name"])) if source.get("directory") else target
            descriptor = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(base64.b64decode(item["data"]))
        paths.setdefault(source["option"], []).append(target)
    return paths


def inputs(module: AnsibleModule, directory: str) -> dict:
    """The options with every input path on the host."""
    params = dict(module.params)
    if params["sources"]:
        sent = materialize(params["sources"], directory)
        for option in SOURCE_OPTIONS:
            found = sent.get(option, [])
            params[option] = (found[0] if found else None) if option.endswith("private_key") else found
    if not params["certificates"] or not params["private_key"]:
        module.fail_json(msg="give certificates and private_key: the chain to deploy and its key")
    if bool(params["alt_certificates"]) != bool(params["alt_private_key"]):
        module.fail_json(msg="alt_certificates and alt_private_key go together: give both, or neither")
    if not (params["postfix"]["enabled"] or params["dovecot"]["enabled"]):
        module.fail_json(msg="postfix.enabled and dovecot.enabled are both false: there is nothing to deploy to")
    return with_defaults(params)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    problem = cryptography_problem()
    if problem:
        module.fail_json(msg=problem)
    directory = tempfile.mkdtemp(prefix="mailops-tls-deploy.")
    try:
        params = inputs(module, directory)
        deployment = deploy.Deployment(params, lambda argv: module.run_command(list(argv)),
                                       chainfiles.keep_selinux_context(module), module.check_mode)
        result = deploy.deploy(deployment)
    except deploy.DeployError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        module.fail_json(msg=str(exc), **shaped(exc.result, module))
    except (MailTlsError, OSError, ValueError) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        module.fail_json(msg=f"not deployable, nothing was changed.\n{exc}")
    shutil.rmtree(directory, ignore_errors=True)
    module.exit_json(**shaped(result, module))


def shaped(result: dict, module: AnsibleModule) -> dict:
    """The result as returned: the diff only in diff mode, and how many files came from the controller."""
    shaped_result = dict(result, transferred=sum(len(s["files"]) for s in module.params["sources"]))
    diff = shaped_result.pop("diff")
    if module._diff:
        shaped_result["diff"] = diff
    return shaped_result


if __name__ == "__main__":
    main()
