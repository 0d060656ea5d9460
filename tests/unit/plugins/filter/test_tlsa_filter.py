# SPDX-License-Identifier: GPL-3.0-or-later
"""The tlsa filter: the library's TLSA records from PEM or DER, and clear errors for bad input."""
from __future__ import annotations

import pki
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.tls.plugins.filter.tlsa import FilterModule, tlsa
from ansible_collections.mailops.tls.plugins.module_utils.tlsa import record_for


def test_the_filter_gives_the_record_of_the_first_certificate_from_pem_or_der():
    h = pki.hierarchy("mx1.example.test")
    chain_pem = (b"junk\n" + pki.pem_bundle(h.leaf, *h.intermediates)).decode()
    assert FilterModule().filters()["tlsa"] is tlsa
    assert tlsa(chain_pem) == str(record_for(h.leaf.der))
    assert tlsa(h.intermediates[0].der, usage=2) == str(record_for(h.intermediates[0].der, 2, 1, 1))
    assert tlsa(h.leaf.pem.decode(), 3, 0, 2) == str(record_for(h.leaf.der, 3, 0, 2))


@pytest.mark.parametrize("data, options, message", [
    ("no certificate here", {}, "no certificate found"),
    (42, {}, "PEM text or DER bytes"),
    (None, {"usage": 4}, "usage 4"),
    (None, {"selector": 2}, "selector 2"),
    (None, {"matching_type": 9}, "matching type 9"),
])
def test_the_filter_refuses_bad_input_clearly(data, options, message):
    data = pki.root().pem.decode() if data is None else data
    with pytest.raises(AnsibleFilterError, match=message):
        tlsa(data, **options)
