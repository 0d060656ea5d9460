# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for endpoints.py: chains captured from real loopback servers, judged and compared across endpoints."""
from __future__ import annotations

import contextlib
import itertools
import json
import random
import shutil
import ssl

import pki
import pytest

# tests/ is on sys.path (tests/conftest.py's folder): tests/unit/... is importable as unit....
from unit.hostile_server import Behaviour, HostileServer, free_port, full_backlog, server_context

from ansible_collections.mailops.tls.plugins.module_utils import findings
from ansible_collections.mailops.tls.plugins.module_utils import probe as probe_module
from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement
from ansible_collections.mailops.tls.plugins.module_utils.certs import sha256_hex
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import (
    compare,
    endpoint_results,
    judge,
    probe_and_judge,
)
from ansible_collections.mailops.tls.plugins.module_utils.load import load_bytes
from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, Sampling, probe

NAME = "mail.example.test"
TIMEOUT = 5.0  # for probes that should succeed: they take milliseconds
HOSTILE_TIMEOUT = 0.6  # for probes that should fail: the timeout cases wait it out
BACKEND_HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")  # one port on each: three backends of one service
IMPLICIT_TLS = Behaviour("tls")

# code -> the server that makes a probe fail that way (None: the code needs no server, see failing_endpoint)
FAILURES = {
    "connect_refused": None,
    "connect_timeout": None,
    "connect_failed": None,
    "starttls_not_offered": Behaviour("imap", starttls="not_offered"),
    "starttls_rejected": Behaviour("smtp", starttls="rejected"),
    "protocol_error": Behaviour("pop3", starttls="garbage_reply"),
    "tls_handshake_failed": Behaviour("smtp", starttls="plaintext"),
    "timeout": Behaviour("smtp", greeting="silent"),
    "probe_unsupported": None,
}


@pytest.fixture(scope="module")
def company():
    """root -> upper -> lower -> leaf for NAME: two intermediates, so the order of a chain can be wrong."""
    return pki.hierarchy(NAME, depth=2)


@pytest.fixture(scope="module")
def chains(company):
    """Chains a server may send, by what is wrong with them."""
    upper, lower = company.intermediates
    return {
        "good": company.served_chain,
        "leaf_only": [company.leaf],
        "wrong_order": [company.leaf, upper, lower],
        "with_root": [*company.served_chain, company.root],
        "other_name": [lower.leaf("other.example.test"), lower, upper],
        "other_leaf": [lower.leaf(NAME), lower, upper],  # valid too, but not the one the others serve
        "two_names": [lower.leaf(NAME, "imap.example.test"), lower, upper],
    }


@pytest.fixture(scope="module")
def trusting(company):
    """Judges with the company root as the only trust anchor."""
    return Judgement(roots=load_bytes(company.root.pem, "roots.pem"))


@pytest.fixture
def stack():
    with contextlib.ExitStack() as exits:
        yield exits


@pytest.fixture
def serve(stack):
    """serve(chain, behaviour=implicit TLS, host) -> a running HostileServer, stopped when the test ends."""
    def start(chain, behaviour=IMPLICIT_TLS, host="127.0.0.1", context=None):
        return stack.enter_context(HostileServer(context or server_context(chain), behaviour, host))
    return start


def backends(stack, contexts, hosts=BACKEND_HOSTS, behaviour=IMPLICIT_TLS) -> list:
    """One running server per host, all on the same port (free on the first host; retried if another host has
    it taken), each serving its context: the backends of one service behind a load balancer."""
    for _attempt in range(5):
        attempt = contextlib.ExitStack()
        try:
            first = attempt.enter_context(HostileServer(contexts[0], behaviour, hosts[0]))
            servers = [first] + [attempt.enter_context(HostileServer(context, behaviour, host, first.port))
                                 for context, host in zip(contexts[1:], hosts[1:])]
        except OSError:
            attempt.close()
            continue
        stack.enter_context(attempt)
        return servers
    raise AssertionError(f"no port free on all of {', '.join(hosts)}")


def round_robin(*chains) -> ssl.SSLContext:
    """A server context that serves the chains in turn, one per handshake: a load balancer in front of
    backends that serve these chains."""
    context = server_context(chains[0])
    turns = itertools.cycle([server_context(chain) for chain in chains])

    def choose(tls, _server_name, _context):
        tls.context = next(turns)

    context.sni_callback = choose
    return context


def codes(report) -> list:
    return sorted(f.code for f in report.findings)


# Probe errors become findings

