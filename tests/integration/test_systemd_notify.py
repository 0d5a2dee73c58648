"""sd_notify as systemd receives it: the message sequence on a real datagram socket."""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from prefork import systemd
from tests.integration.test_master_systemd import receive_all
from tests.server import run_server

WSGI = "tests.apps.proc_app:wsgi"


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield sock, str(path)


def kinds(messages: list[str]) -> list[str]:
    """The state changes among the messages, in order (STATUS/WATCHDOG/EXTEND left out)."""
    wanted = ("READY=1", "RELOADING=1", "STOPPING=1")
    return [line for m in messages for line in m.splitlines() if line in wanted]


def test_ready_reloading_ready_stopping_in_order(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    with run_server(WSGI, "-w", "2", env={"NOTIFY_SOCKET": path}) as server:
        messages = receive_all(sock, "READY=1")
        server.signal(signal.SIGHUP)
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        reloading = receive_all(sock, "RELOADING=1")
        messages += reloading
        messages += receive_all(sock, "READY=1")
        server.signal(signal.SIGTERM)
        assert server.wait(20) == 0
        messages += receive_all(sock, "STOPPING=1")
    assert kinds(messages) == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]
    usec = re.search(r"^MONOTONIC_USEC=(\d+)$", reloading[-1], re.MULTILINE)
    assert usec is not None, reloading[-1]
    # The same clock as systemd's: CLOCK_MONOTONIC, in microseconds, at the reload.
    assert before - 5_000_000 <= int(usec[1]) <= before + 5_000_000


def test_watchdog_pings_when_systemd_asks(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}  # WatchdogSec=1: ping every 0.5s
    with run_server(WSGI, env=env):
        receive_all(sock, "READY=1")
        start = time.monotonic()
        receive_all(sock, "^WATCHDOG=1$")
        receive_all(sock, "^WATCHDOG=1$")
        receive_all(sock, "^WATCHDOG=1$")
        assert time.monotonic() - start < 5


def test_slow_boot_extends_the_start_timeout(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    env = {"NOTIFY_SOCKET": path, "SLOW_BOOT_SECONDS": "3"}
    with run_server("tests.apps.slow_boot:application", env=env):
        messages = receive_all(sock, "READY=1")
    extends = [m for m in messages if m.startswith("EXTEND_TIMEOUT_USEC=")]
    assert extends, messages
    assert extends[0] == f"EXTEND_TIMEOUT_USEC={int(systemd.EXTEND_BY * 1e6)}"


def test_status_line_is_kept_current(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    with run_server(WSGI, "-w", "2", env={"NOTIFY_SOCKET": path}) as server:
        receive_all(sock, "READY=1")
        receive_all(sock, r"^STATUS=running: 2/2 workers ready, \d+ req/s$")
        for _ in range(20):
            httpx.get(server.url, timeout=10)
        server.signal(signal.SIGHUP)
        receive_all(
            sock, r"^STATUS=running: 2/2 workers ready, \d+ req/s, last reload ok at \d\d:", 40
        )
