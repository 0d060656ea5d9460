# SPDX-License-Identifier: GPL-3.0-or-later
"""The library's verdicts against cryptography's verifier and `openssl verify` on a fixed seed of random certificate
graphs (tests/differential.py; `make differential` runs thousands and prints agreement per rule)."""
from __future__ import annotations

import os

import differential
import pytest

GRAPHS = 300
SEED = 13


@pytest.fixture(scope="module")
def tally() -> differential.Tally:
    return differential.run(GRAPHS, SEED)


# As root (CI), make unit installs openssl first: there the test must run.
needs_openssl = pytest.mark.skipif(differential.OPENSSL is None and os.geteuid() != 0,
                                   reason="needs the openssl command")


@needs_openssl
def test_every_disagreement_is_a_documented_difference(tally):
    unexplained = [differential.describe(*item) for item in tally.unexplained]
    assert not unexplained, "\n".join(unexplained)
    assert tally.agree["openssl"] + sum(count for reason, count in tally.explained.items()
                                        if reason.startswith("openssl")) == GRAPHS
    if differential.verification is not None:
        assert tally.agree["cryptography"] > GRAPHS * 0.85


@needs_openssl
def test_the_graphs_reach_every_rule_with_both_verdicts(tally):
    """Each rule is exercised, and the oracles both accept and reject: a generator that only makes broken (or only
    clean) graphs would agree trivially."""
    tags = set(tally.per_tag)
    for wanted in ("name_constraints:dns", "name_constraints:ip", "name_constraints:email", "eku:intermediate",
                   "eku:intermediate:no_server_auth", "path_length", "unknown_critical:intermediate",
                   "basic_constraints_not_critical:intermediate", "version_1:leaf", "ca_as_leaf", "cross_sign:other",
                   "lookalike", "san:idn", "san:wildcard", "san:cn_only", "san:space", "san:ip", "key:rsa",
                   "key:ed25519", "expired:intermediate", "not_yet_valid:leaf", "max_chain_depth"):
        assert wanted in tags, wanted
    accepted = tally.per_tag["key:ecdsa"]["openssl:agree"]
    assert 0 < tally.accepted < GRAPHS and accepted > 0
