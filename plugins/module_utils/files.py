# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Reading files the report module takes as input (fileset writes every output)."""
from __future__ import annotations

from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError


def read_existing(path: str) -> Optional[bytes]:
    """The bytes of path, or None when it does not exist; InputError when it is a directory or unreadable."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a file: give the path of a file") from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror}") from None
