"""The C WebSocket load client (benchmarks/wsload.c) against a real prefork.

Built once per module into a temporary directory; every run is about a
second.  The wrong-echo tests keep its verification honest: a server that
alters messages must fail the run, never yield a rate.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.harness import BenchError
from benchmarks.wsload import ensure_wsload, parse_report, run_wsload
from tests.server import Server, run_server


@pytest.fixture(scope="module")
def wsload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_wsload(tmp_path_factory.mktemp("wsload") / "wsload")


@pytest.fixture(scope="module")
def tests_app() -> Iterator[Server]:
    """Pings every second: the client must answer them or be closed."""
    args = ("-w", "1", "--ws-ping-interval", "1", "--ws-ping-timeout", "1")
    with run_server("tests.apps.ws_app:app", *args) as srv:
        yield srv


@pytest.fixture(scope="module")
def bench_app() -> Iterator[Server]:
    with run_server("benchmarks.apps:asgi_websocket", "-w", "2") as srv:
        yield srv


def test_echo_round_trips_all_verified(wsload: Path, tests_app: Server) -> None:
    report = run_wsload(wsload, "echo", tests_app.port, 20, 1.0)
    assert report.messages > 0
    assert report.errors == 0
    assert 0 < report.p50_ms <= report.p99_ms
    assert report.client_cpu_s > 0


def test_pings_are_answered_so_the_server_keeps_the_connections(
    wsload: Path, tests_app: Server
) -> None:
    # Pings each second, closed after a second without a pong: 3.5 s sees pings answered.
    report = run_wsload(wsload, "echo", tests_app.port, 2, 3.5)
    assert report.errors == 0


def test_broadcast_deliveries_are_counted(wsload: Path, bench_app: Server) -> None:
    report = run_wsload(wsload, "broadcast", bench_app.port, 20, 1.0, "--settle", "0.2")
    assert report.messages > 0
    assert report.errors == 0


def test_a_wrong_echo_fails_the_run(wsload: Path, tests_app: Server) -> None:
    argv = [str(wsload), "echo", "--port", str(tests_app.port), "--path", "/wrong-echo"]
    done = subprocess.run(
        [*argv, "--connections", "3", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert parse_report(done.stdout).errors == 3
    assert "wrong echo" in done.stderr
    with pytest.raises(BenchError, match="wrong echo"):
        run_wsload(wsload, "echo", tests_app.port, 3, 1.0, "--path", "/wrong-echo")


def test_a_wrong_broadcast_delivery_fails_the_run(wsload: Path, tests_app: Server) -> None:
    with pytest.raises(BenchError, match="not a publisher's message"):
        run_wsload(wsload, "broadcast", tests_app.port, 4, 1.0, "--path", "/wrong-echo")


def test_a_refused_handshake_fails_the_run(wsload: Path, tests_app: Server) -> None:
    with pytest.raises(BenchError, match=r"handshake refused: HTTP/1\.1 403"):
        run_wsload(wsload, "echo", tests_app.port, 2, 1.0, "--path", "/refuse")


def test_bad_usage_exits_2(wsload: Path) -> None:
    done = subprocess.run(
        [str(wsload), "echo", "--port", "1", "--connections", "none"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--connections must be a number" in done.stderr
