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
  - Files are replaced atomically (a temporary file in the same directory, renamed over the old one) and only when
    their content changes. A symbolic link is followed and its target written.
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
      - The directory to write into, for example a web server's document root. It must exist.
    type: path
    required: true
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
      description: Whether its content was (or, in check mode, would be) replaced.
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
from ansible_collections.mailops.tls.plugins.module_utils.files import read_existing, write_atomically
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
}


def plan(params: dict, check_mode: bool) -> tuple[bytes, list]:
    """The certificate's DER and (path, format, data, current data) for each file. In check mode a missing dest is
    one an earlier task would have created: every file is new."""
    if "/" in params["basename"] or params["basename"].startswith(".") or not params["basename"]:
        raise InputError(f"basename {params['basename']!r} must be a plain file name without '/' and not start with "
                         "'.'")
    missing = not os.path.isdir(params["dest"])
    if missing and not (check_mode and not os.path.exists(params["dest"])):
        raise InputError(f"dest {params['dest']} is not a directory: create it first")
    der = single_certificate(load_bytes(params["content"].encode(), "content", check=False), "content")
    files = certificate_files(der, params["formats"])
    entries = []
    for fmt, data in files.items():
        path = os.path.join(params["dest"], f"{params['basename']}.{fmt}")
        entries.append((path, fmt, data, None if missing else read_existing(path)))
    return der, entries


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, add_file_common_args=True, supports_check_mode=True)
    problem = cryptography_problem()
    if problem:
        module.fail_json(msg=problem)
    try:
        der, entries = plan(module.params, module.check_mode)
    except MailTlsError as exc:
        module.fail_json(msg=str(exc))
    files, before, after, changed = [], [], [], False
    for path, fmt, data, current in entries:
        content_changed = current != data
        if content_changed:
            before.append(f"{os.path.basename(path)}: {describe_file(current)}")
            after.append(f"{os.path.basename(path)}: {describe_file(data)}")
            if not module.check_mode:
                try:
                    write_atomically(path, data)
                except OSError as exc:
                    module.fail_json(msg=f"writing {path} failed: {exc}", files=files)
        attributes_changed = False
        if not (module.check_mode and current is None):
            file_args = module.load_file_common_arguments(module.params, path=path)
            attributes_changed = module.set_fs_attributes_if_different(file_args, False)
        changed = changed or content_changed or attributes_changed
        files.append({"path": path, "format": fmt, "encoding": "DER" if fmt == "cer" else "PEM",
                      "changed": content_changed})
    result = {"changed": changed, "files": files, "sha256": sha256_hex(der)}
    if module._diff:
        result["diff"] = {"before": "".join(line + "\n" for line in before),
                          "after": "".join(line + "\n" for line in after),
                          "before_header": module.params["dest"], "after_header": module.params["dest"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
