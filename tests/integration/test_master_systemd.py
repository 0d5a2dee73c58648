"""systemd integration: sd_notify READY=1 and socket activation, with real tools."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.server import run_server, start_server, stop_server

WSGI = "tests.apps.proc_app:wsgi"


def receive_all(sock: socket.socket, until: str, timeout: float = 30.0) -> list[str]:
    """Every message up to and including the first in which regex `until` matches a line."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while not any(re.search(until, m, re.MULTILINE) for m in messages):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {until!r} from the master; got {messages}")
        sock.settimeout(remaining)
        messages.append(sock.recv(4096).decode())
    return messages


def test_master_notifies_ready_stopping_and_reloading(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(path))
        with run_server(WSGI, "-w", "2", env={"NOTIFY_SOCKET": str(path)}) as server:
            ready = receive_all(notify, "READY=1")
            assert any("STATUS=2 workers serving" in m for m in ready)
            server.signal(signal.SIGHUP)
            reloaded = receive_all(notify, "STATUS=reloaded")
            assert any(m.startswith("RELOADING=1") for m in reloaded)
            server.signal(signal.SIGTERM)
            assert server.wait(20) == 0
            receive_all(notify, "STOPPING=1")


@pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate missing"
)
def test_socket_activation_serves_on_the_passed_socket() -> None:
    with socket.socket() as probe:  # a free port for systemd-socket-activate to listen on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    activate = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}"]
    server = start_server(WSGI, "-w", "2", bind=[], command_prefix=activate, wait_ready=False)
    try:
        server.wait_for_log(rf"Listening on 127\.0\.0\.1:{port} as 3")
        # systemd-socket-activate starts prefork on the first connection; that
        # connection waits in the passed socket's backlog and must be served.
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
        assert response.text.startswith("pid=")
        server.wait_for_log(rf"Listening at: http://127\.0\.0\.1:{port} \(from systemd\)")
        server.wait_for_log(r"Ready: 2 workers serving")
        assert "Address already in use" not in server.log
    finally:
        stop_server(server)
    assert server.proc.returncode == 0
