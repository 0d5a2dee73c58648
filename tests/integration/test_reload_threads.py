"""Rolling reload of a `--threads N` pool under keep-alive POST load: no request is lost.

A draining worker must answer every request it has read, or never read it;
a response that promised keep-alive must be honoured, since a client that
reuses the connection cannot know a request it sent was never seen.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.server import run_server

CLIENTS = 16
BODY = os.urandom(512).hex().encode()  # 1 KiB
ECHO_APP = """\
def app(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


class PostLoad:
    """CLIENTS keep-alive clients POSTing BODY until stopped; every failure is kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(CLIENTS)]

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    response = client.post(self.url + "/echo", content=BODY)
                except httpx.HTTPError as exc:
                    failure = f"{type(exc).__name__}: {exc}"
                else:
                    if response.status_code == 200 and response.content == BODY:
                        with self.lock:
                            self.ok += 1
                        continue
                    failure = f"status {response.status_code}, {len(response.content)} bytes"
                with self.lock:
                    self.failures.append(failure)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` more requests succeeded."""
        deadline = time.monotonic() + timeout
        target = self.ok + count
        while self.ok < target:
            assert time.monotonic() < deadline, f"load stalled; failures: {self.failures[:5]}"
            time.sleep(0.02)

    def __enter__(self) -> PostLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def test_four_hups_under_keep_alive_post_load_lose_nothing(tmp_path: Path) -> None:
    (tmp_path / "threads_echo_app.py").write_text(ECHO_APP)
    args = ("-w", "2", "--threads", "4", "--app-dir", str(tmp_path))
    with run_server("threads_echo_app:app", *args) as server, PostLoad(server.url) as load:
        for generation in (2, 3, 4, 5):
            load.wait_for(50)
            start = len(server.lines)
            before = load.ok
            server.signal(signal.SIGHUP)
            server.wait_for_log(rf"Reload complete: generation {generation}\b", 60, start)
            # Both old workers drain and exit while the load goes on.
            first = server.wait_for_log(r"\(pid \d+\) exited", 60, start)
            server.wait_for_log(r"\(pid \d+\) exited", 60, server.lines.index(first.string) + 1)
            assert load.ok > before, "no request went through during the reload"
        load.stop.set()
    assert load.failures == []
    assert load.ok > 200
