"""Workers' stdout and stderr go through the master: to the right sink, and to `prefork logs`."""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

import httpx

from tests.server import Serve, file_containing, prefork_command, run_server

APP = "tests.apps.printing:app"


def prefork_logs(name: str, *args: str, timeout: float = 30) -> str:
    result = subprocess.run(
        prefork_command("logs", "-n", name, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_each_stream_reaches_its_sink(tmp_path: Path) -> None:
    out, errors, access = tmp_path / "stdout", tmp_path / "error.log", tmp_path / "access"
    wrapper = ["sh", "-c", f'exec "$@" > {out}', "sh"]
    args = ["-w", "2", "--error-logfile", str(errors), "--access-logfile", "-"]
    with run_server(APP, *args, command_prefix=wrapper, wait_ready=False) as server:
        assert "Ready:" in file_containing(errors, "Ready:"), server.log
        port = int(file_containing(errors, "Listening").split("127.0.0.1:")[1].split()[0])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.get("/one").status_code == 200
            assert client.get("/fail").status_code == 500
        assert "err: /one" in file_containing(errors, "err: /one")
        assert "failure on purpose" in file_containing(errors, "failure on purpose")
        assert "out: /one" in file_containing(out, "out: /one")
    stdout = out.read_text()
    assert '"GET /one HTTP/1.1" 200' in stdout  # the access log, written by the worker itself
    assert "err: /one" not in stdout
    log = errors.read_text()
    assert "out: /one" not in log
    # The traceback the worker logged arrived whole, through the master.
    assert "Traceback (most recent call last)" in log
    assert not access.exists()


def test_logs_shows_recent_lines_by_source_and_follows(serve: Serve) -> None:
    name = f"logs-test-{time.monotonic_ns()}"
    server = serve(APP, "-w", "2", "--name", name, "--access-logfile", "-")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/first").status_code == 200
    server.wait_for_log("err: /first")
    recent = prefork_logs(name, "--lines", "200")
    assert "   master | " in recent and "Ready: 2 workers serving" in recent
    assert "err: /first" in recent and "out: /first" in recent
    assert "GET /first" not in recent  # the access log is not captured
    assert len(prefork_logs(name, "--lines", "3").splitlines()) == 3

    slot = next(line.split("|")[0].strip() for line in recent.splitlines() if "out: /first" in line)
    other = "worker 1" if slot == "worker 0" else "worker 0"
    only = prefork_logs(name, "--lines", "0", "--worker", slot.split()[1])
    assert "out: /first" in only and "master" not in only and other not in only

    follower = subprocess.Popen(
        prefork_command("logs", "-n", name, "--lines", "0", "--follow"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert follower.stdout is not None
        fd = follower.stdout.fileno()
        received = b""

        def read_until(text: bytes) -> None:
            nonlocal received
            deadline = time.monotonic() + 30
            while text not in received:
                remaining = deadline - time.monotonic()
                assert remaining > 0, received[-500:]
                # Raw reads: select() cannot see lines a buffered reader holds.
                if select.select([fd], [], [], remaining)[0]:
                    chunk = os.read(fd, 65536)
                    assert chunk, f"the follower exited: {received[-500:]!r}"
                    received += chunk

        read_until(b"out: /first")  # the backlog is out: the follower is following
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/followed").status_code == 200
        read_until(b"out: /followed")
    finally:
        follower.kill()
        follower.wait(10)
        if follower.stdout is not None:
            follower.stdout.close()


def test_logs_without_a_master_is_one_line_and_exit_1() -> None:
    result = subprocess.run(
        prefork_command("logs", "-n", "nobody-runs-this-name"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no prefork master" in result.stderr
