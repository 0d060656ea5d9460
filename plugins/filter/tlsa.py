# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tlsa filter: the TLSA record of a certificate for zone files and DNS APIs (documented in tlsa.yml)."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.load import load_bytes
from ansible_collections.mailops.tls.plugins.module_utils.tlsa import record_for


def tlsa(data, usage: int = 3, selector: int = 1, matching_type: int = 1) -> str:
    """The TLSA record data ('3 1 1 <hex>') that matches the first certificate in data (PEM text, or DER bytes)."""
    if not isinstance(data, (str, bytes)):
        raise AnsibleFilterError(f"tlsa: the input must be PEM text or DER bytes, not {type(data).__name__}")
    loaded = load_bytes(to_bytes(data, errors="surrogate_or_strict"), "the input of the tlsa filter", check=False)
    if not loaded.certificates:
        reasons = "; ".join(f.message for f in loaded.findings) or "it holds no certificate"
        raise AnsibleFilterError(f"tlsa: no certificate found: {reasons}")
    try:
        return str(record_for(loaded.certificates[0].der, int(usage), int(selector), int(matching_type)))
    except InputError as exc:
        raise AnsibleFilterError(f"tlsa: {exc}") from None
    except ValueError as exc:
        raise AnsibleFilterError(f"tlsa: the first certificate is damaged, or a parameter is not a number ({exc})"
                                 ) from None


class FilterModule:
    """mailops.tls filters."""

    def filters(self) -> dict:
        return {"tlsa": tlsa}
