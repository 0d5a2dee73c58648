"""`prefork status|reload|scale|stop` against a real master's control socket."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import time
from pathlib import Path

import psutil

from tests.server import ROOT, Server, control, prefork_command, run_server

WSGI = "tests.apps.proc_app:wsgi"


def wait_workers(server: Server, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.worker_pids()) != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} workers, have {server.worker_pids()}")
        time.sleep(0.05)


def test_status_scale_reload_stop(tmp_path: Path) -> None:
    sock = tmp_path / "ctl" / "prefork.sock"
    with run_server(WSGI, "-w", "2", "--control-socket", str(sock), "--name", "web") as server:
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600

        text = control("status", "--socket", str(sock))
        assert text.returncode == 0, text.stderr
        assert f"master pid {server.pid}" in text.stdout
        assert "[web]" in text.stdout
        for pid in server.worker_pids():
            assert str(pid) in text.stdout
        assert "SLOT" in text.stdout

        data = json.loads(control("status", "--socket", str(sock), "--json").stdout)
        assert data["pid"] == server.pid
        assert data["target"] == 2
        assert {w["pid"] for w in data["workers"]} == server.worker_pids()
        assert {w["state"] for w in data["workers"]} == {"ready"}
        assert data["listeners"] == [server.url]

        # reload, scale and stop wait for the outcome and print it.
        result = control("scale", "3", "--socket", str(sock))
        assert (result.returncode, result.stdout) == (0, "scaled to 3 workers, all ready\n")
        assert len(server.worker_pids()) == 3
        result = control("scale", "-2", "--socket", str(sock))
        assert (result.returncode, result.stdout) == (0, "scaled to 1 worker, all ready\n")
        assert len(server.worker_pids()) == 1  # the retired ones have exited
        refused = control("scale", "-5", "--socket", str(sock))
        assert refused.returncode == 2
        assert refused.stderr.strip() == "prefork: error: the worker count must stay >= 1"

        result = control("reload", "--socket", str(sock))
        assert result.returncode == 0, result.stderr
        assert result.stdout == "reloaded: generation 2: 1 workers ready\n"
        last = json.loads(control("status", "--socket", str(sock), "--json").stdout)["last_reload"]
        assert last["ok"] is True
        assert "last reload: ok" in control("status", "--socket", str(sock)).stdout

        workers = server.worker_pids()
        result = control("stop", "--socket", str(sock))
        assert (result.returncode, result.stdout) == (0, "stopped\n")
        # Answered once the workers were gone, as the master exits.
        assert not any(psutil.pid_exists(pid) for pid in workers)
        assert server.wait(20) == 0
    assert not sock.exists()


def test_no_master_is_one_line_and_exit_1(tmp_path: Path) -> None:
    sock = tmp_path / "nobody.sock"
    result = control("status", "--socket", str(sock))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"prefork: error: no prefork master is running (no control socket at {sock})\n"
    )


def test_bad_scale_argument_is_a_usage_error(tmp_path: Path) -> None:
    result = control("scale", "many", "--socket", str(tmp_path / "x.sock"))
    assert result.returncode == 2
    assert "scale needs a worker count" in result.stderr


def test_top_redraws_until_interrupted(tmp_path: Path) -> None:
    sock = tmp_path / "ctl.sock"
    with run_server(WSGI, "-w", "2", "--control-socket", str(sock)):
        proc = subprocess.Popen(
            prefork_command("top", "--socket", str(sock), "--interval", "0.2"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            frames = 0
            deadline = time.monotonic() + 20
            while frames < 2 and time.monotonic() < deadline:
                line = proc.stdout.readline()
                frames += line.startswith("\x1b[H\x1b[Jprefork top")
            assert frames == 2
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0
        finally:
            proc.kill()
            proc.wait(5)
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()
            proc.stderr.close()
