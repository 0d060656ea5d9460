# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460): the TXT records, the policy fetched over HTTPS, mx patterns."""
from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 section 3.3: senders may refuse larger policies
MODES = ("enforce", "testing", "none")
MAX_AGE_LIMIT = 31557600  # one year, RFC 8461 section 3.2
_TXT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


class MtaStsError(MailTlsError):
    """A record or policy that senders would not accept; the message says what and where."""


@dataclass(frozen=True)
class Policy:
    """A parsed MTA-STS policy."""

    mode: str
    mx: tuple[str, ...]
    max_age: int
    version: str = "STSv1"

    def as_dict(self) -> dict:
        return {"version": self.version, "mode": self.mode, "mx": list(self.mx), "max_age": self.max_age}


def _fields(text: str, separator: str) -> dict[str, str]:
    fields = {}
    for part in filter(None, (item.strip() for item in text.split(separator))):
        key, _sep, value = part.partition("=")
        fields.setdefault(key.strip(), value.strip())
    return fields


def policy_id(txt_values: Sequence[str], where: str) -> Optional[str]:
    """The id of the domain's _mta-sts TXT record (RFC 8461 section 3.1); None when no record starts with v=STSv1."""
    records = [value for value in txt_values if value.startswith("v=STSv1")]
    if not records:
        return None
    if len(records) > 1:
        raise MtaStsError(f"{where} has {len(records)} TXT records starting with v=STSv1, where senders accept one: "
                          "remove the others")
    fields = _fields(records[0], ";")
    if fields.get("v") != "STSv1" or not _TXT_ID.match(fields.get("id", "")):
        raise MtaStsError(f"{where} TXT {records[0]!r} needs 'v=STSv1; id=<1 to 32 letters and digits>'")
    return fields["id"]


def tls_rpt(txt_values: Sequence[str]) -> Optional[str]:
    """The TLS-RPT record among the TXT values of _smtp._tls.<domain>, or None (RFC 8460 section 3)."""
    return next((value for value in txt_values if re.match(r"^v=TLSRPTv1\s*;\s*rua=", value)), None)


def parse_policy(text: str, where: str) -> Policy:
    """A policy file's key: value lines; MtaStsError naming what is missing or wrong."""
    fields: dict[str, list[str]] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip():
            key, separator, value = line.partition(":")
            if not separator:
                raise MtaStsError(f"{where}: the line {line.strip()!r} is not 'key: value'")
            fields.setdefault(key.strip(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        raise MtaStsError(f"{where}: the policy needs the line 'version: STSv1'")
    mode = (fields.get("mode") or [""])[0]
    if mode not in MODES:
        raise MtaStsError(f"{where}: mode {mode!r} is not one of {', '.join(MODES)}")
    max_age = (fields.get("max_age") or [""])[0]
    if not max_age.isdigit() or int(max_age) > MAX_AGE_LIMIT:
        raise MtaStsError(f"{where}: max_age {max_age!r} must be a number of seconds up to {MAX_AGE_LIMIT}")
    mx = tuple(pattern.lower().rstrip(".") for pattern in fields.get("mx", ()))
    if mode != "none" and not mx:
        raise MtaStsError(f"{where}: a policy in mode {mode} needs at least one 'mx:' line")
    return Policy(mode, mx, int(max_age))


def matching_pattern(host: str, patterns: Sequence[str]) -> Optional[str]:
    """The policy pattern that covers an MX host name, or None (RFC 8461 section 4.1: '*.' covers one label)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            label, _dot, rest = host.partition(".")
            if label and rest == pattern[2:]:
                return pattern
        elif host == pattern:
            return pattern
    return None


def fetch_policy(domain: str, address: str, context: ssl.SSLContext, timeout: float, port: int = 443) -> str:
    """GET https://mta-sts.<domain>/.well-known/mta-sts.txt from address, verified under context (Web PKI rules:
    trusted chain, valid for mta-sts.<domain>); no redirects, status 200 only (RFC 8461 section 3.3)."""
    host = f"mta-sts.{domain}"
    where = f"https://{host}{POLICY_PATH} (at {address})"
    try:
        with socket.create_connection((address, port), timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
                        "User-Agent: mailops.tls\r\n\r\n".encode("ascii"))
            response = http.client.HTTPResponse(tls)
            response.begin()
            body = response.read(MAX_POLICY_BYTES + 1)
    except ssl.SSLCertVerificationError as exc:
        raise MtaStsError(f"{where}: the certificate does not verify under Web PKI rules ({exc.verify_message}): "
                          "serve a publicly trusted chain valid for that name") from None
    except (OSError, http.client.HTTPException) as exc:
        raise MtaStsError(f"{where}: the policy cannot be fetched ({exc})") from None
    if response.status != 200:
        raise MtaStsError(f"{where} answered HTTP {response.status}; senders need 200 (redirects are not followed)")
    if len(body) > MAX_POLICY_BYTES:
        raise MtaStsError(f"{where}: the policy is larger than {MAX_POLICY_BYTES} bytes")
    return body.decode("utf-8", errors="replace")