def failing_endpoint(code: str, serve, stack, monkeypatch, tmp_path, chain) -> Endpoint:
    """An endpoint whose probe fails with code (the servers it needs run until the test ends)."""
    if code == "connect_timeout":
        return Endpoint("127.0.0.1", stack.enter_context(full_backlog()), "smtp", label=code)
    if code == "connect_failed":  # a label over 63 bytes: refused by the IDNA codec, no resolver asked
        return Endpoint("x" * 64 + ".example.test", 25, "smtp", server_name=NAME, label=code)
    if code == "probe_unsupported":  # Python 3.9 without an openssl command
        monkeypatch.setattr(probe_module, "CHAIN_CAPTURE", False)
        monkeypatch.setenv("PATH", str(tmp_path))
    behaviour = FAILURES[code] or IMPLICIT_TLS
    port = free_port() if code == "connect_refused" else serve(chain, behaviour).port
    return Endpoint("127.0.0.1", port, behaviour.protocol, server_name=NAME, label=code)


def test_the_probe_and_the_vocabulary_know_the_same_error_codes():
    assert probe_module.ERROR_CODES == findings.PROBE_ERROR_CODES
    assert set(FAILURES) == set(findings.PROBE_ERROR_CODES)  # every code is tested below
    assert all(findings.CODES[code][0] == findings.ERROR for code in findings.PROBE_ERROR_CODES)


@pytest.mark.parametrize("code", findings.PROBE_ERROR_CODES)
def test_judge_turns_every_probe_error_into_an_error_finding_naming_the_endpoint(
        code, serve, stack, monkeypatch, tmp_path, chains, trusting):
    endpoint = failing_endpoint(code, serve, stack, monkeypatch, tmp_path, chains["good"])
    result = probe(endpoint, HOSTILE_TIMEOUT)
    assert (result.ok, result.error_code) == (False, code), result.error_message
    report = judge(result, trusting)
    assert report.analysis is None and report.chain_id is None
    assert [(f.code, f.severity) for f in report.findings] == [(code, "error")]
    assert report.findings[0].message.startswith(f"{endpoint}: "), report.findings[0].message
    assert f"({code})" in report.findings[0].message
    entry = report.as_dict()
    assert entry["ok"] is False and entry["error"] == {"code": code, "message": result.error_message}
    assert (entry["presented"], entry["chain"], entry["root"], entry["trusted"]) == ([], [], None, False)


# One chain judged

@pytest.mark.parametrize(("chain", "expected"), [
    ("good", []),
    ("leaf_only", ["missing_intermediate"]),
    ("wrong_order", ["wrong_order"]),
    ("with_root", ["root_included"]),
    ("other_name", ["name_mismatch"]),
])
def test_judge_finds_what_is_wrong_with_the_chain_sent(serve, chains, trusting, chain, expected):
    server = serve(chains[chain], Behaviour("smtp"))
    endpoint = Endpoint("127.0.0.1", server.port, "smtp", server_name=NAME, label=chain)
    report = judge(probe(endpoint, TIMEOUT), trusting)
    assert codes(report) == expected, [f.message for f in report.findings]
    entry = report.as_dict()
    assert [c["fingerprints"]["sha256"] for c in entry["presented"]] == [sha256_hex(c.der) for c in chains[chain]]
    assert entry["ordered"] is (chain != "wrong_order")
    assert entry["complete"] is (chain != "leaf_only")
    assert entry["trusted"] is (chain != "leaf_only")


def test_missing_intermediate_names_the_certificate_and_the_endpoint_that_sent_it(serve, chains, trusting):
    server = serve(chains["leaf_only"], Behaviour("imap"), host="127.0.0.2")
    report = judge(probe(Endpoint("127.0.0.2", server.port, "imap", server_name=NAME, label="mx1"), TIMEOUT),
                   trusting)
    (problem,) = report.findings
    assert (problem.code, problem.severity) == ("missing_intermediate", "error")
    assert f"certificate 1 of the chain sent by 127.0.0.2:{server.port} (mx1)" in problem.message
    assert "'CN=Test Intermediate CA 2,O=mailops test'" in problem.message  # the one to add


def test_name_mismatch_is_for_the_server_name(serve, chains, trusting):
    server = serve(chains["other_name"])
    report = judge(probe(Endpoint("127.0.0.1", server.port, "tls", server_name=NAME), TIMEOUT), trusting)
    (problem,) = report.findings
    assert problem.code == "name_mismatch" and f"not valid for {NAME}" in problem.message
    assert [(n["name"], n["matches"]) for n in report.as_dict()["names"]] == [(NAME, False)]


