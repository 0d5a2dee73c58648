"""`--log-format json`: every line of every log parses, whatever the client sent."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.responses import Response, ResponseReader
from tests.server import Server, run_server

HOSTILE_AGENTS = [
    b'quote " and backslash \\ inside',
    "non-ASCII: caf\u00e9 \u65e5\u672c".encode(),
    b"invalid UTF-8: \xff\xfe\xc3",
    b"a tab\tinside, and a backslash-u \\u0041",
]


def send_raw(port: int, agent: bytes, query: bytes) -> Response:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET /path%20x?"
            + query
            + b" HTTP/1.1\r\nHost: t\r\nUser-Agent: "
            + agent
            + b"\r\nX-Request-ID: rid-1\r\nConnection: close\r\n\r\n"
        )
        return ResponseReader(sock, timeout=10).read()


def read_json_lines(path: Path, wanted: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Parse every line of `path` (each must be JSON) once `wanted` lines are there."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text(encoding="ascii").splitlines() if path.exists() else []
        if len(lines) >= wanted or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)


def json_server_port(server: Server, errors: Path, timeout: float = 30.0) -> int:
    """The port of a server whose JSON error log goes to `errors`, once it is ready."""
    deadline = time.monotonic() + timeout
    while not (errors.exists() and "Ready:" in errors.read_text()):
        assert time.monotonic() < deadline and server.proc.poll() is None, server.log
        time.sleep(0.05)
    listening = next(
        e["message"] for e in read_json_lines(errors, 1) if "Listening at:" in e["message"]
    )
    return int(listening.rsplit(":", 1)[1])


@pytest.mark.parametrize("app", ["wsgi_app", "asgi_app"])
def test_every_line_parses_with_hostile_requests(tmp_path: Path, app: str) -> None:
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    args = ["--log-format", "json", "--access-logfile", str(access)]
    args += ["--error-logfile", str(errors), "-w", "2"]
    with run_server(f"tests.apps.json_logging:{app}", *args, wait_ready=False) as server:
        port = json_server_port(server, errors)
        for agent in HOSTILE_AGENTS:
            assert send_raw(port, agent, b"q=%22%FF").status == 200
    # The server has stopped: every buffered line is flushed.
    entries = read_json_lines(access, len(HOSTILE_AGENTS))
    assert len(entries) == len(HOSTILE_AGENTS)
    # Two workers write their own batches: compare without order.
    expected = {agent.decode("utf-8", "backslashreplace") for agent in HOSTILE_AGENTS}
    assert {entry["user_agent"] for entry in entries} == expected
    for entry in entries:
        assert entry["type"] == "access"
        assert entry["method"] == "GET"
        assert entry["path"] == "/path%20x"
        assert entry["query"] == "q=%22%FF"
        assert entry["status"] == 200
        assert entry["bytes"] == 2
        assert entry["client"] == "127.0.0.1"
        assert entry["request_id"] == "rid-1"
        assert isinstance(entry["duration"], float)
        assert entry["time"][10] == "T"
    records = read_json_lines(errors, 1)
    assert any(r["type"] == "server" and r["worker"] == "master" for r in records)
    assert any(isinstance(r["worker"], int) for r in records)
    app_lines = [r for r in records if r["type"] == "app"]
    assert len(app_lines) == len(HOSTILE_AGENTS)
    assert all(r["logger"] == "tests.app" and r["level"] == "warning" for r in app_lines)
    assert app_lines[0]["message"] == 'app saw q=%22%FF "quoted"'


def test_text_format_leaves_the_root_logger_alone(tmp_path: Path) -> None:
    with run_server("tests.apps.json_logging:wsgi_app") as server:
        send_raw(server.port, b"ua", b"x=1")
        server.wait_for_log('app saw x=1 "quoted"')
    assert "[INFO] Ready:" in server.log
    assert '{"' not in server.log


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_lines_of_the_last_second_survive_a_graceful_stop(tmp_path: Path, log_format: str) -> None:
    # Lines to a file are batched and flushed once a second; a stop right
    # after a request, with no connection left open, must flush them too.
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    args = ["--access-logfile", str(access), "--log-format", log_format]
    if log_format == "json":  # JSON lines on stderr would hide the banner from run_server
        args += ["--error-logfile", str(errors)]
    json_lines = log_format == "json"
    with run_server("tests.apps.json_logging:wsgi_app", *args, wait_ready=not json_lines) as server:
        port = json_server_port(server, errors) if json_lines else server.port
        send_raw(port, b"ua", b"x=1")
    assert "x=1" in access.read_text()
