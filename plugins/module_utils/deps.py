# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The guarded import of cryptography: the one place that knows the minimum version."""
from __future__ import annotations

import traceback

from ansible_collections.mailops.tls.plugins.module_utils.errors import DependencyError

MINIMUM_CRYPTOGRAPHY = (36, 0)

try:
    import cryptography
except ImportError:
    CRYPTOGRAPHY_VERSION = None
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    CRYPTOGRAPHY_VERSION = cryptography.__version__
    CRYPTOGRAPHY_IMPORT_ERROR = None


def _version_tuple(version: str) -> tuple:
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def cryptography_problem() -> str | None:
    """Return why cryptography cannot be used here, or None when it can."""
    wanted = ".".join(str(n) for n in MINIMUM_CRYPTOGRAPHY)
    if CRYPTOGRAPHY_VERSION is None:
        return (f"the Python library cryptography >= {wanted} is needed on the host that runs this module "
                "and is not installed: install python3-cryptography (Debian/Ubuntu, RHEL) or "
                "'pip install cryptography' for the interpreter Ansible uses there")
    if _version_tuple(CRYPTOGRAPHY_VERSION) < MINIMUM_CRYPTOGRAPHY:
        return (f"the Python library cryptography >= {wanted} is needed, but version {CRYPTOGRAPHY_VERSION} is "
                "installed: upgrade it on the host that runs this module")
    return None


def require_cryptography() -> None:
    """Raise DependencyError when cryptography is missing or too old."""
    problem = cryptography_problem()
    if problem:
        raise DependencyError(problem)
