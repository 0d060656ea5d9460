# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for expiry.py: thresholds in days and as a share of the lifetime, at their boundaries, and relative times."""
from __future__ import annotations

import datetime

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils import analysis, load
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.expiry import (
    ExpiryPolicy,
    Threshold,
    expiry_policy,
    parse_threshold,
    relative_time,
)
from ansible_collections.mailops.tls.plugins.module_utils.module_args import CHAIN_INPUT_SPEC, request_from_params

MAIL = "mail.example.test"
SECOND = datetime.timedelta(seconds=1)


def expiry_codes(chain, top, valid_at, policy) -> list:
    """(code, subject CN) of each expiry finding for chain analysed at valid_at."""
    request = analysis.Request(certificates=load.load_bytes(pki.pem_bundle(*chain), "bundle.pem"),
                               roots=load.load_bytes(top.pem, "roots.pem"), valid_at=valid_at, expiry=policy)
    return [(f.code, f.certificate.subject) for f in analysis.analyze(request).findings
            if f.code in ("expires_soon", "expires_critical", "expired")]


@pytest.fixture(scope="module")
def short_lived():
    """A 90-day leaf (ACME's lifetime today) under a five-year intermediate, both starting now."""
    top = pki.root(not_after=pki.NOW + 3650 * pki.DAY)
    inter = top.issue("Issuing CA", ca=True, not_before=pki.NOW, not_after=pki.NOW + 1825 * pki.DAY)
    leaf = inter.leaf(MAIL, not_before=pki.NOW, not_after=pki.NOW + 90 * pki.DAY)
    return top, inter, leaf


LEAF_CN = f"CN={MAIL},O=mailops test"


@pytest.mark.parametrize(("left", "policy", "expected"), [
    # days: reported strictly inside the threshold, as expires_soon_days always was
    (30 * pki.DAY, ExpiryPolicy(Threshold(days=30)), []),
    (30 * pki.DAY - SECOND, ExpiryPolicy(Threshold(days=30)), [("expires_soon", LEAF_CN)]),
    # a third of 90 days is 30 days
    (30 * pki.DAY, ExpiryPolicy(Threshold(percent=100 / 3)), []),
    (30 * pki.DAY - SECOND, ExpiryPolicy(Threshold(percent=100 / 3)), [("expires_soon", LEAF_CN)]),
    # 10% of 90 days is 9 days: critical wins over warning, one finding per certificate
    (9 * pki.DAY, ExpiryPolicy(Threshold(percent=100 / 3), Threshold(percent=10)), [("expires_soon", LEAF_CN)]),
    (9 * pki.DAY - SECOND, ExpiryPolicy(Threshold(percent=100 / 3), Threshold(percent=10)),
     [("expires_critical", LEAF_CN)]),
    (3 * pki.DAY - SECOND, ExpiryPolicy(Threshold(days=1), Threshold(days=3)), [("expires_critical", LEAF_CN)]),
    # 0% and 0 days never fire before the certificate expires
    (SECOND, ExpiryPolicy(Threshold(percent=0), Threshold(days=0)), []),
    (-SECOND, ExpiryPolicy(Threshold(percent=0)), [("expired", LEAF_CN)]),
])
def test_leaf_thresholds_at_their_boundaries(short_lived, left, policy, expected):
    top, inter, leaf = short_lived
    assert expiry_codes([leaf, inter], top, pki.NOW + 90 * pki.DAY - left, policy) == expected


def test_a_share_of_the_lifetime_scales_with_each_certificate(short_lived):
    """Five days before the leaf ends, 33% warns for it; the five-year intermediate is far from its 33%."""
    top, inter, leaf = short_lived
    at = pki.NOW + 85 * pki.DAY
    assert expiry_codes([leaf, inter], top, at, ExpiryPolicy(Threshold(percent=33))) == [("expires_soon", LEAF_CN)]
    # a fixed 30 days gives the same for the leaf, but at day 40 a 30-day threshold is silent where 33% is not
    assert expiry_codes([leaf, inter], top, pki.NOW + 40 * pki.DAY, ExpiryPolicy(Threshold(days=30))) == []
    assert expiry_codes([leaf, inter], top, pki.NOW + 61 * pki.DAY, ExpiryPolicy(Threshold(percent=33))) == [
        ("expires_soon", LEAF_CN)]


