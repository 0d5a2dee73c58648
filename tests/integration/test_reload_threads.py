"""Rolling reload of a `--threads N` pool under keep-alive POST load: no request is lost.

A draining worker must answer every request it has read, or never read it;
a response that promised keep-alive must be honoured, since a client that
reuses the connection cannot know a request it sent was never seen.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from tests.load import KeepAliveLoad
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


class PostLoad(KeepAliveLoad):
    """CLIENTS keep-alive clients POSTing BODY, each answer checked to the byte."""

    def __init__(self, url: str) -> None:
        super().__init__(url, CLIENTS, lambda client: client.post(url + "/echo", content=BODY))

    def accept(self, sent: float, response: httpx.Response) -> str | None:
        if response.status_code == 200 and response.content == BODY:
            return None
        return f"status {response.status_code}, {len(response.content)} bytes"


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
