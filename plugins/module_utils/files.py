# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Reading the files the report module takes as input (fileset writes every output)."""
from __future__ import annotations

import os
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
