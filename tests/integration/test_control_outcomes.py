"""`prefork reload|scale|stop` wait for the outcome, print it, and exit by it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.server import ROOT, Serve, control, prefork_command, run_server

APP = """\
import time

time.sleep({import_delay})


def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""
BROKEN = "raise RuntimeError('deploy went wrong')\n"
ENV = {"PYTHONDONTWRITEBYTECODE": "1"}
GOES_ON = "the reload goes on (see prefork status)"


def write_app(directory: Path, import_delay: float = 0.0) -> None:
    (directory / "outcome_app.py").write_text(APP.format(import_delay=import_delay))


def serve_args(directory: Path, sock: Path, workers: int = 1) -> tuple[str, ...]:
    return ("-w", str(workers), "--app-dir", str(directory), "--control-socket", str(sock))


def test_a_failed_reload_exits_1_with_the_reason(tmp_path: Path) -> None:
    write_app(tmp_path)
    sock = tmp_path / "ctl.sock"
    with run_server("outcome_app:app", *serve_args(tmp_path, sock), env=ENV):
        (tmp_path / "outcome_app.py").write_text(BROKEN)
        result = control("reload", "--socket", str(sock))
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.startswith("prefork: error: reload failed: cannot import")
        assert "deploy went wrong" in result.stderr
        assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (
            "0.5",
            (
                5,
                "",
                "prefork: error: no outcome within 0.5s; the reload goes on (see prefork status)\n",
            ),
        ),
        ("0", (0, "started\n", "")),  # 0: answer at once with what was started
    ],
)
def test_a_reload_that_outlasts_the_timeout_goes_on(
    tmp_path: Path,
    timeout: str,
    expected: tuple[int, str, str],
    serve: Serve,
) -> None:
    write_app(tmp_path)
    sock = tmp_path / "ctl.sock"
    server = serve("outcome_app:app", *serve_args(tmp_path, sock), env=ENV)
    write_app(tmp_path, import_delay=3.0)
    start = len(server.lines)
    result = control("reload", "--socket", str(sock), "--timeout", timeout)
    assert (result.returncode, result.stdout, result.stderr) == expected
    assert "Reload complete" not in "\n".join(server.lines[start:])
    server.wait_for_log(r"Reload complete: generation 2\b", start=start)


def test_a_reload_queued_behind_another_reports_the_follow_up(tmp_path: Path, serve: Serve) -> None:
    write_app(tmp_path)
    sock = tmp_path / "ctl.sock"
    server = serve("outcome_app:app", *serve_args(tmp_path, sock), env=ENV)
    write_app(tmp_path, import_delay=2.0)
    start = len(server.lines)
    first = subprocess.Popen(
        prefork_command("reload", "--socket", str(sock)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        server.wait_for_log(r"Reloading \(control socket\): generation 2", start=start)
        second = control("reload", "--socket", str(sock))
        out, err = first.communicate(timeout=60)
    finally:
        first.kill()
        first.wait(5)
    assert (first.returncode, out, err) == (0, "reloaded: generation 2: 1 workers ready\n", "")
    assert (second.returncode, second.stdout) == (
        0,
        "reloaded: generation 3: 1 workers ready\n",
    )


def test_scaling_to_a_worker_that_cannot_boot_exits_1(tmp_path: Path) -> None:
    write_app(tmp_path)
    sock = tmp_path / "ctl.sock"
    with run_server("outcome_app:app", *serve_args(tmp_path, sock), env=ENV):
        (tmp_path / "outcome_app.py").write_text(BROKEN)
        result = control("scale", "+1", "--socket", str(sock))
        assert result.returncode == 1
        assert result.stderr.startswith("prefork: error: scaling to 2 workers failed: ")
        assert "deploy went wrong" in result.stderr


def test_stop_returns_once_the_master_is_gone(tmp_path: Path, serve: Serve) -> None:
    write_app(tmp_path)
    sock = tmp_path / "ctl.sock"
    server = serve("outcome_app:app", *serve_args(tmp_path, sock, workers=2))
    began = time.monotonic()
    result = control("stop", "--socket", str(sock))
    assert (result.returncode, result.stdout) == (0, "stopped\n")
    assert server.wait(10) == 0
    assert "Shutting down: master (exit status 0)" in server.wait_for_log("Shutting down").string
    assert time.monotonic() - began < 30


def test_a_reload_with_preload_reports_the_new_master(tmp_path: Path, serve: Serve) -> None:
    write_app(tmp_path)
    sock = tmp_path / "ctl.sock"
    args = (*serve_args(tmp_path, sock), "--preload")
    server = serve("outcome_app:app", *args, env=ENV)
    result = control("reload", "--socket", str(sock))
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(r"upgraded: new master \(pid (\d+)\)\n", result.stdout)
    assert match is not None, result.stdout
    assert server.wait(30) == 0  # the old master handed over and left
    new_master = int(match[1])
    try:
        state = control("status", "--socket", str(sock))
        assert f"master pid {new_master}" in state.stdout
    finally:
        os.kill(new_master, signal.SIGTERM)
