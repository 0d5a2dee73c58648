"""A worker stuck in an inline WSGI response stops accepting as soon as it is told to stop.

The app blocks the worker's event loop, so the loop's own signal handling
waits for the app; until the fix the listener stayed open meanwhile and new
connections queued behind the busy app (with --reuse-port, in that worker's
own queue) for up to the graceful timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.server import Server, run_server

BUSY_APP = """\
import os
import time


def app(environ, start_response):
    if environ["PATH_INFO"] == "/busy":
        started, release = environ["QUERY_STRING"].split("&")
        with open(started, "w") as fh:
            fh.write(str(os.getpid()))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not os.path.exists(release):
            time.sleep(0.05)  # blocks the event loop, like any slow inline app
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def listening(pid: int) -> bool:
    try:
        connections = psutil.Process(pid).net_connections(kind="inet")
    except psutil.NoSuchProcess:
        return False
    return any(c.status == psutil.CONN_LISTEN for c in connections)


@contextlib.contextmanager
def busy_request(server: Server, tmp_path: Path) -> Iterator[tuple[int, list[httpx.Response]]]:
    """A request blocking one worker's loop; yields that worker's pid and, later, the answer."""
    started, release = tmp_path / "started", tmp_path / "release"
    answers: list[httpx.Response] = []
    url = f"{server.url}/busy?{started}&{release}"
    thread = threading.Thread(target=lambda: answers.append(httpx.get(url, timeout=30)))
    thread.start()
    try:
        wait_until(lambda: started.exists() and started.read_text(), 20, "the app never started")
        yield int(started.read_text()), answers
    finally:
        release.write_text("")
        thread.join(30)


@pytest.mark.parametrize("extra", [(), ("--reuse-port",)], ids=["shared", "reuse-port"])
def test_term_to_a_busy_worker_sends_new_connections_elsewhere(
    tmp_path: Path, extra: tuple[str, ...]
) -> None:
    (tmp_path / "busy_app.py").write_text(BUSY_APP)
    args = ("-w", "2", "--app-dir", str(tmp_path), "--graceful-timeout", "15", *extra)
    with run_server("busy_app:app", *args) as server:
        with busy_request(server, tmp_path) as (busy, answers):
            assert listening(busy)
            os.kill(busy, signal.SIGTERM)
            # Well before the app returns (10 s), the busy worker listens no more...
            wait_until(lambda: not listening(busy), 5, "the busy worker kept its listener")
            # ...and new connections are served by the other worker, promptly: one
            # queued behind the busy app would wait until it returns (10 s).
            with httpx.Client(timeout=3, headers={"Connection": "close"}) as client:
                for _ in range(20):
                    response = client.get(server.url)
                    assert response.status_code == 200
                    assert int(response.text) != busy
        # The request in flight still got its answer: the stop was graceful.
        assert [a.status_code for a in answers] == [200]
        assert int(answers[0].text) == busy


def test_graceful_stop_with_a_busy_worker_refuses_new_connections_at_once(
    tmp_path: Path,
) -> None:
    (tmp_path / "busy_app.py").write_text(BUSY_APP)
    args = ("-w", "2", "--app-dir", str(tmp_path), "--graceful-timeout", "15")
    with run_server("busy_app:app", *args) as server:
        port = server.port
        with busy_request(server, tmp_path) as (_, answers):
            server.signal(signal.SIGTERM)

            def refused() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except ConnectionRefusedError:
                    return True
                return False  # accepted into a queue nobody serves: the bug

            wait_until(refused, 5, "new connections were queued behind the busy worker")
        assert [a.status_code for a in answers] == [200]
        assert server.wait(30) == 0