def test_an_expiring_intermediate_is_reported_like_a_leaf():
    top = pki.root(not_after=pki.NOW + 3650 * pki.DAY)
    inter = top.issue("Issuing CA", ca=True, not_before=pki.NOW - 300 * pki.DAY, not_after=pki.NOW + 20 * pki.DAY)
    leaf = inter.leaf(MAIL, not_before=pki.NOW, not_after=pki.NOW + 15 * pki.DAY)
    found = expiry_codes([leaf, inter], top, pki.NOW, ExpiryPolicy(Threshold(percent=10), Threshold(days=16)))
    # the intermediate: 20 of 320 days left (6%) is past 10%; the leaf: 15 days left is past the 16-day critical
    assert found == [("expires_critical", LEAF_CN), ("expires_soon", "CN=Issuing CA,O=mailops test")]


@pytest.mark.parametrize(("value", "expected"), [
    (30, Threshold(days=30)), ("30", Threshold(days=30)), ("30d", Threshold(days=30)), (" 7 D ", Threshold(days=7)),
    ("1.5d", Threshold(days=1.5)), ("33%", Threshold(percent=33)), ("33.3 %", Threshold(percent=33.3)),
    ("0%", Threshold(percent=0)), ("100%", Threshold(percent=100)),
])
def test_parse_threshold(value, expected):
    assert parse_threshold(value, "expiry_warning") == expected


@pytest.mark.parametrize("value", ["", "-5", "30 days", "101%", "%", "1/3", "two weeks", "30w", "36501d",
                                   "99999999999999d"])
def test_parse_threshold_refuses(value):
    with pytest.raises(InputError) as caught:
        parse_threshold(value, "expiry_critical")
    assert f"expiry_critical {value!r}" in str(caught.value) and "33%" in str(caught.value)


def test_expires_soon_days_stays_the_default_warning():
    assert expiry_policy(10) == ExpiryPolicy(Threshold(days=10))
    assert expiry_policy(10, "20%", "3d") == ExpiryPolicy(Threshold(percent=20), Threshold(days=3))
    assert expiry_policy() == ExpiryPolicy()


NOW = datetime.datetime(2027, 1, 31, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(("text", "expected"), [
    ("+30d", NOW + datetime.timedelta(days=30)),
    ("-1w2d", NOW - datetime.timedelta(days=9)),
    ("+32w1d2h", NOW + datetime.timedelta(weeks=32, days=1, hours=2)),
    (" +12h30m15s ", NOW + datetime.timedelta(hours=12, minutes=30, seconds=15)),
    ("+0s", NOW),
    ("30d", None), ("+30", None), ("+30y", None), ("+d", None), ("2027-01-31", None),
])
def test_relative_time(text, expected):
    assert relative_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["+999999999999w", "-99999999d"])
def test_relative_time_beyond_the_calendar_is_refused(text):
    with pytest.raises(InputError, match="outside the years 1 to 9999"):
        relative_time(text, NOW)


def test_relative_valid_at_and_a_share_through_the_module_options(tmp_path, short_lived):
    """valid_at=+61d and expiry_warning=33%: a new 90-day certificate is due for renewal then, not at +59d."""
    top, inter, leaf = short_lived
    (tmp_path / "fullchain.pem").write_bytes(pki.pem_bundle(leaf, inter))
    (tmp_path / "root.pem").write_bytes(top.pem)

    def found(**options) -> list:
        values = {name: spec.get("default") for name, spec in CHAIN_INPUT_SPEC.items()}
        values.update(path=[str(tmp_path / "fullchain.pem")], roots=[str(tmp_path / "root.pem")], system_roots=False,
                      **options)
        return [f.code for f in analysis.analyze(request_from_params(values)).findings]

    assert found(valid_at="+61d", expiry_warning="33%") == ["expires_soon"]
    assert found(valid_at="+59d", expiry_warning="33%") == []
    assert found(valid_at="+59d") == []
    assert found(valid_at="+88d", expiry_warning="33%", expiry_critical="5%") == ["expires_critical"]
    with pytest.raises(InputError, match="expiry_warning 'soon'"):
        found(expiry_warning="soon")
