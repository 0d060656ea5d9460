# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for the bounds of load.py on hostile input: PEM scanning stays linear in the size of the data."""
from __future__ import annotations

import pytest

from ansible_collections.mailops.tls.plugins.module_utils import load


class CountingBytes:
    """Bytes whose find() counts the bytes it examines: the work of a scan, independent of the machine's speed."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.examined = 0

    def find(self, sub: bytes, start: int) -> int:
        found = self.data.find(sub, start)
        self.examined += (found + len(sub) if found >= 0 else len(self.data)) - start
        return found

    def __getitem__(self, index):
        return self.data[index]

    def __len__(self) -> int:
        return len(self.data)


BODY = b"MIIBszCCAVmgAwIBAgIUQ2hlY2tzIHRoYXQgdGhlIHNjYW4gaXMgbGluZWFy\n"
# Shapes that made every BEGIN line search the rest of the data for an END line.
HOSTILE = {
    "begin-without-end": lambda n: b"-----BEGIN CERTIFICATE-----\n" + BODY * 3,
    "one-end-at-the-very-end": lambda n: b"-----BEGIN CERTIFICATE-----\n" + BODY,
    "end-without-dashes": lambda n: b"-----BEGIN CERTIFICATE-----\n" + BODY + b"-----END CERTIFICATE",
    "begin-without-label-end": lambda n: b"-----BEGIN CERTIFICATE\n" + BODY,
    "bad-label": lambda n: b"-----BEGIN certificate?-----\n" + BODY,
}
TAIL = {"one-end-at-the-very-end": b"-----END CERTIFICATE-----\n"}


def _examined(shape: str, blocks: int) -> tuple[int, int]:
    data = CountingBytes(HOSTILE[shape](blocks) * blocks + TAIL.get(shape, b""))
    for _block in load._pem_blocks(data):
        pass
    return data.examined, len(data)


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_pem_scan_examines_each_byte_a_bounded_number_of_times(shape):
    small, small_size = _examined(shape, 500)
    large, large_size = _examined(shape, 4000)
    assert large <= 4 * large_size, f"{large} bytes examined for {large_size} bytes of data"
    # 8x the data: linear work grows about 8x, the quadratic scan grew about 64x.
    assert large / small <= 1.5 * large_size / small_size


def test_forty_thousand_unterminated_blocks_are_each_a_parse_error():
    data = (b"-----BEGIN CERTIFICATE-----\n" + BODY) * 40000
    loaded = load.load_bytes(data, "hostile.pem")
    assert len(loaded.findings) == 40000
    assert {f.code for f in loaded.findings} == {"parse_error"}
    assert "block 40000 of hostile.pem" in loaded.findings[-1].message
