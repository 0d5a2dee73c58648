"""Keep the benchmark machinery working: prefork only, one second, no speed asserted.

The real comparison (benchmarks/run.py without --no-venv) needs the peers'
virtualenv and ten minutes; this runs the same code paths against prefork and
the bare ceiling with the test interpreter, so a change that breaks the
harness, the apps or the report fails here.  Reading wrk's output is tested
without wrk in tests/unit/test_benchmarks_parse.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from unittest.mock import ANY

import pytest

from benchmarks.harness import ROOT

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def _run(
    script: str, *args: str, timeout: float = 150, no_venv: bool = True
) -> subprocess.CompletedProcess[str]:
    venv = ["--no-venv"] if no_venv else []
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *venv, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@needs_wrk
def test_run_measures_prefork_and_writes_the_report(tmp_path: Path) -> None:
    report, results_path = tmp_path / "benchmarks.md", tmp_path / "results.json"
    done = _run(
        "run.py",
        "--servers", "prefork,bare",
        "--scenarios", "plaintext,fastapi,flask",
        "--duration", "1",
        "--warmup", "0",
        "--rounds", "1",  # merging rounds: tests/unit/test_benchmarks_render.py
        "--output", str(report),
        "--json", str(results_path),
        "--no-chart",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(results_path.read_text())
    assert results["rounds"] == 1
    servers = {s["key"]: s for s in results["servers"]}
    assert set(servers) == {"prefork-wsgi", "prefork-asgi", "bare"}
    assert results["pythons"] == {f"{sys.version_info[0]}.{sys.version_info[1]}": ANY}
    for key, framework in (("prefork-wsgi", "flask"), ("prefork-asgi", "fastapi")):
        server = servers[key]
        assert "error" not in server, server
        assert set(server["runs"]) == {"plaintext", framework}
        for scenario in ("plaintext", framework):
            run = server["runs"][scenario]
            assert run["requests"] > 0, run
            assert run["non_2xx"] == 0, run
            assert len(run["per_worker"]) == 2, run
            assert sum(run["per_worker"]) >= run["requests"], run
        assert len(server["memory_idle"]["worker_rss"]) == 2
        assert server["memory_load"]["master_rss"] > 0
        assert server["startup_s"] > 0
    assert set(servers["bare"]["runs"]) == {"plaintext"}  # the ceiling only answers GETs
    text = report.read_text()
    assert "### Plaintext, keep-alive — WSGI" in text
    assert "### FastAPI JSON endpoint — ASGI" in text
    assert "### Flask JSON endpoint — WSGI" in text
    assert "- FastAPI JSON: prefork ≥ 1.2x" in text
    assert "| **prefork** |" in text
    assert re.search(r"\| \d+% / \d+% \|", text), text  # each worker's part of the requests
    assert "bare uvloop (ceiling)" in text
    assert "prefork master RSS ≤ 20 MiB" in text


@needs_wrk
def test_reload_benchmark_sees_workers_replaced(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nkept\n")
    done = _run(
        "reload.py",
        "--servers", "prefork-wsgi",
        "--duration", "4",
        "--at", "1",
        "--output", str(report),
        "--json", str(tmp_path / "reload.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = json.loads((tmp_path / "reload.json").read_text())["servers"]
    assert "error" not in row, row
    assert row["hups_sent_at_s"] and row["requests"] > 0
    assert row["workers_seen"] >= 4, row  # both original workers were replaced
    assert row["serving_after"] and row["master_alive"]
    text = report.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert "## Reload under load" in text
    assert text.count("<!-- reload-benchmark:begin -->") == 1


# | server | process | RSS | USS | PSS |
IDLE_ROW = re.compile(
    r"^\| (\S+) \| (master|worker \d) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", re.MULTILINE
)


def test_idle_memory_samples_every_process_of_prefork_and_bare() -> None:
    done = _run("idle_memory.py", "--servers", "prefork-wsgi,bare", no_venv=False, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = IDLE_ROW.findall(done.stdout)
    assert [(server, role) for server, role, *_ in rows] == [
        (server, role)
        for server in ("prefork-wsgi", "bare")
        for role in ("master", "worker 0", "worker 1")
    ], done.stdout
    for *_, rss, uss, pss in rows:
        assert 0 < float(uss) <= float(pss) <= float(rss), done.stdout
