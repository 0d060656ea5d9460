# SPDX-License-Identifier: GPL-3.0-or-later
"""Option values are range-checked in the argument handling (module_args, endpoint_args): a clear InputError
before anything is read, probed or written, never an OverflowError or a failure after the probes."""
from __future__ import annotations

import socket

import pytest

from ansible_collections.mailops.tls.plugins.module_utils import endpoint_args, module_args
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError

JUDGING = {"pool": [], "roots": [], "system_roots": False, "names": [], "valid_at": None, "expires_soon_days": 30,
           "cn_fallback": False, "max_chain_depth": 8}


def _endpoint(**values) -> dict:
    return dict({"address": "127.0.0.1", "port": 25, "protocol": None, "server_name": None, "label": None,
                 "send_sni": True, "proxy_protocol": None, "every_address": False}, **values)


def _probe_params(endpoints: list, **values) -> dict:
    return {**JUDGING, "endpoints": endpoints, "timeout": 2.0, "concurrency": 4, "key_types": [], **values}


@pytest.mark.parametrize(("values", "message"), [
    ({"expires_soon_days": -1}, "expires_soon_days must be from 0 to 36500 (a century), not -1"),
    ({"expires_soon_days": 99999999999999}, "expires_soon_days must be from 0 to 36500"),
    ({"valid_at": "9999-12-31T23:59:59-14:00"}, "is outside the years 1 to 9999 in UTC"),
    ({"valid_at": "9999-12-01", "expires_soon_days": 31}, "plus expires_soon_days (31) is outside the years"),
    ({"valid_at": "0001-01-01T00:00:00+14:00"}, "is outside the years 1 to 9999 in UTC"),
])
def test_judging_options_out_of_range_are_input_errors(values, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        module_args.judgement_from_params(dict(JUDGING, **values))


@pytest.mark.parametrize(("valid_at", "days"), [("9999-12-31T23:59:59+14:00", 0), ("9999-11-30", 30),
                                                ("0001-01-01", 36500)])
def test_the_edges_of_the_ranges_are_accepted(valid_at, days):
    assert module_args.parse_valid_at(valid_at, days).year in (1, 9999)


@pytest.mark.parametrize(("values", "message"), [
    ({"timeout": float("inf")}, "timeout must be more than 0 and at most 3600 seconds, not inf"),
    ({"timeout": 1e308}, "timeout must be more than 0 and at most 3600 seconds"),
    ({"timeout": float("nan")}, "timeout must be more than 0 and at most 3600 seconds, not nan"),
    ({"timeout": 0.0}, "timeout must be more than 0"),
    ({"concurrency": 0}, "concurrency must be from 1 to 1024, not 0"),
    ({"concurrency": 10 ** 20}, "concurrency must be from 1 to 1024"),
])
def test_probe_options_out_of_range_are_input_errors(values, message):
    with pytest.raises(InputError, match=message):
        endpoint_args.endpoints_from_params(_probe_params([_endpoint()], **values))


@pytest.mark.parametrize(("value", "reason"), [
    ("mail..example.org", "empty label"),
    ("a" * 300 + ".example.org", "is not a valid host name"),
    ("mail\x00.example.org", "is not a valid host name"),
    ("", "it is empty"),
    ("*.example.org", "wildcard"),
])
def test_a_bad_server_name_is_refused_before_any_endpoint_is_probed(value, reason):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        params = _probe_params([_endpoint(port=port), _endpoint(port=port, server_name=value)])
        with pytest.raises(InputError) as caught:
            endpoint_args.probe_endpoints(params)
        with pytest.raises(BlockingIOError):  # the first, valid endpoint was not connected to either
            listener.accept()
    finally:
        listener.close()
    assert str(caught.value).startswith("endpoints[1] (127.0.0.1): server_name: ")
    assert reason in str(caught.value)


@pytest.mark.parametrize("address", ["", "mail.example.org\x00", "mail example.org", "a" * 254, "\x1b[31m"])
def test_a_bad_address_is_refused(address):
    with pytest.raises(InputError, match=r"endpoints\[0\]: address .* is not a host name or IP address"):
        endpoint_args.endpoints_from_params(_probe_params([_endpoint(address=address)]))


@pytest.mark.parametrize("address", ["mail.example.org", "192.0.2.25", "2001:db8::25", "fe80::1%lo", "backend_1"])
def test_addresses_the_resolver_takes_are_accepted(address):
    [endpoint] = endpoint_args.endpoints_from_params(_probe_params([_endpoint(address=address)]))
    assert endpoint.address == address
