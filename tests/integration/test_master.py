"""The master with real processes and real signals: workers, respawn, stop, failures."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.server import Serve, Server, run_server, start_server, stop_server

WSGI = "tests.apps.proc_app:wsgi"
ASGI = "tests.apps.proc_app:asgi"


def served_pid(url: str) -> int:
    """One request on a new connection; the pid of the worker that answered."""
    response = httpx.get(url + "/", timeout=10, headers={"Connection": "close"})
    assert response.status_code == 200
    return int(response.text.strip().removeprefix("pid="))


def pids_serving(server: Server, want: set[int], attempts: int = 600) -> set[int]:
    """Send requests (8 at a time) until every pid in `want` has answered."""
    seen: set[int] = set()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for _ in range(attempts // 8):
            seen.update(pool.map(served_pid, [server.url] * 8))
            if want <= seen:
                break
    return seen


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def wait_for_file(path: Path, timeout: float = 10.0) -> None:
    wait_until(path.exists, timeout, f"{path} to appear")


def test_banner_and_three_workers_all_serve(serve: Serve) -> None:
    server = serve(WSGI, "-w", "3")
    pids = server.worker_pids()
    assert len(pids) == 3
    assert pids_serving(server, pids) >= pids
    log = server.log
    assert "Starting prefork " in log
    assert "Workers: 3 (configured)" in log
    assert len(re.findall(r"Booting worker \d \(pid: \d+\)", log)) == 3
    assert f"Application: {WSGI} (wsgi, detected)" in log
    titles = {psutil.Process(pid).cmdline()[0] for pid in pids}
    assert titles <= {"prefork: worker 0", "prefork: worker 1", "prefork: worker 2"}
    assert psutil.Process(server.pid).cmdline()[0] == "prefork: master"
    # The master blocks its signals only around fork(); each worker, its
    # handlers in place, is back to the master's mask and blocks nothing more.
    assert {blocked_signals(pid) for pid in pids} == {blocked_signals(server.pid)}


def blocked_signals(pid: int) -> str:
    """The SigBlk mask of `pid`'s main thread, as /proc shows it."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^SigBlk:\s*(\w+)$", status, re.MULTILINE)
    assert match is not None, status
    return match[1]


def test_asgi_banner_says_asgi(serve: Serve) -> None:
    server = serve(ASGI, "--name", "api")
    assert f"Application: {ASGI} (asgi, detected)" in server.log
    assert psutil.Process(server.pid).cmdline()[0] == "prefork: master [api]"
    assert served_pid(server.url) in server.worker_pids()


def test_killed_worker_is_replaced_and_the_replacement_serves(serve: Serve) -> None:
    server = serve(WSGI, "-w", "1")
    (victim,) = server.worker_pids()
    start = len(server.lines)
    os.kill(victim, signal.SIGKILL)
    server.wait_for_log(
        rf"Worker 0 \(pid {victim}\) was killed by SIGKILL \(not by prefork; out of memory\?\)",
        start=start,
    )
    booted = server.wait_for_log(r"Booting worker 0 \(pid: (\d+)\)", start=start)
    # The request waits in the shared listener's backlog while the new worker boots.
    assert served_pid(server.url) == int(booted[1]) != victim


def test_sigterm_lets_an_in_flight_request_finish(tmp_path: Path, serve: Serve) -> None:
    mark = tmp_path / "started"
    server = serve(WSGI, "-w", "1", "--graceful-timeout", "10")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(httpx.get, f"{server.url}/slow?{mark}", timeout=15)
        wait_for_file(mark)
        server.signal(signal.SIGTERM)
        response = future.result(timeout=15)
    assert response.status_code == 200
    assert server.wait(15) == 0
    server.wait_for_log(r"Shutting down: master \(exit status 0\)")


def test_sigquit_stops_at_once(serve: Serve) -> None:
    server = serve(WSGI, "-w", "2")
    workers = [psutil.Process(pid) for pid in server.worker_pids()]
    server.signal(signal.SIGQUIT)
    assert server.wait(10) == 0
    _, alive = psutil.wait_procs(workers, timeout=2)
    assert alive == []


def test_import_error_exits_4_with_one_line() -> None:
    server = start_server("nosuchmodule:app", "-w", "2", wait_ready=False)
    try:
        assert server.wait(30) == 4
    finally:
        stop_server(server)
    server.wait_for_log(r"cannot import 'nosuchmodule:app': No module named 'nosuchmodule'$")
    assert "Traceback" not in server.log
    assert "Ready:" not in server.log


