# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/skip_policy.py: with CI=true a skip whose reason is not on the allowlist fails the pytest run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
SAMPLE = '''
import pytest

def test_runs():
    pass

def test_skips():
    pytest.skip({reason!r})
'''


@pytest.mark.parametrize("reason, ci, code", [
    ("needs a package nobody installed", "true", 1),
    ("needs a package nobody installed", "", 0),
    ("this machine has no ::1", "true", 0),
])
def test_ci_fails_on_a_skip_not_on_the_allowlist(tmp_path, reason, ci, code):
    (tmp_path / "test_sample.py").write_text(SAMPLE.format(reason=reason))
    environment = dict(os.environ, CI=ci, PYTHONPATH=str(TESTS))
    completed = subprocess.run([sys.executable, "-m", "pytest", "-p", "skip_policy", "-p", "no:cacheprovider",
                                "--rootdir", str(tmp_path), str(tmp_path)], capture_output=True, text=True,
                               env=environment, cwd=tmp_path, timeout=120, check=False)
    assert completed.returncode == code, completed.stdout
    assert ("not in tests/skip_policy.py ALLOWED_SKIPS" in completed.stdout) == (code == 1)
