# SPDX-License-Identifier: GPL-3.0-or-later
"""Seed ansible-test's pip bootstrap cache with tests/tools/get_pip_offline.py.

Run with the Python of the virtualenv that holds ansible-core. ansible-test bootstraps pip into
each sanity virtualenv with ``~/.ansible/test/cache/get_pip_<pip version>.py`` and downloads that
file from the internet when it is missing; here it cannot. This writes our offline stand-in under
the exact name this ansible-test release looks for. A real get-pip script already in the cache is
left alone (it works offline too); an older copy of ours is refreshed.
"""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIM = HERE / "get_pip_offline.py"
MARKER = "mailops-tls-offline-get-pip"


def pip_version() -> str:
    """Return the pip version ansible-test bootstraps into its virtualenvs for this Python."""
    python = types.SimpleNamespace(version="{}.{}".format(*sys.version_info[:2]))
    try:
        from ansible_test._internal.python_requirements import get_venv_packages

        return get_venv_packages(python)["pip"]
    except Exception as ex:  # private API: fall back to reading the source
        import ansible_test

        source = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
        match = re.search(r"pip='([0-9.]+)'", source.read_text())
        if not match:
            sys.exit(f"cannot tell which pip version ansible-test bootstraps ({ex}); update {__file__}")
        return match.group(1)


def main() -> None:
    # Same expression as ansible_test/_util/target/setup/requirements.py.
    cache = Path("~/.ansible/test/cache").expanduser() / f"get_pip_{pip_version().replace('.', '_')}.py"
    wanted = SHIM.read_text()
    if cache.exists():
        current = cache.read_text(errors="replace")
        if MARKER not in current:
            print(f"ansible-test pip bootstrap: keeping existing {cache}")
            return
        if current == wanted:
            print(f"ansible-test pip bootstrap: {cache} is up to date")
            return
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(wanted)
    tmp.replace(cache)
    print(f"ansible-test pip bootstrap: wrote offline shim {cache}")


if __name__ == "__main__":
    main()
