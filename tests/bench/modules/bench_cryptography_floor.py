# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench only (tests/bench/overhead.py): the least any module that reads certificates costs, an AnsibleModule
that imports cryptography's x509 package and returns. Not part of the collection."""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    from cryptography import x509  # noqa: F401 # pylint: disable=unused-import # what is measured is this import

    module.exit_json(changed=False)


if __name__ == "__main__":
    main()
