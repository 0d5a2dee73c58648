"""Keep the benchmark machinery working: prefork only, one second, no speed asserted.

The real comparison (benchmarks/run.py without --no-venv) needs the peers'
virtualenv and ten minutes; this runs the same code paths against prefork and
the bare ceiling with the test interpreter, so a change that breaks the
harness, the apps, wrk parsing or the report fails here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import ROOT, parse_wrk

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")

WRK_OUTPUT = """\
Running 3s test @ http://127.0.0.1:59405/plaintext
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.99ms    2.08ms  15.32ms   68.81%
    Req/Sec     7.96k     2.03k   11.17k    53.33%
  Latency Distribution
     50%  623.00us
     75%    4.18ms
     90%    5.84ms
     99%    1.24s
  24094 requests in 3.05s, 1.79MB read
  Socket errors: connect 1, read 24083, write 2, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   7903.80
Transfer/sec:    602.05KB
""".replace("1.24s\n", "1.24s \n")  # wrk pads a one-letter unit to two characters


def test_parse_wrk_reads_every_figure() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests == 24094
    assert result.seconds == pytest.approx(3.05)
    assert result.rps == pytest.approx(7903.80)
    assert result.p50_ms == pytest.approx(0.623)
    assert result.p99_ms == pytest.approx(1240.0)
    assert (result.connect_errors, result.read_errors, result.write_errors) == (1, 24083, 2)
    assert result.timeouts == 3
    assert result.non_2xx == 7
    assert result.errors == 1 + 24083 + 2 + 3 + 7


def test_parse_wrk_rejects_output_without_summary() -> None:
    with pytest.raises(ValueError, match="no summary"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def _run(script: str, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--no-venv", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_run_measures_prefork_and_writes_the_report(tmp_path: Path) -> None:
    report, results_path = tmp_path / "benchmarks.md", tmp_path / "results.json"
    done = _run(
        "run.py",
        "--servers", "prefork,bare",
        "--scenarios", "plaintext,json",
        "--duration", "1",
        "--warmup", "0",
        "--rounds", "2",
        "--output", str(report),
        "--json", str(results_path),
        "--no-chart",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(results_path.read_text())
    assert results["rounds"] == 2
    servers = {s["key"]: s for s in results["servers"]}
    assert set(servers) == {"prefork-wsgi", "prefork-asgi", "bare"}
    for key in ("prefork-wsgi", "prefork-asgi"):
        server = servers[key]
        assert "error" not in server, server
        for scenario in ("plaintext", "json"):
            run = server["runs"][scenario]
            assert run["requests"] > 0, run
            assert run["non_2xx"] == 0, run
        assert len(server["memory_idle"]["worker_rss"]) == 2
        assert server["memory_load"]["master_rss"] > 0
        assert server["startup_s"] > 0
    assert set(servers["bare"]["runs"]) == {"plaintext"}  # the ceiling only answers GETs
    text = report.read_text()
    assert "### Plaintext, keep-alive — WSGI" in text
    assert "### JSON response — ASGI" in text
    assert "| **prefork** |" in text
    assert "bare uvloop (ceiling)" in text
    assert "prefork master RSS ≤ 20 MiB" in text


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
