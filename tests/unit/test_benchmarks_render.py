"""benchmarks/run.py's report, rendered from a synthetic results dict: no server, no wrk.

The figures are chosen so that every issue-16 goal lands on a known side of
its bar, on two Pythons, and the assertions read the verdicts back.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from benchmarks.harness import BenchError, find_python
from benchmarks.run import bars, merge_rounds, normalize, python_tables, render

MIB = 1024 * 1024


def _run(rps: float, p99_ms: float = 20.0, per_worker: list[int] | None = None) -> dict[str, Any]:
    run: dict[str, Any] = {
        "requests": int(rps * 3),
        "seconds": 3.0,
        "rps": rps,
        "p50_ms": 1.0,
        "p99_ms": p99_ms,
        "connect_errors": 0,
        "read_errors": 0,
        "write_errors": 0,
        "timeouts": 0,
        "non_2xx": 0,
    }
    if per_worker:
        run["per_worker"] = per_worker
    return run


def _server(
    key: str, name: str, interface: str, python: str, runs: dict[str, Any], worker_mib: float = 20
) -> dict[str, Any]:
    idle = {"master_rss": 15 * MIB, "worker_rss": [int(worker_mib * MIB)] * 2, "tree_rss": 0}
    return {
        "key": key,
        "name": name,
        "interface": interface,
        "python": python,
        "note": "",
        "command": f"{key} PORT",
        "runs": runs,
        "startup_s": 0.5,
        "memory_idle": idle,
        "memory_load": idle,
        "loadavg_before": 1.0,
        "loadavg_after": 1.5,
    }


def _servers(python: str, speed: float) -> list[dict[str, Any]]:
    """prefork at `speed` times its 3.11 figures; the peers the same on every Python."""
    shares = [52, 48]
    return [
        _server(
            "prefork-wsgi",
            "prefork",
            "wsgi",
            python,
            {
                "plaintext": _run(30000 * speed, 4.0, shares),
                "close": _run(9000 * speed, 9.0, shares),
                "flask": _run(6000 * speed, 12.0, shares),
            },
            worker_mib=22,
        ),
        _server(
            "granian-wsgi",
            "granian",
            "wsgi",
            python,
            {"plaintext": _run(15000), "close": _run(7500), "flask": _run(4000, 10.0)},
        ),
        _server(
            "gunicorn-gthread",
            "gunicorn gthread",
            "wsgi",
            python,
            {"plaintext": _run(3000), "close": _run(2000), "flask": _run(2000)},
        ),
        _server(
            "prefork-asgi",
            "prefork",
            "asgi",
            python,
            {
                "plaintext": _run(33000 * speed, 4.0, shares),
                "close": _run(8000 * speed, 9.0, shares),
                "fastapi": _run(5000 * speed, 9.0, shares),
            },
            worker_mib=24,
        ),
        _server(
            "uvicorn-asgi",
            "uvicorn",
            "asgi",
            python,
            {"plaintext": _run(16000), "close": _run(7000), "fastapi": _run(3000)},
        ),
        _server(
            "granian-asgi",
            "granian",
            "asgi",
            python,
            {"plaintext": _run(20000), "close": _run(8000), "fastapi": _run(4500)},
        ),
        _server(
            "bare",
            "bare uvloop",
            "raw",
            python,
            {"plaintext": _run(50000), "close": _run(12000)},
        ),
    ]


RESULTS: dict[str, Any] = {
    "date": "2026-12-02 21:00 UTC",
    "command": "python benchmarks/run.py --python 3.11,3.13",
    "machine": {
        "nproc": "2",
        "usable_cpus": "2",
        "cpu": "AMD EPYC",
        "memory": "23.5 GiB",
        "kernel": "6.18",
        "python": "3.11.7",
        "wrk": "wrk 4.1.0",
    },
    "pythons": {"3.11": "3.11.7", "3.13": "3.13.0"},
    "versions_by_python": {"3.11": {"prefork": "0.1.0"}, "3.13": {"prefork": "0.1.0"}},
    "duration": 3.0,
    "warmup": 1.0,
    "workers": 2,
    "scenarios": ["plaintext", "close", "fastapi", "flask"],
    "servers": _servers("3.11", 1.0) + _servers("3.13", 0.9),
    "notes": [],
    "rounds": 2,
}


def _bar_lines(results: dict[str, Any]) -> list[str]:
    return [line for line in bars(results) if line.startswith("- ")]


def test_every_goal_of_issue_16_is_stated_per_python_with_its_ratio() -> None:
    text = "\n".join(bars(RESULTS))
    first = text.split("## The bar — Python 3.13")[0]
    assert "Plaintext keep-alive, WSGI: prefork ≥ 1.5x granian — 2.00x — **met**" in first
    assert "Plaintext keep-alive, ASGI: prefork ≥ 2.0x uvicorn — 2.06x — **met**" in first
    assert "Plaintext keep-alive, ASGI: prefork ≥ 1.5x granian — 1.65x — **met**" in first
    assert "WSGI: prefork ≥ 0.6x the bare uvloop ceiling — 0.60x — **met**" in first
    assert "ASGI: prefork ≥ 0.6x the bare uvloop ceiling — 0.66x — **met**" in first
    assert (
        "Connection: close, WSGI: prefork ≥ 1.3x the best peer (granian) — 1.20x — **not met**"
        in first
    )
    assert "Connection: close, ASGI: prefork ≥ 1.3x the best peer (granian) — 1.00x" in first
    assert "FastAPI JSON: prefork ≥ 1.2x the best of uvicorn and granian (granian) — 1.11x" in first
    assert "gunicorn gthread (granian) — 1.50x — **met**" in first
    assert "worse in: flask WSGI (12.00 ms vs 10.00 ms)" in first  # p99 against the best peer
    assert "Idle WSGI worker within 3 MiB of a bare uvloop process" in first
    assert "22.0 vs 20.0 MiB (+2.0) — **met**" in first
    assert "24.0 vs 20.0 MiB (+4.0) — **not met**" in first
    # The same goals against the peers of 3.13, where prefork runs at 0.9x.
    second = text.split("## The bar — Python 3.13")[1].split("## The bar — across")[0]
    assert "Plaintext keep-alive, WSGI: prefork ≥ 1.5x granian — 1.80x — **met**" in second
    assert "gunicorn gthread (granian) — 1.35x — **not met**" in second


def test_the_versions_bar_compares_prefork_on_each_python_with_the_first() -> None:
    text = "\n".join(bars(RESULTS))
    assert (
        "- prefork WSGI on Python 3.13 no slower than on 3.11 — plaintext 0.90x, close 0.90x, "
        "flask 0.90x — **not met**"
    ) in text
    faster = copy.deepcopy(RESULTS)
    faster["servers"] = _servers("3.11", 1.0) + _servers("3.13", 1.1)
    assert "fastapi 1.10x — **met**" in "\n".join(bars(faster))


def test_python_tables_put_the_versions_side_by_side() -> None:
    text = "\n".join(python_tables(RESULTS))
    assert "| plaintext WSGI | 2.00x (granian) | 1.80x (granian) |" in text
    assert "| plaintext WSGI | **prefork** | 30,000 | 27,000 | 0.90x |" in text
    assert "| fastapi ASGI | uvicorn | 3,000 | 3,000 | 1.00x |" in text


def test_report_shows_python_and_each_workers_share_in_every_table() -> None:
    text = render(copy.deepcopy(RESULTS), "")
    assert "### Flask JSON endpoint — WSGI" in text
    assert "app `benchmarks.frameworks:flask_app`" in text
    assert "| **prefork** | 3.13 | 5,400 | 1.00 ms | 12.00 ms | 0 | 52% / 48% | 1.00x |" in text
    assert "| granian | 3.13 | 4,000 |" in text
    assert "- Python 3.13.0: prefork 0.1.0" in text
    assert "## Python 3.11 vs 3.13" in text


def test_results_from_before_multi_python_runs_render_as_one_python() -> None:
    old = copy.deepcopy(RESULTS)
    del old["pythons"], old["versions_by_python"]
    old["versions"] = {"prefork": "0.1.0"}
    old["servers"] = _servers("3.11", 1.0)
    for server in old["servers"]:
        del server["python"]
    normalize(old)
    text = render(old, "")
    assert "## The bar — Python 3.11" in text
    assert "## The bar — across" not in text
    assert "## Python 3.11 vs" not in text
    assert all(line.count("**met**") + line.count("not met") <= 1 for line in _bar_lines(old))


@pytest.mark.parametrize("wanted", ["banana", "3", "/nonexistent/python3"])
def test_find_python_rejects_what_is_neither_a_version_nor_an_interpreter(wanted: str) -> None:
    with pytest.raises(BenchError):
        find_python(wanted)


def test_rounds_merge_to_each_scenarios_fastest_and_the_quickest_startup() -> None:
    def round_(rps: float, startup: float, load: float, **extra: Any) -> dict[str, Any]:
        runs = {"plaintext": {"rps": rps}, "json": {"rps": 1000 - rps}, **extra}
        return {"key": "p", "startup_s": startup, "loadavg_before": load,
                "loadavg_after": load, "runs": runs}  # fmt: skip

    first = round_(100, 0.5, 1.0)
    second = round_(300, 0.7, 4.0, close={"error": "wrk failed"})
    third = {"key": "p", "error": "exited", "runs": {"close": {"rps": 50.0}}}
    merged = merge_rounds([first, second, third])
    assert merged["runs"]["plaintext"] == {"rps": 300}
    assert merged["runs"]["json"] == {"rps": 900}
    assert merged["runs"]["close"] == {"rps": 50.0}  # a measured round beats an error
    assert merged["startup_s"] == 0.5
    assert merged["loadavg_before"] == merged["loadavg_after"] == 4.0  # the busiest round
    assert "error" not in merged  # the last round that completed gives the rest


def test_idle_workers_uss_is_shown_next_to_their_rss_when_sampled() -> None:
    results = copy.deepcopy(RESULTS)
    assert "| 20.0 / 20.0 | - |" in render(copy.deepcopy(results), "")  # results before USS
    for server in results["servers"]:
        if server["key"] in ("prefork-wsgi", "bare"):
            uss = 12 if server["key"] == "bare" else 14
            server["memory_idle"] = {**server["memory_idle"], "worker_uss": [uss * MIB] * 2}
    text = render(results, "")
    assert "22.0 vs 20.0 MiB (+2.0); USS 14.0 vs 12.0 MiB — **met**" in text
    assert "| 22.0 / 22.0 | 14.0 / 14.0 |" in text
