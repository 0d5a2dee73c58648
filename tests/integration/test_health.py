"""Worker health through real servers: memory limits, request timeouts, restarts explained."""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.server import ROOT, Serve, prefork_command, run_server, start_server, stop_server

WSGI = "tests.apps.health_app:wsgi"
ASGI = "tests.apps.health_app:asgi"
MIB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples every worker's RSS from /proc/PID/statm every 5 ms; keeps the peak."""

    def __init__(self, master: int) -> None:
        self.master = psutil.Process(master)
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for child in self.master.children():
                try:
                    with open(f"/proc/{child.pid}/statm", "rb") as fh:
                        rss = int(fh.read().split()[1]) * PAGE
                except (OSError, IndexError, ValueError):
                    continue  # exited meanwhile
                self.peak = max(self.peak, rss)
                self.samples += 1
            self._stop.wait(0.005)


def status_json(socket: Path) -> dict[str, Any]:
    result = subprocess.run(
        [*prefork_command("status", "--json", "--socket", str(socket))],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    status: dict[str, Any] = json.loads(result.stdout)
    return status


def wait_for_text(path: Path, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while path.read_text() != text:
        assert time.monotonic() < deadline, f"{path} holds {path.read_text()!r}, not {text!r}"
        time.sleep(0.05)


def pid_of(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return int(response.text.strip().removeprefix("pid="))


# -- --max-memory ------------------------------------------------------------------


def test_a_leaking_worker_stays_within_twice_the_limit(tmp_path: Path) -> None:
    control = tmp_path / "ctl.sock"
    limit = 100 * MIB
    with (
        run_server(
            WSGI, "-w", "2", "--max-memory", "100M", "--control-socket", str(control)
        ) as server,
        PeakRss(server.pid) as rss,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        pids: collections.Counter[int] = collections.Counter()
        deadline = time.monotonic() + 12
        sent = 0
        while time.monotonic() < deadline:  # one keep-alive client, about 100 requests/s
            pids[pid_of(client.get("/leak"))] += 1
            sent += 1
            time.sleep(0.01)
        assert len(pids) >= 3, f"no worker was replaced: {pids}"
        assert rss.samples > 100
        assert rss.peak <= 2 * limit, f"peak RSS {rss.peak / MIB:.0f} MiB"
        server.wait_for_log(r"Worker \d \(pid \d+\): rss [\d.]+ MiB > --max-memory 100\.0 MiB")
        status = status_json(control)
        assert status["memory_metric"] == "rss"
        reasons = collections.Counter[str]()
        for row in [*status["workers"], *status["idle_slots"]]:
            reasons.update(row["reasons"])
        assert reasons["memory"] >= 1
        assert set(reasons) <= {"memory", "crash"}  # a slot may be in backoff: no crash here
        assert reasons["crash"] == 0
    print(f"{sent} requests, peak RSS {rss.peak / MIB:.0f} MiB, {len(pids)} workers")


def test_the_hard_memory_limit_ends_a_worker_after_its_in_flight_requests(tmp_path: Path) -> None:
    mark = tmp_path / "in-flight"
    with (
        run_server(WSGI, "-w", "1", "--threads", "4", "--max-memory", "100M") as server,
        concurrent.futures.ThreadPoolExecutor(2) as pool,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        (first,) = server.worker_pids()
        slow = pool.submit(client.get, "/sleep?3", headers={"X-Mark": str(mark)})
        deadline = time.monotonic() + 20
        while not mark.exists():
            assert time.monotonic() < deadline, "the slow request never started"
            time.sleep(0.01)
        # 200 MiB at once: past 1.5 x the limit, with no replacement booting yet.
        assert pid_of(client.get("/grow?200")) == first
        server.wait_for_log(
            rf"Worker 0 \(pid {first}\): rss [\d.]+ MiB > 1\.5 x --max-memory; "
            "ending it after its in-flight requests"
        )
        assert pid_of(slow.result(timeout=30)) == first  # the in-flight request finished
        server.wait_for_log(rf"Worker 0 \(pid {first}\) exited")
        assert pid_of(client.get("/")) != first


# -- --request-timeout -----------------------------------------------------------


@pytest.fixture
def cancelled(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "cancelled"
    path.touch()
    yield path


def test_asgi_request_timeout_cancels_and_answers_504(cancelled: Path, serve: Serve) -> None:
    env = {"HEALTH_CANCELLED": str(cancelled)}
    server = serve(ASGI, "--request-timeout", "1", env=env)
    started = time.monotonic()
    response = httpx.get(server.url + "/sleep?10", timeout=30)
    assert response.status_code == 504
    assert response.headers["connection"] == "close"
    assert 1 <= time.monotonic() - started < 5
    server.wait_for_log(
        r"Request timed out after \d+s \(--request-timeout\): GET /sleep\?10; answered 504"
    )
    wait_for_text(cancelled, "/sleep\n")  # the task is cancelled after the answer
    # Once the response has started, the connection is closed instead.
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(server.url + "/stall", timeout=30)
    server.wait_for_log(r"GET /stall; the response had started: connection closed")
    wait_for_text(cancelled, "/sleep\n/stall\n")
    assert httpx.get(server.url + "/sleep?0", timeout=30).status_code == 200


def test_threaded_wsgi_request_timeout_answers_504_and_drops_the_late_result(serve: Serve) -> None:
    server = serve(WSGI, "--threads", "4", "--request-timeout", "1")
    response = httpx.get(server.url + "/sleep?3", timeout=30)
    assert response.status_code == 504
    server.wait_for_log(r"GET /sleep\?3; answered 504")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(5):  # the late thread finishing disturbs nothing
            assert client.get("/").status_code == 200
        time.sleep(2.5)  # the timed-out thread returns meanwhile
        assert client.get("/").status_code == 200
    assert "Traceback" not in server.log


def test_inline_wsgi_streaming_is_progress_not_a_hang(serve: Serve) -> None:
    # One chunk a second for 6 s under --timeout 3: the heartbeat keeps going.
    server = serve(WSGI, "--timeout", "3")
    response = httpx.get(server.url + "/stream?6", timeout=30)
    assert response.status_code == 200
    assert response.text.count("chunk") == 6
    assert "timed out" not in server.log


def test_inline_wsgi_request_timeout_closes_a_stream_and_the_watchdog_covers_a_call(
    serve: Serve,
) -> None:
    server = serve(WSGI, "--request-timeout", "2", "--timeout", "3")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(server.url + "/stream?10", timeout=30)
    server.wait_for_log(r"GET /stream\?10; the response had started: connection closed")
    # A call that blocks the loop cannot be interrupted: the watchdog ends it.
    (worker,) = server.worker_pids()
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url + "/sleep?30", timeout=30)
    server.wait_for_log(
        rf"Worker 0 \(pid {worker}\) was killed by SIGABRT "
        r"\(by prefork: no heartbeat for 3s\)"
    )


# -- --max-requests ----------------------------------------------------------------


def test_max_requests_is_exact_and_the_jitter_spreads_it(tmp_path: Path) -> None:
    control = tmp_path / "ctl.sock"
    args = ("-w", "2", "--max-requests", "20", "--max-requests-jitter", "20")
    with (
        run_server(WSGI, *args, "--control-socket", str(control)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        served: collections.Counter[int] = collections.Counter()
        for _ in range(300):
            served[pid_of(client.get("/"))] += 1
        finished = [n for pid, n in served.items() if not psutil.pid_exists(pid)]
        assert len(finished) >= 3
        assert max(served.values()) <= 40, served
        assert min(finished) >= 20, served
        assert len(set(finished)) > 1, f"every worker drew the same limit: {served}"
        status = status_json(control)
        rows = [*status["workers"], *status["idle_slots"]]
        assert sum(row["reasons"].get("max-requests", 0) for row in rows) >= len(finished)
        last = [row["last_restart"] for row in rows if row["last_restart"]]
        assert last
        assert {entry["reason"] for entry in last} == {"max-requests"}


# -- crashes ---------------------------------------------------------------------


def test_a_segfaulting_request_never_leaves_zero_workers() -> None:
    with (
        run_server(WSGI, "-w", "2") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        started = time.monotonic()
        for _ in range(8):
            with pytest.raises(httpx.HTTPError):
                httpx.get(server.url + "/segv", timeout=30)
            assert client.get("/", headers={"Connection": "close"}).status_code == 200
        assert time.monotonic() - started < 60
        deadline = time.monotonic() + 20  # the last death may be logged just now
        while server.log.count("was killed by SIGSEGV") < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.log.count("was killed by SIGSEGV") == 8


def test_a_crash_loop_before_ready_exits_3(tmp_path: Path) -> None:
    flag = tmp_path / "crash"
    flag.touch()
    server = start_server(WSGI, "-w", "2", env={"HEALTH_CRASH_FLAG": str(flag)}, wait_ready=False)
    try:
        assert server.wait(60) == 3
    finally:
        stop_server(server)
    assert "Worker slot 0 is errored: 5 boot failures in a row" in server.log
    assert "Worker slot 1 is errored" in server.log
    assert "Shutting down: every worker slot is errored (before any worker was ready" in server.log


def test_a_crash_loop_after_ready_marks_the_slot_errored_then_exits_1(tmp_path: Path) -> None:
    flag = tmp_path / "crash"
    control = tmp_path / "ctl.sock"
    env = {"HEALTH_CRASH_FLAG": str(flag)}
    server = start_server(WSGI, "--control-socket", str(control), env=env)
    try:
        (worker,) = server.worker_pids()
        flag.touch()  # from now on every new worker dies at import
        os.kill(worker, signal.SIGKILL)
        server.wait_for_log(r"Respawning worker 0 in 0\.5s \(1 boot failures in a row\)")
        server.wait_for_log(r"Respawning worker 0 in 1\.0s \(2 boot failures in a row\)")
        status = status_json(control)
        # Backing off (an idle slot) or booting again (a worker), it is counted.
        rows: list[dict[str, Any]] = [*status["workers"], *status["idle_slots"]]
        (slot,) = rows
        assert slot["slot"] == 0
        assert slot["reasons"]["crash"] >= 2
        server.wait_for_log(r"Worker slot 0 is errored", timeout=60)
        assert server.wait(30) == 1
    finally:
        stop_server(server)
    assert "every worker slot is errored (after serving; exit status 1)" in server.log


def test_a_stopped_worker_gets_a_traceback_and_the_kill_is_explained(
    tmp_path: Path, serve: Serve
) -> None:
    control = tmp_path / "ctl.sock"
    server = serve(WSGI, "--timeout", "2", "--control-socket", str(control))
    (worker,) = server.worker_pids()
    os.kill(worker, signal.SIGSTOP)
    server.wait_for_log(r"Fatal Python error: Aborted")
    server.wait_for_log(
        rf"Worker 0 \(pid {worker}\) was killed by SIGABRT \(by prefork: no heartbeat for 2s\)"
    )
    server.wait_for_log(r"Booting worker 0")
    assert "Respawning" not in server.log  # a watchdog kill is not a boot failure
    status = status_json(control)
    (row,) = status["workers"]
    assert row["reasons"] == {"timeout": 1}
    assert row["last_restart"]["reason"] == "timeout"


# -- failures after dropping privileges -----------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="--user needs root")
def test_an_access_log_the_user_cannot_write_is_refused_before_forking(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    log = private / "access.log"
    server = start_server(WSGI, "--user", "nobody", "--access-logfile", str(log), wait_ready=False)
    try:
        assert server.wait(30) == 2
    finally:
        stop_server(server)
    assert f"--access-logfile {log}: --user nobody cannot write its directory {private}" in (
        server.log
    )
    assert "Booting worker" not in server.log


def test_an_access_log_a_worker_cannot_open_fails_the_boot_with_status_3(tmp_path: Path) -> None:
    # A missing directory is refused before forking (exit 2, test_startup_checks.py); a
    # symlink into one looks creatable from outside, and open() fails in the worker.
    log = tmp_path / "access.log"
    log.symlink_to(tmp_path / "missing" / "access.log")
    server = start_server(WSGI, "--access-logfile", str(log), wait_ready=False)
    try:
        assert server.wait(30) == 3
    finally:
        stop_server(server)
    server.wait_for_log(r"failed to boot: cannot start serving: .*No such file or directory")


def test_reloads_are_counted_and_a_failed_one_restarts_nothing(
    tmp_path: Path, serve: Serve
) -> None:
    app = tmp_path / "reloaded_app.py"
    app.write_text(Path(ROOT / "tests" / "apps" / "proc_app.py").read_text())
    control = tmp_path / "ctl.sock"
    args = ("--app-dir", str(tmp_path), "--control-socket", str(control))
    server = serve("reloaded_app:wsgi", *args)
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"Reload complete: generation 2\b")
    app.write_text("raise RuntimeError('deploy went wrong')\n")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"Reload failed: cannot import")
    (row,) = status_json(control)["workers"]
    assert row["generation"] == 2
    assert row["reasons"] == {"reload": 1}
    assert row["last_restart"]["reason"] == "reload"
