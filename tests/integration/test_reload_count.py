"""A reload after scaling, and what a failed reload restores (real master, real signals)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.server import Serve, Server, control, run_server

APP = """\
VERSION = {version!r}


def app(environ, start_response):
    body = VERSION.encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""
BROKEN = "raise RuntimeError('deploy went wrong')\n"
# Edited files must be recompiled even within the same second (pyc mtimes).
ENV = {"PYTHONDONTWRITEBYTECODE": "1"}


def write_app(directory: Path, version: str) -> None:
    (directory / "count_app.py").write_text(APP.format(version=version))


def status(sock: Path) -> dict[str, object]:
    result = control("status", "--socket", str(sock), "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def served_versions(server: Server, requests: int = 30) -> set[str]:
    """Versions answered over fresh connections (each may reach any worker)."""
    return {httpx.get(server.url, headers={"Connection": "close"}).text for _ in range(requests)}


def scale_to_3(server: Server, sock: Path, how: str) -> None:
    if how == "prefork scale":
        assert control("scale", "3", "--socket", str(sock)).returncode == 0
        return
    for count in (2, 3):  # one signal at a time: the kernel merges pending ones
        start = len(server.lines)
        server.signal(signal.SIGTTIN)
        server.wait_for_log(rf"Scaling: {count - 1} -> {count} workers", start=start)


@pytest.mark.parametrize("how", ["prefork scale", "TTIN"])
def test_a_reload_after_scaling_replaces_every_worker(
    tmp_path: Path, how: str, serve: Serve
) -> None:
    write_app(tmp_path, "v1")
    sock = tmp_path / "ctl.sock"
    args = ("-w", "1", "--app-dir", str(tmp_path), "--control-socket", str(sock))
    server = serve("count_app:app", *args, env=ENV)
    scale_to_3(server, sock, how)
    write_app(tmp_path, "v2")
    start = len(server.lines)
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"Reload complete: generation 2: 3 workers ready", start=start)
    state = status(sock)
    workers = state["workers"]
    assert isinstance(workers, list)
    # The count set at runtime survived, and it is the count that serves:
    # three workers of the new generation (the old ones may still be draining).
    assert (state["target"], state["scaled"]) == (3, True)
    serving = [w["generation"] for w in workers if w["state"] == "ready"]
    assert serving == [2, 2, 2]
    assert {w["state"] for w in workers if w["generation"] == 1} <= {"draining"}
    assert "Retiring" not in "\n".join(server.lines[start:])
    assert served_versions(server) == {"v2"}


def test_a_changed_workers_setting_wins_over_the_runtime_count(tmp_path: Path) -> None:
    write_app(tmp_path, "v1")
    sock = tmp_path / "ctl.sock"
    config = tmp_path / "prefork.toml"
    config.write_text("workers = 1\n")
    args = ("-c", str(config), "--app-dir", str(tmp_path), "--control-socket", str(sock))
    with run_server("count_app:app", *args, env=ENV):
        assert control("scale", "3", "--socket", str(sock)).returncode == 0
        config.write_text("workers = 2\n")
        result = control("reload", "--socket", str(sock))
        assert (result.returncode, result.stdout) == (
            0,
            "reloaded: generation 2: 2 workers ready\n",
        )
        state = status(sock)
        assert (state["target"], state["scaled"]) == (2, False)
        workers = state["workers"]
        assert isinstance(workers, list)
        assert [w["generation"] for w in workers if w["state"] == "ready"] == [2, 2]


def test_a_failed_reload_restores_the_log_settings_too(tmp_path: Path, serve: Serve) -> None:
    write_app(tmp_path, "v1")
    config = tmp_path / "prefork.toml"
    config.write_text("workers = 1\n")
    new_log = tmp_path / "new-errors.log"
    args = ("-c", str(config), "--app-dir", str(tmp_path))
    server = serve("count_app:app", *args, env=ENV)
    config.write_text(f"workers = 1\nerror_logfile = {str(new_log)!r}\nlog_level = 'debug'\n")
    (tmp_path / "count_app.py").write_text(BROKEN)
    start = len(server.lines)
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"Reload failed: .*deploy went wrong", start=start)
    # Back on the previous error log (stderr) and level (info): the next
    # line goes there, and nothing after the failure goes to the new file.
    start = len(server.lines)
    server.signal(signal.SIGTTIN)
    server.wait_for_log(r"Handling signal: ttin", start=start)
    assert "Handling signal: ttin" not in new_log.read_text()
    server.wait_for_log(r"Booting worker 1", start=start)
    assert not any("[DEBUG]" in line for line in server.lines[start:])
