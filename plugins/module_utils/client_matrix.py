# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Which mail clients refused the chain showing each finding, as measured on real clients (docs/clients.md)."""
from __future__ import annotations

from ansible_collections.mailops.tls.plugins.module_utils.client_results import FAMILIES, MEASURED


def refused_by(code: str) -> tuple:
    """The client families that refused the lab's chain showing code, each once, in the matrix's order."""
    names = [name for scenario in MEASURED.values() if scenario["code"] == code for name in scenario["refused_by"]]
    return tuple(dict.fromkeys(FAMILIES[name] for name in names))


def clients_note(code: str) -> str:
    """One sentence for messages: which client families refused a chain with this finding, or that none did."""
    if not any(scenario["code"] == code for scenario in MEASURED.values()):
        return ""
    refused = refused_by(code)
    if not refused:
        return "No mail client in the client lab refused such a chain (docs/clients.md)."
    return f"Refused in the client lab by {', '.join(refused)} (docs/clients.md)."
