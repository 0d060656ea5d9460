# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The option sets the modules share, each documented once in doc_fragments/chain_inputs.py: judging options
(pool, anchors, names, time) and file inputs. Live endpoints are in endpoint_args, so modules that never
probe do not carry the probe code."""
from __future__ import annotations

import datetime
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.analysis import (
    Judgement,
    Request,
    load_certificates,
    load_judgement,
)
from ansible_collections.mailops.tls.plugins.module_utils.chain import DEFAULT_MAX_CHAIN_DEPTH
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.expiry import MAX_THRESHOLD_DAYS, expiry_policy, relative_time
from ansible_collections.mailops.tls.plugins.module_utils.names import match_names
from ansible_collections.mailops.tls.plugins.module_utils.pathrules import Rules

# Aliases: the names community.crypto gives the same options (certificate_complete_chain,
# x509_certificate_info, openssl_privatekey_info), for playbooks that move from those modules.
JUDGING_SPEC = {
    "pool": {"type": "list", "elements": "path", "default": [], "aliases": ["intermediate_certificates"]},
    "roots": {"type": "list", "elements": "path", "default": [], "aliases": ["root_certificates"]},
    "system_roots": {"type": "bool", "default": True},
    "names": {"type": "list", "elements": "str", "default": []},
    "valid_at": {"type": "str"},
    "expires_soon_days": {"type": "int", "default": 30},
    "expiry_warning": {"type": "str"},
    "expiry_critical": {"type": "str"},
    "cn_fallback": {"type": "bool", "default": False},
    "max_chain_depth": {"type": "int", "default": DEFAULT_MAX_CHAIN_DEPTH},
}
FILE_INPUT_SPEC = {
    "path": {"type": "list", "elements": "path"},
    "content": {"type": "str", "no_log": True},
    "private_key_path": {"type": "path", "aliases": ["privatekey_path"]},
    "private_key_passphrase": {"type": "str", "no_log": True, "aliases": ["privatekey_passphrase"]},
    "pkcs12_passphrase": {"type": "str", "no_log": True},
}
CHAIN_INPUT_SPEC = dict(JUDGING_SPEC, **FILE_INPUT_SPEC)
CHAIN_INPUT_REQUIRED_ONE_OF = [("path", "content")]


# The longest warning period: a century, more than any certificate is valid for.
MAX_EXPIRES_SOON_DAYS = MAX_THRESHOLD_DAYS


def parse_valid_at(value: Optional[str], expires_soon_days: int = 0) -> Optional[datetime.datetime]:
    """ISO 8601 date or date-time (UTC when no offset is given), a time relative to now (+30d), or None for now.
    The time and the end of the warning period after it must both fall within the years 1 to 9999 in UTC, as
    Python's dates do."""
    if not value:
        return None
    relative = relative_time(value, datetime.datetime.now(datetime.timezone.utc))
    if relative:
        return relative
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"valid_at {value!r} is not an ISO 8601 date or date-time, e.g. 2027-01-31 or "
                         "2027-01-31T12:00:00Z, nor a time relative to now such as +30d or -1w2d") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
    try:
        parsed.astimezone(datetime.timezone.utc) + datetime.timedelta(days=expires_soon_days)
    except OverflowError:
        raise InputError(f"valid_at {value!r} plus expires_soon_days ({expires_soon_days}) is outside the years 1 "
                         "to 9999 in UTC: give an earlier time or fewer days") from None
    return parsed


def _judging_args(params: dict) -> dict:
    """The judging options, checked, as keyword arguments of analysis.load_judgement."""
    if not 0 <= params["expires_soon_days"] <= MAX_EXPIRES_SOON_DAYS:
        raise InputError(f"expires_soon_days must be from 0 to {MAX_EXPIRES_SOON_DAYS} (a century), not "
                         f"{params['expires_soon_days']}")
    if params["max_chain_depth"] < 0:
        raise InputError("max_chain_depth must be 0 or more (the number of intermediates allowed between the leaf "
                         f"and the root; default {DEFAULT_MAX_CHAIN_DEPTH})")
    try:
        match_names(params["names"], (), (), ())
    except InputError as exc:
        raise InputError(f"names: {exc}") from None
    return {"pool": params["pool"], "roots": params["roots"], "system_roots": params["system_roots"],
            "names": params["names"], "valid_at": parse_valid_at(params.get("valid_at"), params["expires_soon_days"]),
            "expiry": expiry_policy(params["expires_soon_days"], params.get("expiry_warning"),
                                    params.get("expiry_critical")),
            "rules": Rules(cn_fallback=params["cn_fallback"], max_chain_depth=params["max_chain_depth"])}


def judgement_from_params(params: dict) -> Judgement:
    """Turn the judging options into a Judgement (pool and anchors read once)."""
    return load_judgement(**_judging_args(params))


def request_from_params(params: dict, judgement: Optional[Judgement] = None) -> Request:
    """Turn the file inputs and judging options into an analysis request (judgement: already loaded)."""
    passphrases = tuple(p.encode() for p in (params.get("private_key_passphrase"), params.get("pkcs12_passphrase"))
                        if p)
    certificates, keys = load_certificates(params["path"] or (), params.get("content"),
                                           params.get("private_key_path"), passphrases)
    return (judgement or judgement_from_params(params)).request(certificates, keys)