def test_lifespan_startup_failure_exits_3() -> None:
    server = start_server("tests.apps.proc_app:asgi_startup_fails", wait_ready=False)
    try:
        assert server.wait(30) == 3
    finally:
        stop_server(server)
    server.wait_for_log(r"failed to boot: .*database unreachable")
    assert "Respawning" not in server.log


def test_workers_die_with_the_master(serve: Serve) -> None:
    server = serve(WSGI, "-w", "3")
    workers = [psutil.Process(pid) for pid in server.worker_pids()]
    assert len(workers) == 3
    server.signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(workers, timeout=2)
    assert alive == []


def test_pid_file_is_written_and_removed(tmp_path: Path) -> None:
    pidfile = tmp_path / "prefork.pid"
    with run_server(WSGI, "--pid", str(pidfile)) as server:
        assert pidfile.read_text().strip() == str(server.pid)
    assert server.proc.returncode == 0
    assert not pidfile.exists()


def test_ttin_and_ttou_change_the_worker_count(serve: Serve) -> None:
    server = serve(WSGI, "-w", "2")
    server.signal(signal.SIGTTIN)
    wait_until(lambda: len(server.worker_pids()) == 3, 20, "3 workers")
    server.wait_for_log(r"Scaling: 2 -> 3 workers")
    before = server.worker_pids()
    assert pids_serving(server, before) >= before
    start = len(server.lines)
    # One at a time: the kernel merges a signal sent again while still pending.
    server.signal(signal.SIGTTOU)
    server.wait_for_log(r"Scaling: 3 -> 2 workers", start=start)
    server.signal(signal.SIGTTOU)
    server.wait_for_log(r"Scaling: 2 -> 1 workers", start=start)
    wait_until(lambda: len(server.worker_pids()) == 1, 20, "1 worker")
    assert served_pid(server.url) in server.worker_pids()
    # Never below one.
    server.signal(signal.SIGTTOU)
    server.wait_for_log(r"Cannot scale below 1 worker", start=start)
    assert len(server.worker_pids()) == 1


def test_silent_worker_is_aborted_with_a_traceback_and_replaced(serve: Serve) -> None:
    server = serve(WSGI, "-w", "1", "--timeout", "2")
    (stuck,) = server.worker_pids()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        hang = pool.submit(httpx.get, server.url + "/hang", timeout=30)
        server.wait_for_log(
            rf"Worker 0 \(pid {stuck}\) timed out \(no heartbeat for 2s\); sending SIGABRT"
        )
        server.wait_for_log(r"Fatal Python error: Aborted")
        server.wait_for_log(rf"Worker 0 \(pid {stuck}\) was killed by SIGABRT")
        with pytest.raises(httpx.HTTPError):
            hang.result(timeout=30)
    assert served_pid(server.url) != stuck
    assert "in wsgi" in server.log  # faulthandler showed where it hung


def test_max_requests_replaces_gracefully(serve: Serve) -> None:
    server = serve(WSGI, "-w", "1", "--max-requests", "5")
    (first,) = server.worker_pids()
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        seen.add(served_pid(server.url))  # every request must succeed
    assert len(seen) == 2
    assert first in seen
    server.wait_for_log(rf"Replacing worker 0 \(pid {first}\) \(max-requests\)")
    server.wait_for_log(rf"Worker 0 \(pid {first}\) exited")


def test_sigint_twice_kills_at_once(tmp_path: Path) -> None:
    mark = tmp_path / "started"
    with (
        run_server(WSGI, "-w", "1") as server,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        future = pool.submit(httpx.get, f"{server.url}/slow?{mark}", timeout=15)
        wait_for_file(mark)
        server.signal(signal.SIGINT)
        server.wait_for_log(r"Stopping \(fast\)")
        server.signal(signal.SIGINT)
        server.wait_for_log(r"Killing every worker now")
        assert server.wait(10) == 0
        future.exception(timeout=15)


def test_usr1_reopens_the_log_file(tmp_path: Path) -> None:
    logfile = tmp_path / "error.log"
    rotated = tmp_path / "error.log.1"
    server = start_server(WSGI, "--error-logfile", str(logfile), wait_ready=False)
    try:
        wait_until(lambda: logfile.exists() and "Ready:" in logfile.read_text(), 30, "Ready")
        logfile.rename(rotated)  # what logrotate does
        server.signal(signal.SIGUSR1)
        wait_until(logfile.exists, 10, "a new log file")
        server.signal(signal.SIGTTIN)
        wait_until(lambda: "Scaling: 1 -> 2 workers" in logfile.read_text(), 10, "a line in it")
        assert "Scaling" not in rotated.read_text()
    finally:
        stop_server(server)
    assert server.proc.returncode == 0
