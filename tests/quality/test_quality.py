"""The tree stays lint-clean, formatted and type-checked (mypy --strict).

These run in the test suite so CI enforces them with the same command as
everything else.  They sit outside the quick loop (tests/unit): a cold mypy
run alone takes 10 s on an idle 2-core machine and several times that on a
busy one.
"""

from __future__ import annotations

import subprocess
import sys

from tests.server import ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_ruff_lint() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
