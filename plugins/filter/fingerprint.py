# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fingerprint filter: the library's certificate fingerprints for templates (documented in fingerprint.yml)."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.mailops.tls.plugins.module_utils.certs import fingerprints
from ansible_collections.mailops.tls.plugins.module_utils.load import load_bytes

ALGORITHMS = ("md5", "sha1", "sha256", "spki_sha256")


def fingerprint(data, algorithm: str = "sha256") -> str:
    """The fingerprint of the first certificate in data (PEM text, or DER bytes) as colon-separated uppercase hex."""
    if algorithm not in ALGORITHMS:
        raise AnsibleFilterError(f"fingerprint: unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    if not isinstance(data, (str, bytes)):
        raise AnsibleFilterError(f"fingerprint: the input must be PEM text or DER bytes, not {type(data).__name__}")
    loaded = load_bytes(to_bytes(data, errors="surrogate_or_strict"), "the input of the fingerprint filter",
                        check=False)
    if not loaded.certificates:
        reasons = "; ".join(f.message for f in loaded.findings) or "it holds no certificate"
        raise AnsibleFilterError(f"fingerprint: no certificate found: {reasons}")
    try:
        values = fingerprints(loaded.certificates[0].der)
    except ValueError as exc:
        raise AnsibleFilterError(f"fingerprint: the first certificate is damaged ({exc})") from None
    return getattr(values, algorithm)


class FilterModule:
    """mailops.tls filters."""

    def filters(self) -> dict:
        return {"fingerprint": fingerprint}
