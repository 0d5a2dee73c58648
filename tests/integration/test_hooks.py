"""Python config files (gunicorn.conf.py) and server hooks, through real servers."""

from __future__ import annotations

import signal
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.server import run_server

HOOKS_APP = "tests.apps.hooks_app"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_typical_gunicorn_conf_py_is_served_and_post_fork_runs_in_every_worker(
    tmp_path: Path,
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    access_log = tmp_path / "access.log"
    conf = write(
        tmp_path / "gunicorn.conf.py",
        f"""
        import multiprocessing
        import os

        bind = "127.0.0.1:0"
        workers = 3
        timeout = 20
        accesslog = {str(access_log)!r}
        max_requests = 1000
        max_requests_jitter = 50
        loglevel = "info"
        daemon = False       # off: what prefork does anyway, no warning
        spew = True          # on: no equivalent, named in the warning
        worker_tmp_dir = "/dev/shm"
        MARKS = {str(marks)!r}

        def post_fork(server, worker):
            server.log.info("post_fork: worker %s (age %s)", worker.pid, worker.age)
            with open(os.path.join(MARKS, str(worker.pid)), "w") as fh:
                fh.write(f"{{worker.age}} {{worker.ppid}} {{server.pid}} {{server.cfg.workers}}")
        """,
    )
    with run_server(f"{HOOKS_APP}:metrics_wsgi", "-c", str(conf), bind=()) as server:
        warning = [line for line in server.log.splitlines() if "no prefork equivalent" in line]
        assert len(warning) == 1, server.log
        assert warning[0].endswith("spew, worker_tmp_dir"), warning
        pids = server.worker_pids()
        assert len(pids) == 3
        wait_until(lambda: len(list(marks.iterdir())) == 3, 10, "three post_fork marks")
        assert {int(p.name) for p in marks.iterdir()} == pids
        ages = set()
        for mark in marks.iterdir():
            age, ppid, server_pid, workers = mark.read_text().split()
            assert int(ppid) == int(server_pid) == server.pid
            assert workers == "3"
            ages.add(int(age))
        assert ages == {1, 2, 3}
        assert httpx.get(server.url, timeout=10).status_code == 200
        assert server.url.startswith("http://127.0.0.1:")
    assert '"GET / HTTP/1.1" 200' in access_log.read_text()


def test_preload_with_post_fork_closing_the_database_connection(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "gunicorn.conf.py",
        """
        preload_app = True
        workers = 2

        def post_fork(server, worker):
            from tests.apps import hooks_app
            hooks_app.close_connection()
        """,
    )
    with run_server(f"{HOOKS_APP}:db_wsgi", "-c", str(conf)) as server:
        for _ in range(6):
            text = httpx.get(server.url, headers={"Connection": "close"}, timeout=10).text
            pid, opened_in = (part.split("=")[1] for part in text.split())
            assert pid == opened_in != str(server.pid), text


def test_child_exit_cleans_up_multiprocess_metrics(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    conf = write(
        tmp_path / "gunicorn.conf.py",
        """
        from tests.apps import hooks_app

        workers = 2

        def post_worker_init(worker):
            hooks_app.write_metrics_file()

        def child_exit(server, worker):
            hooks_app.mark_process_dead(worker.pid)
        """,
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    with run_server(f"{HOOKS_APP}:metrics_wsgi", "-c", str(conf), env=env) as server:
        pids = server.worker_pids()
        wait_until(lambda: len(list(metrics.iterdir())) == 2, 10, "two metrics files")
        mark = len(server.lines)
        server.signal(signal.SIGTTOU)
        server.wait_for_log(r"Worker \d \(pid \d+\) exited", start=mark)
        wait_until(lambda: len(list(metrics.iterdir())) == 1, 10, "one metrics file left")
        (left,) = metrics.iterdir()
        assert int(left.stem.split("_")[1]) in pids & server.worker_pids()


def test_a_hook_that_raises_is_logged_and_the_master_carries_on(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "hooks.py",
        """
        workers = 1

        def when_ready(server):
            raise RuntimeError("when_ready broke")

        def nworkers_changed(server, new_value, old_value):
            raise ValueError(f"nworkers_changed broke: {old_value} -> {new_value}")

        def child_exit(server, worker):
            raise KeyError("child_exit broke")
        """,
    )
    with run_server(f"{HOOKS_APP}:metrics_wsgi", "-c", str(conf)) as server:
        assert "Server hook when_ready raised; carrying on" in server.log
        assert "RuntimeError: when_ready broke" in server.log
        mark = len(server.lines)
        server.signal(signal.SIGTTIN)
        server.wait_for_log("ValueError: nworkers_changed broke: 1 -> 2", start=mark)
        server.wait_for_log(r"Booting worker 1", start=mark)
        server.signal(signal.SIGTTOU)
        server.wait_for_log("KeyError: 'child_exit broke'", start=mark)
        assert httpx.get(server.url, timeout=10).status_code == 200
        assert server.proc.poll() is None


def test_pre_and_post_request_hooks_see_the_request_and_response(tmp_path: Path) -> None:
    out = tmp_path / "requests.log"
    conf = write(
        tmp_path / "hooks.py",
        f"""
        def pre_request(worker, req):
            with open({str(out)!r}, "a") as fh:
                fh.write(f"pre {{req.method}} {{req.path}} {{req.query}} {{worker.pid}}\\n")

        def post_request(worker, req, environ, resp):
            with open({str(out)!r}, "a") as fh:
                fh.write(f"post {{req.uri}} {{resp.status_code}} {{environ['REQUEST_METHOD']}}\\n")
        """,
    )
    with run_server(f"{HOOKS_APP}:metrics_wsgi", "-c", str(conf)) as server:
        (pid,) = server.worker_pids()
        assert httpx.get(server.url + "/a/b?x=1", timeout=10).status_code == 200
        wait_until(lambda: out.exists() and out.read_text().count("\n") == 2, 10, "hook lines")
    assert out.read_text().splitlines() == [f"pre GET /a/b x=1 {pid}", "post /a/b?x=1 200 GET"]


def test_worker_side_hooks_on_abort_fast_stop_and_exit(tmp_path: Path) -> None:
    out = tmp_path / "events"
    out.mkdir()
    conf = write(
        tmp_path / "hooks.py",
        f"""
        import os
        timeout = 2

        def note(event, pid):
            open(os.path.join({str(out)!r}, f"{{event}}-{{pid}}"), "w").close()

        def worker_abort(worker):
            note("abort", worker.pid)

        def worker_int(worker):
            note("int", worker.pid)

        def worker_exit(server, worker):
            note("exit", worker.pid)

        def on_exit(server):
            note("on_exit", server.pid)
        """,
    )
    with run_server("tests.apps.proc_app:wsgi", "-c", str(conf)) as server:
        (hung,) = server.worker_pids()
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "/hang", timeout=15)
        wait_until((out / f"abort-{hung}").exists, 15, "worker_abort")
        assert (out / f"exit-{hung}").exists()
        wait_until(lambda: len(server.worker_pids() - {hung}) == 1, 15, "a new worker")
        (fresh,) = server.worker_pids() - {hung}
        wait_until(
            lambda: httpx.get(server.url, timeout=5).status_code == 200, 15, "the new worker"
        )
        server.signal(signal.SIGINT)
        assert server.wait(20) == 0
    assert (out / f"int-{fresh}").exists()
    assert (out / f"exit-{fresh}").exists()
    assert (out / f"on_exit-{server.pid}").exists()