@pytest.mark.parametrize(("chain", "expected"), [("good", ["name_mismatch"]), ("two_names", [])])
def test_extra_names_are_checked_after_the_server_name(serve, chains, trusting, chain, expected):
    server = serve(chains[chain])
    with_names = Judgement(roots=trusting.roots, names=("imap.example.test",))
    report = judge(probe(Endpoint("127.0.0.1", server.port, "tls", server_name=NAME), TIMEOUT), with_names)
    assert codes(report) == expected
    assert all("imap.example.test" in f.message for f in report.findings)
    assert [n["name"] for n in report.as_dict()["names"]] == [NAME, "imap.example.test"]


@pytest.mark.parametrize(("chain", "anchors", "trusted", "expected"), [
    ("good", True, True, []),
    ("with_root", True, True, ["root_included"]),
    ("with_root", False, False, ["root_included", "untrusted_root"]),
    # Without anchors the root is just a certificate nobody sent: what is missing above the top is unknown.
    ("good", False, False, ["missing_intermediate"]),
])
def test_trust_comes_from_the_roots_given(serve, chains, trusting, chain, anchors, trusted, expected):
    server = serve(chains[chain])
    report = judge(probe(Endpoint("127.0.0.1", server.port, "tls", server_name=NAME), TIMEOUT),
                   trusting if anchors else Judgement())
    assert report.as_dict()["trusted"] is trusted
    assert codes(report) == expected


# Endpoints compared: backend_mismatch and service_mismatch

def test_the_one_backend_with_another_leaf_is_a_backend_mismatch_naming_who_serves_what(stack, chains, trusting):
    contexts = [server_context(chains[name]) for name in ("good", "other_leaf", "good")]
    servers = backends(stack, contexts)
    port = servers[0].port
    endpoints = [Endpoint(host, port, "tls", server_name=NAME, label=f"mx{n}")
                 for n, host in enumerate(BACKEND_HOSTS, 1)]
    endpoints.append(Endpoint("127.0.0.5", port, "tls", server_name=NAME, label="mx4"))  # down: no chain to compare
    reports = probe_and_judge(endpoints, trusting, TIMEOUT, 4)
    assert [codes(r) for r in reports] == [[], ["backend_mismatch"], [], ["connect_refused"]]
    (mismatch,) = reports[1].findings
    assert mismatch.severity == "error"
    good, other = sha256_hex(chains["good"][0].der)[:23], sha256_hex(chains["other_leaf"][0].der)[:23]
    assert mismatch.message.startswith(f"127.0.0.3:{port} (mx2) presents another chain than the other backends "
                                       f"answering for {NAME}: ")
    assert (f"{good}... with 2 more certificate(s) from 127.0.0.2:{port} (mx1), 127.0.0.4:{port} (mx3); "
            f"leaf 'CN={NAME},O=mailops test' {other}... with 2 more certificate(s) from 127.0.0.3:{port} (mx2)"
            ) in mismatch.message


def test_backends_probed_without_sni_are_compared_under_their_server_name(stack, chains, trusting):
    contexts = [server_context(chains[name]) for name in ("good", "good", "other_leaf")]
    servers = backends(stack, contexts)
    endpoints = [Endpoint(host, servers[0].port, "tls", server_name=NAME, send_sni=False) for host in BACKEND_HOSTS]
    endpoints.append(Endpoint(BACKEND_HOSTS[0], servers[0].port, "tls", server_name=NAME))  # with SNI: not compared
    reports = probe_and_judge(endpoints, trusting, TIMEOUT, 4)
    assert [codes(r) for r in reports] == [[], [], ["backend_mismatch"], []]
    assert f"other backends answering for {NAME} (no SNI): " in reports[2].findings[0].message


def test_backends_serving_the_same_chain_are_no_mismatch(stack, chains, trusting):
    servers = backends(stack, [server_context(chains["good"])] * 3, behaviour=Behaviour("smtp"))
    endpoints = [Endpoint(host, servers[0].port, "smtp", server_name=NAME) for host in BACKEND_HOSTS]
    assert [codes(r) for r in probe_and_judge(endpoints, trusting, TIMEOUT, 3)] == [[], [], []]


