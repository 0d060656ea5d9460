# SPDX-License-Identifier: GPL-3.0-or-later
"""Fail when a built collection tarball holds development files or lacks what users need."""

from __future__ import annotations

import sys
import tarfile

SHIPPED_TOP_LEVEL = frozenset({
    "FILES.json", "MANIFEST.json", "README.md", "CHANGELOG.rst",
    "changelogs", "docs", "meta", "playbooks", "plugins", "roles", "scripts",
})
"""The only top-level entries users need; anything else (tests, Makefile, virtualenvs...) is development."""

REQUIRED = (
    "CHANGELOG.rst",
    "changelogs/changelog.yaml",
    "meta/runtime.yml",
    "meta/execution-environment.yml",
    "meta/ee-requirements.txt",
    "meta/ee-bindep.txt",
    "docs/docsite/extra-docs.yml",
    "docs/docsite/links.yml",
)

FORBIDDEN_PARTS = ("__pycache__", ".pytest_cache", ".ruff_cache", "changelogs/fragments", ".plugin-cache.yaml",
                   "playbooks/demo.yml")
"""Development leftovers that may sit inside shipped directories."""

MAX_UNPACKED_BYTES = 2_000_000
"""The collection is about 1 MB unpacked; a virtualenv or a lab state directory is far more."""


def problems(members: dict[str, int]) -> list[str]:
    """What is wrong with a tarball of these member names and sizes (empty when it is fit to ship)."""
    found = []
    for name in sorted(members):
        top = name.split("/", 1)[0]
        if top not in SHIPPED_TOP_LEVEL:
            found.append(f"{name}: development file (only {', '.join(sorted(SHIPPED_TOP_LEVEL))} ship)")
        elif any(part in name for part in FORBIDDEN_PARTS):
            found.append(f"{name}: development file inside {top}/")
    found.extend(f"{name}: missing" for name in REQUIRED if name not in members)
    total = sum(members.values())
    if total > MAX_UNPACKED_BYTES:
        found.append(f"{total} bytes unpacked, more than {MAX_UNPACKED_BYTES}: look for build output in the tarball")
    return found


def main(tarball: str) -> int:
    """Check one tarball; print each problem, or a one-line summary when there is none."""
    with tarfile.open(tarball) as archive:
        members = {member.name.rstrip("/"): member.size for member in archive.getmembers() if member.isfile()}
    found = problems(members)
    for problem in found:
        print(f"{tarball}: {problem}", file=sys.stderr)
    if not found:
        print(f"{tarball}: {len(members)} files, {sum(members.values()) // 1024} KiB unpacked, no development files")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
