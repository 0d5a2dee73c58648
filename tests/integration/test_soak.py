"""A reduced run of benchmarks/soak.py: slowloris must not starve a normal client."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.server import ROOT


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_slowloris_and_idle_connections() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "soak.py"),
            "--slow",
            "200",
            "--idle",
            "1000",
            "--duration",
            "10",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=ROOT,
        check=False,
    )
    assert completed.stdout.strip(), completed.stderr[-2000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    slow, idle = report["slow"], report["idle"]
    assert report["worker_survived"], report
    assert slow["requests"] >= 100, slow
    assert slow["success_rate"] >= 0.99, slow
    assert idle["opened"] >= 990, idle
    assert idle["sample_reused_ok"] == idle["sample_size"], idle
