# SPDX-License-Identifier: GPL-3.0-or-later
"""Copy the collection's files to DEST (…/ansible_collections/mailops/tls) for ansible-test.

ansible-test needs the collection under ansible_collections/<namespace>/<name>/ and resolves
symlinks, so it gets a fresh copy. In a git work tree the copy holds the files git tracks (as they
are in the work tree, so uncommitted edits are checked; `git add` a new file to have it checked), as
CI sees them; elsewhere every file except virtualenvs, build output and caches.

usage: python3 tests/tools/stage_collection.py REPO DEST
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SKIP_NAMES = {".git", "__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_PATHS = {"build", "tests/output"}


def git_files(repo: Path) -> list[str] | None:
    if shutil.which("git") is None or not (repo / ".git").exists():
        return None
    result = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached"],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    return sorted({name for name in result.stdout.decode().split("\0") if name})


def walked_files(repo: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(repo):
        rel = os.path.relpath(root, repo)
        dirs[:] = [
            d
            for d in dirs
            if d not in SKIP_NAMES
            and not d.startswith(".venv")
            and os.path.normpath(os.path.join(rel, d)) not in SKIP_PATHS
        ]
        found.extend(os.path.relpath(os.path.join(root, f), repo) for f in files if not f.endswith(".pyc"))
    return sorted(found)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    repo, dest = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    if dest.parts[-3:-2] != ("ansible_collections",):
        sys.exit(f"{dest} must end in ansible_collections/<namespace>/<name>")
    files = git_files(repo)
    source = "git" if files is not None else "directory walk"
    if files is None:
        files = walked_files(repo)
    if dest.exists() or dest.is_symlink():
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        else:
            shutil.rmtree(dest)
    copied = 0
    for name in files:
        src = repo / name
        if not (src.is_file() or src.is_symlink()):  # deleted but still tracked, or a submodule
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
        copied += 1
    print(f"staged {copied} files ({source}) in {dest}")


if __name__ == "__main__":
    main()