def test_in_a_tie_the_broken_backend_is_the_mismatch_whatever_the_input_order(stack, chains, trusting):
    servers = backends(stack, [server_context(chains["leaf_only"]), server_context(chains["good"])],
                       hosts=BACKEND_HOSTS[:2])
    endpoints = [Endpoint(host, servers[0].port, "tls", server_name=NAME) for host in BACKEND_HOSTS[:2]]
    reports = probe_and_judge(endpoints, trusting, TIMEOUT, 2)
    assert [codes(r) for r in reports] == [["backend_mismatch", "missing_intermediate"], []]


def test_a_load_balancer_probed_repeatedly_shows_the_backend_mismatch_and_no_service_mismatch(
        serve, chains, trusting):
    front = serve(None, context=round_robin(chains["good"], chains["good"], chains["other_leaf"]))
    steady = serve(chains["good"], Behaviour("smtp"))  # another service of the same address
    endpoints = [Endpoint("127.0.0.1", front.port, "tls", server_name=NAME, label="front")] * 6
    endpoints.append(Endpoint("127.0.0.1", steady.port, "smtp", server_name=NAME, label="front"))
    reports = probe_and_judge(endpoints, trusting, TIMEOUT, 1)  # one at a time: handshakes in input order
    assert [codes(r) for r in reports] == [[], [], ["backend_mismatch"], [], [], ["backend_mismatch"], []]


def test_services_of_one_address_with_different_chains_are_a_service_mismatch(serve, chains, trusting):
    smtp, imaps = serve(chains["good"], Behaviour("smtp")), serve(chains["other_leaf"])
    endpoints = [Endpoint("127.0.0.1", smtp.port, "smtp", server_name=NAME, label="postfix"),
                 Endpoint("127.0.0.1", imaps.port, "tls", server_name=NAME, label="dovecot")]
    reports = probe_and_judge(endpoints, trusting, TIMEOUT, 2)
    assert [codes(r) for r in reports] == [[], ["service_mismatch"]]
    (mismatch,) = reports[1].findings
    assert mismatch.severity == "warning"
    assert mismatch.message.startswith(f"127.0.0.1:{imaps.port} (dovecot) presents another chain than the other "
                                       f"services answering for {NAME}: ")
    assert f"from 127.0.0.1:{smtp.port} (postfix); " in mismatch.message
    assert mismatch.message.endswith(f"from 127.0.0.1:{imaps.port} (dovecot); deploy the same chain everywhere")


@pytest.mark.parametrize(("chain", "server_name"), [("good", NAME), ("two_names", "imap.example.test")],
                         ids=["same-chain", "other-name"])
def test_services_with_the_same_chain_or_another_name_are_no_service_mismatch(
        serve, chains, trusting, chain, server_name):
    smtp, imaps = serve(chains["good"], Behaviour("smtp")), serve(chains[chain])
    endpoints = [Endpoint("127.0.0.1", smtp.port, "smtp", server_name=NAME),
                 Endpoint("127.0.0.1", imaps.port, "tls", server_name=server_name)]
    assert [codes(r) for r in probe_and_judge(endpoints, trusting, TIMEOUT, 2)] == [[], []]


@pytest.fixture(scope="module")
def dual():
    """An RSA and an ECDSA hierarchy for NAME, as a dual-certificate server has them."""
    return {"rsa": pki.hierarchy(NAME, key_type="rsa"), "ecdsa": pki.hierarchy(NAME)}


def test_key_types_report_both_chains_and_no_mismatch_between_them(stack, dual):
    both = server_context(dual["rsa"].served_chain, dual["ecdsa"].served_chain)
    servers = backends(stack, [both, both], hosts=BACKEND_HOSTS[:2])
    smtp = backends(stack, [both], hosts=BACKEND_HOSTS[:1], behaviour=Behaviour("smtp"))[0]
    endpoints = [*(Endpoint(host, servers[0].port, "tls", server_name=NAME) for host in BACKEND_HOSTS[:2]),
                 Endpoint(BACKEND_HOSTS[0], smtp.port, "smtp", server_name=NAME)]
    anchors = Judgement(roots=load_bytes(pki.pem_bundle(dual["rsa"].root, dual["ecdsa"].root), "roots.pem"))
    reports = probe_and_judge(endpoints, anchors, TIMEOUT, 6, key_types=("rsa", "ecdsa"))
    assert [(r.probe.endpoint.address, r.probe.endpoint.port, r.probe.endpoint.key_type, r.probe.key_type)
            for r in reports] == [(host, port, asked, asked) for host, port in (
                (BACKEND_HOSTS[0], servers[0].port), (BACKEND_HOSTS[1], servers[0].port),
                (BACKEND_HOSTS[0], smtp.port)) for asked in ("rsa", "ecdsa")]
    assert [codes(r) for r in reports] == [[]] * 6
    assert [r.as_dict()["presented"][0]["fingerprints"]["sha256"] for r in reports] == [
        sha256_hex(dual[kind].leaf.der) for kind in ("rsa", "ecdsa")] * 3
    assert [r.name.rsplit(" ", 1)[1] for r in reports] == ["rsa", "ecdsa"] * 3


