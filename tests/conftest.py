# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the collection importable as ansible_collections.mailops.tls for tests run from the repository."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _collection_root() -> Path:
    """Return a directory holding ansible_collections/mailops/tls that points at this repository."""
    for parent in REPO.parents:
        if parent.name == "ansible_collections":
            return parent.parent
    root = REPO / "build" / "collections"
    link = root / "ansible_collections" / "mailops" / "tls"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REPO, link)
    return root


sys.path.insert(0, str(_collection_root()))

# With CI=true, a skipped test not on tests/skip_policy.py's allowlist fails the run: its hooks, registered here.
import skip_policy  # noqa: E402

pytest_runtest_logreport = skip_policy.pytest_runtest_logreport
pytest_sessionfinish = skip_policy.pytest_sessionfinish
