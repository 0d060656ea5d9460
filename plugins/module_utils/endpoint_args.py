# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The live-endpoint option set (documented once in doc_fragments/chain_inputs.py, ENDPOINTS)."""
from __future__ import annotations

import re
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import EndpointReport, probe_and_judge
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.module_args import judgement_from_params
from ansible_collections.mailops.tls.plugins.module_utils.names import match_names
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, Sampling, default_probes
from ansible_collections.mailops.tls.plugins.module_utils.starttls import PROTOCOLS

ENDPOINT_OPTIONS = {
    "address": {"type": "str", "required": True},
    "port": {"type": "int", "required": True},
    "protocol": {"type": "str", "choices": list(PROTOCOLS)},
    "server_name": {"type": "str"},
    "label": {"type": "str"},
    "send_sni": {"type": "bool", "default": True},
    "proxy_protocol": {"type": "str", "choices": ["v1", "v2"]},
    "every_address": {"type": "bool", "default": False},
    "backends": {"type": "int"},
    "probes": {"type": "int"},
}
ENDPOINT_SPEC = {
    "endpoints": {"type": "list", "elements": "dict", "options": ENDPOINT_OPTIONS},
    "key_types": {"type": "list", "elements": "str", "choices": ["rsa", "ecdsa"], "default": []},
    "timeout": {"type": "float", "default": 10.0},
    "concurrency": {"type": "int", "default": 16},
    "expected_leaves": {"type": "list", "elements": "str", "default": []},
}


# Bounds of the probe options: an hour per endpoint is far beyond any mail server's greeting and handshake.
MAX_TIMEOUT = 3600.0
MAX_CONCURRENCY = 1024
MAX_SAMPLES = 1000  # backends and probes of one load balancer: each probe may take the whole timeout
_UNSAFE_ADDRESS = re.compile(r"[\x00-\x20\x7f]")


def endpoints_from_params(params: dict) -> list[Endpoint]:
    """The endpoints option as probe Endpoints, every value checked before anything is probed."""
    if not 0 < params["timeout"] <= MAX_TIMEOUT:  # also false for NaN
        raise InputError(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds, not {params['timeout']}")
    if not 1 <= params["concurrency"] <= MAX_CONCURRENCY:
        raise InputError(f"concurrency must be from 1 to {MAX_CONCURRENCY}, not {params['concurrency']}")
    return [_endpoint(position, item) for position, item in enumerate(params["endpoints"] or ())]


def _endpoint(position: int, item: dict) -> Endpoint:
    where = f"endpoints[{position}]"
    address = item["address"]
    if not address or len(address) > 253 or _UNSAFE_ADDRESS.search(address):
        raise InputError(f"{where}: address {address[:80]!r} is not a host name or IP address: give one such as "
                         "mail.example.org or 192.0.2.25, without spaces or control characters")
    if item.get("server_name") is not None:
        try:
            match_names([item["server_name"]], (), (), ())
        except InputError as exc:
            raise InputError(f"{where} ({address}): server_name: {exc}") from None
    return Endpoint(address=address, port=item["port"], protocol=item.get("protocol"),
                    server_name=item.get("server_name"), label=item.get("label"), send_sni=item["send_sni"],
                    proxy_protocol=item.get("proxy_protocol"), every_address=item["every_address"])


def samplings_from_params(params: dict) -> list[Optional[Sampling]]:
    """Per endpoint, how a load balancer is sampled (backends given), or None for one probe."""
    samplings: list[Optional[Sampling]] = []
    for item in params["endpoints"] or ():
        backends, probes = item.get("backends"), item.get("probes")
        if backends is None and probes is not None:
            raise InputError(f"endpoint {item['address']}:{item['port']}: probes needs backends, the number of servers "
                             "behind the load balancer")
        for name, value in (("backends", backends), ("probes", probes)):
            if value is not None and not 1 <= value <= MAX_SAMPLES:
                raise InputError(f"endpoint {item['address']}:{item['port']}: {name} must be from 1 to {MAX_SAMPLES}, "
                                 f"not {value}")
        samplings.append(None if backends is None else
                         Sampling(backends, min(default_probes(backends), MAX_SAMPLES) if probes is None else probes))
    return samplings


def probe_endpoints(params: dict, judgement: Optional[Judgement] = None) -> list[EndpointReport]:
    """Probe and judge the endpoints option under the judging options (judgement: already loaded)."""
    return probe_and_judge(endpoints_from_params(params), judgement or judgement_from_params(params),
                           params["timeout"], params["concurrency"], params["key_types"],
                           samplings_from_params(params), params["expected_leaves"])
