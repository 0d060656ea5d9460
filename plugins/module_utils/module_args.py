# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The option set every chain module shares (documented once in doc_fragments/chain_inputs.py)."""
from __future__ import annotations

import datetime
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.analysis import Request, load_request
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.names import match_names

CHAIN_INPUT_SPEC = {
    "path": {"type": "list", "elements": "path"},
    "content": {"type": "str"},
    "pool": {"type": "list", "elements": "path", "default": []},
    "roots": {"type": "list", "elements": "path", "default": []},
    "system_roots": {"type": "bool", "default": True},
    "names": {"type": "list", "elements": "str", "default": []},
    "private_key_path": {"type": "path"},
    "private_key_passphrase": {"type": "str", "no_log": True},
    "pkcs12_passphrase": {"type": "str", "no_log": True},
    "valid_at": {"type": "str"},
    "expires_soon_days": {"type": "int", "default": 30},
}
CHAIN_INPUT_REQUIRED_ONE_OF = [("path", "content")]


def parse_valid_at(value: Optional[str]) -> Optional[datetime.datetime]:
    """ISO 8601 date or date-time (UTC when no offset is given), or None for now."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"valid_at {value!r} is not an ISO 8601 date or date-time, e.g. 2027-01-31 or "
                         "2027-01-31T12:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def request_from_params(params: dict) -> Request:
    """Turn the shared options into an analysis request."""
    if params["expires_soon_days"] < 0:
        raise InputError("expires_soon_days must be 0 or more")
    try:
        match_names(params["names"], (), (), ())
    except InputError as exc:
        raise InputError(f"names: {exc}") from None
    passphrases = tuple(p.encode() for p in (params.get("private_key_passphrase"), params.get("pkcs12_passphrase"))
                        if p)
    return load_request(paths=params["path"] or (), content=params.get("content"), pool=params["pool"],
                        roots=params["roots"], system_roots=params["system_roots"],
                        private_key_path=params.get("private_key_path"), passphrases=passphrases,
                        names=params["names"], valid_at=parse_valid_at(params.get("valid_at")),
                        expires_soon_days=params["expires_soon_days"])
