#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: mail_tls_root_files
short_description: Write a CA root certificate as the PEM and DER files users download
version_added: 1.0.0
description:
  - Writes one certificate, usually the root from M(mailops.tls.mail_tls_root_info), into O(dest) as
    C(BASENAME.pem) and C(BASENAME.crt) (PEM, for Linux, fetchmail, Android and macOS) and C(BASENAME.cer) (DER, which
    Windows opens with a double click).
  - The files of one call are written as one transaction (see M(mailops.tls.mail_tls_chain)). After a failure, or
    a kill and the next call, they are all new or all as before. Each is replaced only when its content changes.
    A new file without O(mode) gets C(0644) less the umask, never a mode others can write, so nobody else can
    replace the trust anchor users download. A symbolic link at a file's path is refused unless O(follow=true).
  - Diff mode names the certificate each file held and holds (subject and SHA-256), not the raw bytes.
author:
  - mailops.tls maintainers (@mailops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - ansible.builtin.files
attributes:
  action_group:
    support: none
    membership: []
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  content:
    description:
      - The certificate as PEM text, for example RV(mailops.tls.mail_tls_root_info#module:pem). It must hold exactly
        one certificate.
      - Kept out of logs, since a combined key and certificate file given by mistake would hold a private key.
    type: str
    required: true
  dest:
    description:
      - The directory to write into, for example a web server's document root. It must exist (in check mode, a
        missing one is one an earlier task would create, and every file would be new).
    type: path
    required: true
  follow:
    description:
      - Write the file a symbolic link at a file's path points to, instead of refusing the link.
    type: bool
    default: false
  basename:
    description:
      - The file name without its suffix, for example RV(mailops.tls.mail_tls_root_info#module:slug).
    type: str
    required: true
  formats:
    description:
      - Which files to write.
    type: list
    elements: str
    choices: [pem, crt, cer]
    default: [pem, crt, cer]
requirements:
  - Python >= 3.9 and cryptography >= 36.0 on the host that runs the module
seealso:
  - module: mailops.tls.mail_tls_root_info
"""

EXAMPLES = r"""
- name: Find the root
  mailops.tls.mail_tls_root_info:
    path: /etc/ssl/private-ca/root.pem
  register: root

- name: Publish it in the web server's document root
  mailops.tls.mail_tls_root_files:
    content: "{{ root.pem }}"
    dest: /var/www/html/ca
    basename: "{{ root.slug }}"
    mode: "0644"
"""

RETURN = r"""
files:
  description: One entry per file, in the order of O(formats).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
    format:
      description: V(pem), V(crt) or V(cer).
      type: str
    encoding:
      description: V(PEM) or V(DER).
      type: str
    changed:
      description: Whether its content was (or, in check mode, would be) replaced. When writing fails, whether it
        still is after every file was put back (normally not).
      type: bool
sha256:
  description: The SHA-256 fingerprint of the certificate written.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.tls.plugins.module_utils.certs import sha256_hex
from ansible_collections.mailops.tls.plugins.module_utils.deps import cryptography_problem
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError, MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.fileset import WriteError, destination, existing, write_public
from ansible_collections.mailops.tls.plugins.module_utils.load import load_bytes
from ansible_collections.mailops.tls.plugins.module_utils.rootpub import (
    FORMATS,
    certificate_files,
    describe_file,
    single_certificate,
)

ARGUMENT_SPEC = {
    "content": {"type": "str", "required": True, "no_log": True},
    "dest": {"type": "path", "required": True},
    "basename": {"type": "str", "required": True},
    "formats": {"type": "list", "elements": "str", "choices": list(FORMATS), "default": list(FORMATS)},
    "follow": {"type": "bool", "default": False},
}


def plan(params: dict, check_mode: bool) -> tuple[bytes, list]:
    """The certificate's DER and (path, resolved path, format, data) for each file. In check mode a missing dest is
    one an earlier task would have created: every file is new."""
    if "/" in params["basename"] or params["basename"].startswith(".") or not params["basename"]:
        raise InputError(f"basename {params['basename']!r} must be a plain file name without '/' and not start with "
                         "'.'")
    if os.path.lexists(params["dest"]) and not os.path.isdir(params["dest"]):
        raise InputError(f"dest {params['dest']} is not a directory: create it first")
    der = single_certificate(load_bytes(params["content"].encode(), "content", check=False), "content")
    entries = []
    for fmt, data in certificate_files(der, params["formats"]).items():
        path = os.path.join(params["dest"], f"{params['basename']}.{fmt}")
        entries.append((path, destination(path, params["follow"], check_mode=check_mode), fmt, data))
    return der, entries


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, add_file_common_args=True, supports_check_mode=True)
    problem = cryptography_problem()
    if problem:
        module.fail_json(msg=problem)
    params = module.params
    before, after, files = [], [], []
    try:
        der, entries = plan(params, module.check_mode)
        previous = {target: existing(target).data for _path, target, _fmt, _data in entries}
        changed, attributes_changed = write_public(
            [(target, data) for _path, target, _fmt, data in entries], module.check_mode,
            lambda path: module.set_fs_attributes_if_different(module.load_file_common_arguments(params, path=path),
                                                               False))
    except WriteError as exc:
        changed = list(exc.changed)
        module.fail_json(msg=str(exc), changed=bool(changed), files=[
            {"path": path, "changed": target in changed} for path, target, _fmt, _data in entries])
    except MailTlsError as exc:
        module.fail_json(msg=str(exc))
    for path, target, fmt, data in entries:
        if target in changed:
            before.append(f"{os.path.basename(path)}: {describe_file(previous[target])}")
            after.append(f"{os.path.basename(path)}: {describe_file(data)}")
        files.append({"path": path, "format": fmt, "encoding": "DER" if fmt == "cer" else "PEM",
                      "changed": target in changed})
    result = {"changed": bool(changed) or attributes_changed, "files": files, "sha256": sha256_hex(der)}
    if module._diff:
        result["diff"] = {"before": "".join(line + "\n" for line in before),
                          "after": "".join(line + "\n" for line in after),
                          "before_header": params["dest"], "after_header": params["dest"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
