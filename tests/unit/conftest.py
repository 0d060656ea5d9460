# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the unit tests of the chain modules and chain files."""
from __future__ import annotations

import pki
import pytest


@pytest.fixture(scope="module")
def company() -> pki.Hierarchy:
    """root -> upper -> lower -> leaf for mail.example.test and imap.example.test, built once per test file.
    Files that need another hierarchy define their own company fixture."""
    return pki.hierarchy("mail.example.test", "imap.example.test", depth=2)
