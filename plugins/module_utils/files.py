# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Reading and atomically replacing the public files the publishing and report modules write.

No key material ever goes through here: the files are world-readable unless the caller sets a mode.
"""
from __future__ import annotations

import os
import stat
import tempfile
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.load import read_file


def read_existing(path: str) -> Optional[bytes]:
    """The bytes of path, or None when it does not exist; InputError when it is not a regular file (a FIFO is
    refused, not waited on), is larger than the input size cap, or is unreadable."""
    if not os.path.lexists(path):
        return None
    try:
        return read_file(path)
    except InputError:
        if not os.path.exists(path):  # removed meanwhile, or a dangling link: a new file will be written
            return None
        raise


def write_atomically(path: str, data: bytes) -> None:
    """Replace path with data: a temporary file in the same directory, flushed to disk, renamed over it.

    A symbolic link is followed and its target replaced. An existing file keeps its mode; a new one gets the mode
    a new file gets under the current umask (0644 under the usual 022)."""
    real = os.path.realpath(path)
    directory, name = os.path.split(real)
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        umask = os.umask(0o022)
        os.umask(umask)
        mode = 0o666 & ~umask
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, real)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    directory_handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_handle)
    finally:
        os.close(directory_handle)
