# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Expiry thresholds that scale with a certificate's lifetime, and relative times such as +30d."""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError

WARNING_STAGE, CRITICAL_STAGE = "warning", "critical"
# The longest threshold in days: a century, more than any certificate is valid for.
MAX_THRESHOLD_DAYS = 36500

_DAYS = re.compile(r"^(\d+(?:\.\d+)?)\s*d?$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
# community.crypto's relative times: a sign, then one or more of weeks, days, hours, minutes, seconds.
_RELATIVE = re.compile(r"^([+-])((?:\d+[wdhms])+)$")
_RELATIVE_PART = re.compile(r"(\d+)([wdhms])")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True)
class Threshold:
    """How close to its notAfter a certificate may come: a number of days, or a share of its own lifetime."""

    days: Optional[float] = None
    percent: Optional[float] = None

    def margin(self, not_before: datetime.datetime, not_after: datetime.datetime) -> datetime.timedelta:
        if self.percent is not None:
            return (not_after - not_before) * (self.percent / 100)
        return datetime.timedelta(days=self.days or 0)

    def describe(self, not_before: datetime.datetime, not_after: datetime.datetime) -> str:
        if self.percent is not None:
            return f"{self.percent:g}% of its {(not_after - not_before).days}-day lifetime"
        return f"{self.days:g} days"


@dataclass(frozen=True)
class ExpiryPolicy:
    """When a valid certificate is reported as expiring: the warning and (optional) critical thresholds."""

    warning: Threshold = field(default_factory=lambda: Threshold(days=30))
    critical: Optional[Threshold] = None

    def stage(self, not_before: datetime.datetime, not_after: datetime.datetime, valid_at: datetime.datetime
              ) -> Optional[tuple[str, Threshold]]:
        """The most urgent threshold a certificate valid at valid_at has crossed, or None."""
        left = not_after - valid_at
        for stage, threshold in ((CRITICAL_STAGE, self.critical), (WARNING_STAGE, self.warning)):
            if threshold is not None and left < threshold.margin(not_before, not_after):
                return stage, threshold
        return None


# What expires_soon_days alone always meant: a warning 30 days ahead, nothing critical.
DEFAULT_EXPIRY = ExpiryPolicy()


def parse_threshold(value, option: str) -> Threshold:
    """A threshold given as days (30, '30', '30d') or as a share of the lifetime ('33%')."""
    text = str(value).strip().lower()
    days, percent = _DAYS.match(text), _PERCENT.match(text)
    if percent and float(percent.group(1)) <= 100:
        return Threshold(percent=float(percent.group(1)))
    if days and float(days.group(1)) <= MAX_THRESHOLD_DAYS:
        return Threshold(days=float(days.group(1)))
    raise InputError(f"{option} {value!r} is neither days up to {MAX_THRESHOLD_DAYS} (for example 30 or 30d) nor a "
                     "share of the certificate's lifetime from 0% to 100% (for example 33%)")


def expiry_policy(expires_soon_days: int = 30, warning=None, critical=None) -> ExpiryPolicy:
    """The policy from the modules' options (expires_soon_days already checked): expiry_warning replaces
    expires_soon_days when given."""
    chosen = parse_threshold(warning, "expiry_warning") if warning is not None else Threshold(days=expires_soon_days)
    return ExpiryPolicy(chosen, parse_threshold(critical, "expiry_critical") if critical is not None else None)


def relative_time(text: str, now: datetime.datetime) -> Optional[datetime.datetime]:
    """now moved by a relative time such as +30d, -1w2d or +12h (community.crypto's form), or None if not one."""
    match = _RELATIVE.match(text.strip())
    if not match:
        return None
    seconds = sum(int(amount) * _UNIT_SECONDS[unit] for amount, unit in _RELATIVE_PART.findall(match.group(2)))
    try:
        return now + datetime.timedelta(seconds=-seconds if match.group(1) == "-" else seconds)
    except OverflowError:
        raise InputError(f"valid_at {text!r} is outside the years 1 to 9999 in UTC: give a shorter time") from None