# The result schema

ENDPOINT_KEYS = ["name", "address", "peer_address", "port", "protocol", "server_name", "sni", "label",
                 "key_type_requested", "key_type", "sample", "ok", "error", "tls_version", "cipher", "seconds",
                 "presented", "chain", "root", "names", "complete", "ordered", "trusted", "issues"]


def test_endpoint_results_have_stable_keys_serialise_and_count_right(serve, chains, trusting):
    good, broken, rooted = serve(chains["good"]), serve(chains["leaf_only"]), serve(chains["with_root"])
    endpoints = [Endpoint("127.0.0.1", good.port, "tls", server_name=NAME, label="good"),
                 Endpoint("127.0.0.1", broken.port, "tls", server_name=NAME, label="broken"),
                 Endpoint("127.0.0.1", rooted.port, "tls", server_name=NAME, label="rooted"),
                 Endpoint("127.0.0.1", free_port(), "tls", server_name=NAME, label="down")]
    reports = probe_and_judge(endpoints, trusting, TIMEOUT, 4)
    results = endpoint_results(reports)
    assert json.loads(json.dumps(results)) == results
    assert list(results) == ["endpoints", "sampled", "issues", "summary"]
    assert [list(entry) for entry in results["endpoints"]] == [ENDPOINT_KEYS] * 4
    assert [entry["label"] for entry in results["endpoints"]] == ["good", "broken", "rooted", "down"]
    assert [entry["name"] for entry in results["endpoints"]] == [f"{e} tls" for e in endpoints]
    # Three chains on one address: the clean one is the reference, the other two differ from it.
    assert [(i["endpoint"], i["code"], i["severity"]) for i in results["issues"]] == [
        (f"{endpoints[1]} tls", "missing_intermediate", "error"),
        (f"{endpoints[1]} tls", "service_mismatch", "warning"),
        (f"{endpoints[2]} tls", "root_included", "info"),
        (f"{endpoints[2]} tls", "service_mismatch", "warning"),
        (f"{endpoints[3]} tls", "connect_refused", "error"),
    ]
    assert all(set(i) == {"code", "severity", "message", "certificate", "endpoint"} for i in results["issues"])
    assert results["summary"] == {"probed": 4, "answered": 3, "clean": 2, "errors": 2, "warnings": 2}
    assert [entry["issues"] for entry in results["endpoints"]] == [
        [{k: v for k, v in i.items() if k != "endpoint"} for i in results["issues"] if i["endpoint"] == entry["name"]]
        for entry in results["endpoints"]]


def test_compare_of_nothing_or_of_failures_adds_nothing(trusting):
    assert compare([]) == []
    port = free_port()
    reports = [judge(probe(Endpoint("127.0.0.1", port, "tls", server_name=NAME), HOSTILE_TIMEOUT), trusting)] * 2
    assert compare(reports) == reports


def test_openssl_and_ssl_backends_judge_alike(serve, chains, trusting):
    if shutil.which("openssl") is None or not probe_module.CHAIN_CAPTURE:
        pytest.skip("needs both handshake backends")
    server = serve(chains["wrong_order"], Behaviour("pop3"))
    endpoint = Endpoint("127.0.0.1", server.port, "pop3", server_name=NAME)
    by_ssl, by_openssl = (judge(probe(endpoint, TIMEOUT, backend=backend), trusting) for backend in ("ssl", "openssl"))
    assert by_ssl.chain_id == by_openssl.chain_id
    assert codes(by_ssl) == codes(by_openssl) == ["wrong_order"]


# Load balancers: sampled until every server behind them answered, and the deployed chain as the reference

class Balanced:
    """Stands in for the TLS context of a server behind which a load balancer hands each connection to the next
    of several servers (round robin) or to one drawn at random; each server serves its own context."""

    def __init__(self, contexts: list, *, randomly: bool = False) -> None:
        self._contexts, self._randomly, self._next = contexts, randomly, itertools.count()
        self._random = random.Random(7)

    def wrap_socket(self, *args, **kwargs):
        if self._randomly:
            chosen = self._random.choice(self._contexts)
        else:
            chosen = self._contexts[next(self._next) % len(self._contexts)]
        return chosen.wrap_socket(*args, **kwargs)


