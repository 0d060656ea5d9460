# SPDX-License-Identifier: GPL-3.0-or-later
"""Every platform a role declares has its row in the README's install table, saying what it needs."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INSTALL = (REPO / "README.md").read_text().split("\n## Install\n", 1)[1].split("\n### ", 1)[0]
ROWS = [line for line in INSTALL.splitlines()
        if line.startswith("| ") and ("Debian" in line or "Ubuntu" in line or "EL " in line)]
DECLARED = sorted({(platform["name"], str(version))
                   for meta in REPO.glob("roles/*/meta/main.yml")
                   for platform in yaml.safe_load(meta.read_text())["galaxy_info"]["platforms"]
                   for version in platform["versions"]})


@pytest.mark.parametrize(("name", "version"), DECLARED)
def test_declared_platform_has_its_needs_in_the_readme(name, version):
    assert version != "all", "declare the versions whose needs the README states"
    label = f"{name} {version}" if name == "EL" else name
    rows = [row for row in ROWS if label in row.split("|")[1] and (name == "EL" or version in row.split("|")[1])]
    assert len(rows) == 1, f"README.md Install: no row for {name} {version}"
    assert rows[0].split("|")[3].strip(), f"README.md Install: {name} {version} does not say what it needs"
