# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/tools/check_tarball.py on real tarballs: what users need passes, development files fail."""
from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import check_tarball

SHIPPED = ("FILES.json", "MANIFEST.json", "README.md", *check_tarball.REQUIRED, "plugins/modules/mail_tls_chain.py")


def _tarball(tmp_path: Path, names: tuple[str, ...], size: int = 10) -> str:
    path = tmp_path / "mailops-tls-1.0.0.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            member = tarfile.TarInfo(name)
            member.size = size
            archive.addfile(member, io.BytesIO(b"x" * size))
    return str(path)


def test_what_users_need_passes(tmp_path, capsys):
    assert check_tarball.main(_tarball(tmp_path, SHIPPED)) == 0
    assert "no development files" in capsys.readouterr().out


@pytest.mark.parametrize("extra", [
    "Makefile", "pyproject.toml", ".ansible-lint", "tests/lab/install.sh", "tests/demo/demo.sh",
    ".venv-oldest/bin/python", ".pytest_cache/README.md", "playbooks/demo.yml",
    "plugins/module_utils/__pycache__/load.cpython-311.pyc", "changelogs/fragments/audit.yml",
])
def test_a_development_file_fails(tmp_path, capsys, extra):
    assert check_tarball.main(_tarball(tmp_path, (*SHIPPED, extra))) == 1
    assert f"{extra}: development file" in capsys.readouterr().err


def test_a_missing_changelog_fails(tmp_path, capsys):
    names = tuple(name for name in SHIPPED if name != "CHANGELOG.rst")
    assert check_tarball.main(_tarball(tmp_path, names)) == 1
    assert "CHANGELOG.rst: missing" in capsys.readouterr().err


def test_an_oversized_tarball_fails(tmp_path, capsys):
    assert check_tarball.main(_tarball(tmp_path, SHIPPED, size=check_tarball.MAX_UNPACKED_BYTES // 4)) == 1
    assert "look for build output" in capsys.readouterr().err
