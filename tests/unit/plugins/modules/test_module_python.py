# SPDX-License-Identifier: GPL-3.0-or-later
"""The module tests run on the managed host's Python they name (MAILOPS_MODULE_PYTHON), not on the controller's."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ansible_adhoc import ANSIBLE_BIN, MODULE_PYTHON, run_task

pytestmark = pytest.mark.skipif(not ANSIBLE_BIN.exists(), reason="ansible-core is not installed in this interpreter's "
                                "environment (make unit installs it; make unit-oldest tests the library only)")


def test_modules_run_on_the_python_the_tests_name(tmp_path):
    """setup reports the Python the module ran on; MODULE_PYTHON run directly must name the same version (a
    chrooted Debian 13 Python says 3.13, the controller's virtualenv something else)."""
    expected = subprocess.run([MODULE_PYTHON, "-c", "import sys; print(sys.version.split()[0])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    result = run_task(tmp_path, "ansible.builtin.setup", {"gather_subset": ["!all", "!min", "python"]})
    version = result["ansible_facts"]["ansible_python"]["version"]
    assert f"{version['major']}.{version['minor']}.{version['micro']}" == expected