def balancer_endpoint(serve, chains, names: list, *, randomly: bool = False) -> Endpoint:
    contexts = [server_context(chains[name]) for name in names]
    server = serve(None, context=Balanced(contexts, randomly=randomly))
    return Endpoint("127.0.0.1", server.port, "tls", server_name=NAME, label="balancer")


def test_one_probe_of_a_balancer_can_miss_its_broken_server(serve, chains, trusting):
    """The reason for sampling: a single probe lands on the first, good server and the balancer passes."""
    endpoint = balancer_endpoint(serve, chains, ["good", "leaf_only", "good"])
    assert [codes(report) for report in probe_and_judge([endpoint], trusting, TIMEOUT, 1)] == [[]]


def test_a_sampled_round_robin_balancer_shows_its_broken_server_and_counts_the_chains(serve, chains, trusting):
    endpoint = balancer_endpoint(serve, chains, ["good", "leaf_only", "good"])
    reports = probe_and_judge([endpoint], trusting, TIMEOUT, 1, samplings=[Sampling(backends=3, probes=6)])
    # Two different chains among three servers: no proof that all three answered, so the bound is reached.
    assert [report.probe.sample for report in reports] == [1, 2, 3, 4, 5, 6]
    assert [codes(report) for report in reports] == [[], ["backend_mismatch", "missing_intermediate"], []] * 2
    assert reports[1].name == f"{endpoint} tls, probe 2"
    results = endpoint_results(reports)
    assert results["sampled"] == [{"endpoint": str(endpoint), "address": "127.0.0.1", "port": endpoint.port,
                                   "server_name": NAME, "key_type_requested": None, "probes": 6, "answered": 6,
                                   "chains": 2}]
    assert [entry["sample"] for entry in results["endpoints"]] == [1, 2, 3, 4, 5, 6]


def test_sampling_stops_once_every_server_answered_with_its_own_chain(serve, chains, trusting):
    endpoint = balancer_endpoint(serve, chains, ["good", "other_leaf", "two_names"])
    reports = probe_and_judge([endpoint], trusting, TIMEOUT, 1, samplings=[Sampling(backends=3, probes=20)])
    assert len(reports) == 3
    assert endpoint_results(reports)["sampled"][0]["chains"] == 3


def test_the_default_bound_finds_a_broken_server_behind_a_random_balancer(serve, chains, trusting):
    assert probe_module.default_probes(1) == 5 and probe_module.default_probes(3) == 18
    endpoint = balancer_endpoint(serve, chains, ["good", "good", "leaf_only"], randomly=True)
    sampling = Sampling(backends=3, probes=probe_module.default_probes(3))
    reports = probe_and_judge([endpoint], trusting, TIMEOUT, 1, samplings=[sampling])
    assert len(reports) == 18
    assert "missing_intermediate" in {f.code for report in reports for f in report.findings}


@pytest.mark.parametrize("backends, probes", [(0, 3), (2, 0), (2, "3")])
def test_a_sampling_that_cannot_sample_is_refused(backends, probes):
    with pytest.raises(probe_module.InputError, match="load balancer sampling"):
        Sampling(backends=backends, probes=probes)


def test_the_deployed_chain_is_the_reference_even_on_the_fewest_ports(serve, chains, trusting):
    """Two ports still serve the old chain after a deployment, one the new: the new one is right, so only the two
    old ones are reported (old_chain_served, and service_mismatch against the deployed chain)."""
    new, old = serve(chains["other_leaf"]), [serve(chains["good"]), serve(chains["good"])]
    endpoints = [Endpoint("127.0.0.1", server.port, "tls", server_name=NAME) for server in (new, *old)]
    deployed = sha256_hex(chains["other_leaf"][0].der)
    reports = probe_and_judge(endpoints, trusting, TIMEOUT, 3)
    assert [codes(report) for report in reports] == [["service_mismatch"], [], []]
    reports = probe_and_judge(endpoints, trusting, TIMEOUT, 3, expected_leaves=[deployed.replace(":", "").lower()])
    assert [codes(report) for report in reports] == [[], *[["old_chain_served", "service_mismatch"]] * 2]
    stale = next(f for f in reports[1].findings if f.code == "old_chain_served")
    assert stale.severity == "error" and f"not the deployed leaf {deployed[:23]}..." in stale.message
    assert f"{endpoints[1]} serves the leaf 'CN={NAME}" in stale.message
