"""`mypy --strict` over the application packages, as test_lint.py runs ruff: a type
error fails the suite. Settings (strict, the few per-module overrides and why) are in
pyproject.toml's [tool.mypy]."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_mypy_strict_is_clean() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "tinytrail", "streams", "collector", "api",
         "cli"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
