# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The live-endpoint option set (documented once in doc_fragments/chain_inputs.py, ENDPOINTS)."""
from __future__ import annotations

from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import EndpointReport, probe_and_judge
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.module_args import judgement_from_params
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


def endpoints_from_params(params: dict) -> list[Endpoint]:
    """The endpoints option as probe Endpoints; the probe checks each one's values."""
    if params["timeout"] <= 0:
        raise InputError("timeout must be more than 0 seconds")
    return [Endpoint(address=item["address"], port=item["port"], protocol=item.get("protocol"),
                     server_name=item.get("server_name"), label=item.get("label"), send_sni=item["send_sni"],
                     proxy_protocol=item.get("proxy_protocol")) for item in params["endpoints"] or ()]


def samplings_from_params(params: dict) -> list[Optional[Sampling]]:
    """Per endpoint, how a load balancer is sampled (backends given), or None for one probe."""
    samplings: list[Optional[Sampling]] = []
    for item in params["endpoints"] or ():
        backends, probes = item.get("backends"), item.get("probes")
        if backends is None and probes is not None:
            raise InputError(f"endpoint {item['address']}:{item['port']}: probes needs backends, the number of servers "
                             "behind the load balancer")
        samplings.append(None if backends is None else
                         Sampling(backends, default_probes(backends) if probes is None else probes))
    return samplings


def probe_endpoints(params: dict, judgement: Optional[Judgement] = None) -> list[EndpointReport]:
    """Probe and judge the endpoints option under the judging options (judgement: already loaded)."""
    return probe_and_judge(endpoints_from_params(params), judgement or judgement_from_params(params),
                           params["timeout"], params["concurrency"], params["key_types"],
                           samplings_from_params(params), params["expected_leaves"])
