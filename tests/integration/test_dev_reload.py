"""`--reload`: an edit is served without a failed request; a broken edit keeps the old code."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from tests.integration.test_reload import BROKEN_APP, Load, write_app
from tests.server import ROOT, Serve, run_server

APP = "proc_reload_app:app"
# The issue asks for "served within 2 s"; a loaded CI machine gets some slack
# here, and the closing note records the latency measured on a quiet one.
SERVED_WITHIN = 5.0


def wait_for_version(state: Load, version: str, timeout: float = SERVED_WITHIN) -> float:
    """Seconds until a request sent from now on is answered by `version`."""
    since = time.monotonic()
    while time.monotonic() - since < timeout:
        with state.lock:
            if any(v == version for sent, v, _ in state.samples if sent >= since):
                return time.monotonic() - since
        time.sleep(0.02)
    raise AssertionError(f"{version} not served within {timeout}s; failures {state.failures[:5]}")


@pytest.mark.parametrize("backend", ["watchfiles", "polling"])
def test_edit_is_served_and_a_broken_edit_keeps_the_old_code(
    tmp_path: Path, backend: str, serve: Serve
) -> None:
    env = {}
    if backend == "polling":
        # A watchfiles that cannot be imported: the watcher must fall back.
        shim = tmp_path / "shim" / "watchfiles"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
        env["PYTHONPATH"] = f"{shim.parent}:{ROOT}"
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    write_app(app_dir, "v1")
    args = ("-w", "2", "--reload", "--chdir", str(app_dir), "--log-level", "debug")
    server = serve(APP, *args, env=env)
    server.wait_for_log(f"--reload watcher: {backend}")
    with Load(server.url) as state:
        wait_for_version(state, "v1")
        write_app(app_dir, "v2")
        wait_for_version(state, "v2")

        mark = len(server.lines)
        (app_dir / "proc_reload_app.py").write_text(BROKEN_APP)
        server.wait_for_log("Reload failed: .*deploy went wrong", start=mark)
        wait_for_version(state, "v2")  # the old workers still serve

        write_app(app_dir, "v3")
        wait_for_version(state, "v3")
    assert state.failures == []
    assert "Change detected in proc_reload_app.py; reloading" in server.log


def test_files_outside_the_patterns_do_not_reload(tmp_path: Path, serve: Serve) -> None:
    write_app(tmp_path, "v1")
    server = serve(APP, "--reload", "--chdir", str(tmp_path), "--log-level", "debug")
    server.wait_for_log("--reload watcher: watchfiles")
    (tmp_path / "notes.txt").write_text("not code")
    (tmp_path / ".hidden.py").write_text("x = 1")
    (tmp_path / "data.html").write_text("<p>")
    mark = len(server.lines)
    (tmp_path / "module.py").write_text("x = 1")  # the one that counts
    line = server.wait_for_log("Change detected in", start=mark)
    assert "module.py" in line.string
    assert not any("notes.txt" in x or ".hidden" in x for x in server.lines)


def test_reload_include_adds_to_the_defaults(tmp_path: Path, serve: Serve) -> None:
    write_app(tmp_path, "v1")
    args = ("--reload", "--chdir", str(tmp_path), "--reload-include", "*.html")
    server = serve(APP, *args, "--log-level", "debug")
    server.wait_for_log("--reload watcher: watchfiles")
    for name in ("page.html", "module.py"):
        mark = len(server.lines)
        (tmp_path / name).write_text("x = 1")
        assert name in server.wait_for_log("Change detected in", start=mark).string


def test_the_watcher_ends_with_the_master(tmp_path: Path) -> None:
    write_app(tmp_path, "v1")
    with run_server(APP, "--reload", "--chdir", str(tmp_path)) as server:
        master = psutil.Process(server.pid)
        watchers = [p for p in master.children() if "prefork.reloader" in " ".join(p.cmdline())]
        assert len(watchers) == 1
    watchers[0].wait(10)  # raises psutil.TimeoutExpired if it outlived the master
