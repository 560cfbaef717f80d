"""A test that needs a missing Debian package skips on a laptop and fails under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
from tests.system import needs, require

@needs(False, "no-such-package")
def test_needs_it():
    require(False, "no-such-package")
"""


def _run(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_a_missing_package_skips_outside_ci(tmp_path: Path) -> None:
    r = _run(tmp_path, "")
    assert r.returncode == 0 and "1 skipped" in r.stdout, r.stdout


def test_a_missing_package_fails_under_ci(tmp_path: Path) -> None:
    r = _run(tmp_path, "true")
    assert r.returncode == 1 and "no-such-package is not installed" in r.stdout, r.stdout
