"""Serving on each kind of listener with a real master: TCP, IPv6, unix socket, fd, SO_REUSEPORT."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from tests.server import Serve, run_server, start_server, stop_server

WSGI = "tests.apps.proc_app:wsgi"
ASGI = "tests.apps.proc_app:asgi"


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_serves_on_tcp(app: str, serve: Serve) -> None:
    server = serve(app)
    response = httpx.get(server.url + "/", timeout=10)
    assert response.status_code == 200
    assert response.text.startswith("pid=")
    curl = subprocess.run(
        ["curl", "-sS", "--max-time", "10", server.url + "/"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert curl.stdout.startswith("pid=")


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_serves_on_ipv6(app: str, serve: Serve) -> None:
    server = serve(app, bind=["[::1]:0"])
    assert server.url.startswith("http://[::1]:")
    assert httpx.get(server.url + "/", timeout=10).text.startswith("pid=")
    curl = subprocess.run(
        ["curl", "-sS", "-g", "--max-time", "10", server.url + "/"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert curl.stdout.startswith("pid=")


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_serves_on_unix_socket_and_removes_it(app: str, tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    with run_server(app, bind=[f"unix:{path}"]) as server:
        assert server.urls == [f"unix:{path}"]
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport, timeout=10) as client:
            assert client.get("http://localhost/").text.startswith("pid=")
        curl = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--unix-socket", str(path), "http://localhost/"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert curl.stdout.startswith("pid=")
    assert server.proc.returncode == 0
    assert not path.exists()


def test_several_binds_all_serve(tmp_path: Path, serve: Serve) -> None:
    path = tmp_path / "both.sock"
    server = serve(WSGI, bind=["127.0.0.1:0", f"unix:{path}"])
    assert len(server.urls) == 2
    assert httpx.get(server.url + "/", timeout=10).status_code == 200
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), timeout=10) as client:
        assert client.get("http://localhost/").status_code == 200


def test_bind_failure_exits_1_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start_server(WSGI, bind=[f"127.0.0.1:{port}"], wait_ready=False)
        try:
            assert server.wait(20) == 1
        finally:
            stop_server(server)
    server.wait_for_log(rf"cannot bind 127\.0\.0\.1:{port}: Address already in use")


def test_reuse_port_gives_each_worker_its_own_socket(serve: Serve) -> None:
    server = serve(WSGI, "-w", "2", "--reuse-port")
    pids = set()
    for _ in range(200):
        with httpx.Client(timeout=10) as client:  # a new connection each time
            pids.add(client.get(server.url + "/").text.strip())
        if len(pids) == 2:
            break
    assert len(pids) == 2
    # The master's reservation must not accept (it would strand connections).
    # psutil.net_connections, not Process.net_connections: the latter needs
    # psutil 6, and scripts/check-lower-bounds runs this on psutil 5.9.
    master_sockets = [
        c
        for c in psutil.net_connections("tcp")
        if c.pid == server.pid and c.status == psutil.CONN_LISTEN
    ]
    assert master_sockets == []


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_fd_bind_serves_an_inherited_socket() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    fd = sock.fileno()
    os.set_inheritable(fd, True)
    try:
        with run_server(WSGI, bind=[f"fd://{fd}"], pass_fds=(fd,)) as server:
            assert server.url == f"http://127.0.0.1:{port}"
            assert httpx.get(server.url + "/", timeout=10).status_code == 200
    finally:
        sock.close()
