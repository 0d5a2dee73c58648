"""Both hot paths through real processes: the compiled build, and its sources.

The suite runs what the README's install built: the compiled hot path
(tests/unit/test_compiled.py checks it is).  Here a real worker is seen to
run it, and with PREFORK_PURE_PYTHON=1 the unit tests run again on the
sources and a server forced to pure Python says so and serves.
"""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys

import httpx
import pytest

from prefork import compiled
from tests.server import ROOT, run_server

FORCED_PURE = os.environ.get(compiled.PURE_PYTHON_VARIABLE, "") not in ("", "0")


def pure_env() -> dict[str, str]:
    return {**os.environ, "PREFORK_PURE_PYTHON": "1", "PYTHONPATH": str(ROOT)}


def test_the_unit_tests_pass_on_the_sources() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "tests/unit"],
        cwd=ROOT,
        env=pure_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]


def test_a_server_forced_to_pure_python_says_so_and_serves() -> None:
    with run_server("tests.apps.hot_path:application", env={"PREFORK_PURE_PYTHON": "1"}) as server:
        server.wait_for_log(r"Hot path: pure Python \(PREFORK_PURE_PYTHON is set\)")
        response = httpx.get(server.url + "/", timeout=10)
    assert response.status_code == 200
    assert response.text == "pure Python (PREFORK_PURE_PYTHON is set)\nconnection.py\n"


@pytest.mark.skipif(FORCED_PURE, reason="PREFORK_PURE_PYTHON is set for the whole run")
def test_a_worker_runs_the_compiled_hot_path() -> None:
    with run_server("tests.apps.hot_path:application") as server:
        server.wait_for_log(r"Hot path: compiled \(mypyc\)")
        response = httpx.get(server.url + "/", timeout=10)
    mode, connection = response.text.splitlines()
    assert mode == compiled.COMPILED
    assert connection.endswith(importlib.machinery.EXTENSION_SUFFIXES[0])
