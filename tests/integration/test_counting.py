"""Counting what the app and the limits see: wsgi.multiprocess, dropped header fields."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.server import Server, run_server

ENVIRON_APP = """\
import json
import os


def app(environ, start_response):
    body = json.dumps({
        "pid": os.getpid(),
        "multiprocess": environ["wsgi.multiprocess"],
        "headers": sorted(k for k in environ if k.startswith("HTTP_X")),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "environ_app.py").write_text(ENVIRON_APP)
    return tmp_path


def ask(server: Server) -> dict[str, object]:
    # A new connection each time, so requests spread over the workers.
    result: dict[str, object] = json.loads(
        httpx.get(server.url, headers={"Connection": "close"}, timeout=10).text
    )
    return result


def test_wsgi_multiprocess_is_true_even_with_one_worker_and_after_scaling(app_dir: Path) -> None:
    # A second process may serve the app at any time (scale, reload, replacement).
    args = ("-w", "1", "--app-dir", str(app_dir))
    with run_server("environ_app:app", *args) as server:
        assert ask(server)["multiprocess"] is True
        start = len(server.lines)
        server.signal(signal.SIGTTIN)
        server.wait_for_log(r"Worker 1 \(pid \d+\) ready|Scaling: 1 -> 2", start=start)
        deadline = time.monotonic() + 30
        seen: dict[object, object] = {}
        while len(seen) < 2:
            assert time.monotonic() < deadline, f"only saw {seen}"
            answer = ask(server)
            seen[answer["pid"]] = answer["multiprocess"]
        assert set(seen.values()) == {True}


def raw_request(server: Server, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def request_with(fields: list[bytes]) -> bytes:
    return (
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + b"".join(field + b"\r\n" for field in fields)
        + b"\r\n"
    )


def test_dropped_underscore_fields_count_against_the_limits(app_dir: Path) -> None:
    # Host and Connection are 2 fields; the limit leaves room for 3 more.
    limits = ("--limit-request-fields", "5", "--limit-request-field-size", "200")
    with run_server("environ_app:app", "--app-dir", str(app_dir), *limits) as server:
        # Within the limit: served, and the underscore fields never reach the app.
        three = [b"X-Dash: 1", b"X_Under: 2", b"X_Other: 3"]
        answer = raw_request(server, request_with(three))
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["headers"] == ["HTTP_X_DASH"]

        # Over it with underscore fields only: refused, as any other field would be.
        four = [b"X_A: 1", b"X_B: 2", b"X_C: 3", b"X_D: 4"]
        answer = raw_request(server, request_with(four))
        assert answer.startswith(b"HTTP/1.1 431 "), answer
        assert b"too many header fields" in answer

        # An oversized underscore field is refused like an oversized field.
        answer = raw_request(server, request_with([b"X_Big: " + b"a" * 300]))
        assert answer.startswith(b"HTTP/1.1 431 "), answer
        assert b"header field too large" in answer
