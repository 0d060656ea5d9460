# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for the bounds of load.py on hostile input: PEM scanning stays linear in the size of the data, and only
regular files up to the size cap are read."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ansible_collections.mailops.tls.plugins.module_utils import load
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError


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


# ---------------------------------------------------------------------------------------------- reading files

def _fifo(tmp_path):
    os.mkfifo(tmp_path / "fifo.pem")
    return str(tmp_path / "fifo.pem")


def _socket(tmp_path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "s.pem"))
    return str(tmp_path / "s.pem")


@pytest.mark.parametrize(("make", "reason"), [
    (_fifo, "is a FIFO (named pipe), not a regular file"),
    (lambda tmp: "/dev/zero", "is a character device, not a regular file"),
    (lambda tmp: "/dev/null", "is a character device, not a regular file"),
    (_socket, "cannot be read"),
    (str, "is a directory"),
], ids=["fifo", "dev-zero", "dev-null", "socket", "directory"])
def test_read_file_refuses_what_is_not_a_regular_file_at_once(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(InputError) as caught:
        load.read_file(path)
    assert str(caught.value).startswith(f"{path} {reason}")


def test_a_fifo_among_the_inputs_is_refused_without_waiting_for_a_writer(tmp_path):
    path = _fifo(tmp_path)
    with pytest.raises(InputError, match="FIFO"):
        load.load_paths([path])


@pytest.mark.parametrize(("size", "fits"), [(1024, True), (1025, False)])
def test_read_file_size_cap(tmp_path, size, fits):
    path = tmp_path / "big.pem"
    path.write_bytes(b"x" * size)
    if fits:
        assert load.read_file(str(path), limit=1024) == b"x" * size
        return
    with pytest.raises(InputError, match=r"big\.pem is larger than 0\.000976562 MiB"):
        load.read_file(str(path), limit=1024)


def test_the_default_cap_is_documented():
    docs = (Path(__file__).parents[4] / "docs" / "input-guarantees.md").read_text()
    assert f"{load.MAX_INPUT_BYTES // (1024 * 1024)} MiB" in docs


def test_a_path_with_a_nul_character_is_an_input_error():
    with pytest.raises(InputError, match=r"^/etc/\\x00passwd contains a NUL character"):
        load.read_file("/etc/\x00passwd")
    with pytest.raises(InputError, match="NUL"):
        load.load_paths(["\x00"])
