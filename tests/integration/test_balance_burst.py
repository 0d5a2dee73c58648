"""Every worker takes its share of the connections (issue 17), with real processes.

Per-worker open connections are read from the control socket's status, which
reports them live from the connection table (balance.py); a read waits,
bounded, until the counts add up to what the test holds open.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import selectors
import shutil
import socket
import time
from pathlib import Path

import pytest

from prefork import balance
from prefork.control.client import request
from tests.load import KeepAliveLoad
from tests.responses import ResponseReader
from tests.server import Serve, Server, start_server, stop_server

APP = "tests.apps.proc_app:wsgi"
BURST = 64
TRIALS = 20


def test_the_connection_table_is_shared_across_fork() -> None:
    table = balance.ConnectionTable()
    row = table.claim()
    assert row is not None
    sibling = table.gate(row)
    sibling.join(0)
    pid = os.fork()
    if pid == 0:  # the child publishes, as a worker does
        sibling.publish(42)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert table.open_connections(sibling.index) == 42


def open_at_once(port: int, count: int) -> list[socket.socket]:
    """`count` connections started together, returned once the kernel has queued them all."""
    socks = []
    with selectors.DefaultSelector() as selector:
        try:
            for _ in range(count):
                sock = socket.socket()
                socks.append(sock)
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                selector.register(sock, selectors.EVENT_WRITE)
            deadline = time.monotonic() + 20.0
            connecting = count
            while connecting:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{connecting} of {count} connections never completed"
                for key, _ in selector.select(remaining):
                    selector.unregister(key.fileobj)
                    connecting -= 1
        except BaseException:
            for sock in socks:
                sock.close()
            raise
    return socks


def open_connections(control: Path, total: int, timeout: float = 20.0) -> dict[int, int]:
    """Each ready worker's open connections (pid -> count), once they add up to `total`."""
    deadline = time.monotonic() + timeout
    while True:
        status = request(str(control), {"cmd": "status"})
        counts = {w["pid"]: w["connections"] for w in status["workers"] if w["state"] == "ready"}
        if sum(counts.values()) == total:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"open connections never added up to {total}: {counts}")
        time.sleep(0.01)  # polling the master: it offers no notification


def unbalanced(counts: dict[int, int], total: int) -> bool:
    fair = total / len(counts)
    return any(count < fair / 2 or count > fair * 2 for count in counts.values())


def balanced_server(
    serve: Serve, tmp_path: Path, workers: int, app: str = APP
) -> tuple[Server, Path]:
    """A server with `workers` workers, and its control socket."""
    control = tmp_path / "control.sock"
    return serve(app, "-w", str(workers), "--control-socket", str(control)), control


@pytest.mark.parametrize("workers", [2, 4])
def test_a_burst_of_connections_is_spread_over_the_workers(
    serve: Serve, tmp_path: Path, workers: int
) -> None:
    server, control = balanced_server(serve, tmp_path, workers)
    assert "Balancing: connections" in server.log
    splits = []
    for _ in range(TRIALS):
        socks = open_at_once(server.port, BURST)
        try:
            counts = open_connections(control, BURST)
        finally:
            for sock in socks:
                sock.close()
        assert len(counts) == workers
        splits.append(sorted(counts.values()))
        open_connections(control, 0)
    fair = BURST // workers
    bad = [split for split in splits if min(split) < fair / 2 or max(split) > fair * 2]
    assert not bad, f"{len(bad)} of {TRIALS} bursts outside [{fair // 2}, {fair * 2}]: {splits}"


def wait_for_share(control: Path, workers: int, total: int, timeout: float) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = open_connections(control, total)
        if len(counts) == workers and not unbalanced(counts, total):
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"no share for every worker within {timeout} s: {counts}")
        time.sleep(0.1)  # rebalancing works once a second


def test_new_workers_get_their_share_of_kept_alive_connections(
    serve: Serve, tmp_path: Path
) -> None:
    pool = 32
    server, control = balanced_server(serve, tmp_path, 2)
    # Like a proxy's upstream pool: a response with `Connection: close` makes
    # that client reconnect; any other failure counts (rebalancing must never
    # fail a request).
    with KeepAliveLoad(server.url, pool, pace=0.05) as clients:
        open_connections(control, pool)
        assert request(str(control), {"cmd": "scale", "workers": 4})["ok"]
        counts = wait_for_share(control, 4, pool, timeout=20.0)
        server.wait_for_log(r"Scaling: 2 -> 4 workers")
    assert clients.reconnects > 0, counts
    assert not clients.failures
    assert clients.ok > pool


def get(port: int, path: str = "/") -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def exchange(sock: socket.socket) -> str:
    """One GET on an open connection; the response's body."""
    sock.setblocking(True)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    response = ResponseReader(sock, timeout=30.0).read()
    assert response.status == 200, response
    return response.body.decode()


def test_a_sibling_blocked_in_the_app_does_not_hold_up_new_connections(
    serve: Serve, tmp_path: Path
) -> None:
    # One worker spends 6 s in the app (inline WSGI blocks its event loop);
    # the other must not wait for it to take its share of the connections.
    server, control = balanced_server(serve, tmp_path, 2, "tests.apps.blocking:app")
    with concurrent.futures.ThreadPoolExecutor(1) as blocked:
        slow = blocked.submit(get, server.port, "/block?6")
        open_connections(control, 1)  # the blocking request has been accepted
        socks = open_at_once(server.port, BURST // 2)  # held open: they count
        try:
            answers = {exchange(sock) for sock in socks}
        finally:
            for sock in socks:
                sock.close()
        assert not slow.done()
        assert len(answers) == 1, answers  # one pid: the worker that was free served all
        assert slow.result(30) not in answers


@pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate missing"
)
def test_a_burst_is_spread_under_socket_activation(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port for systemd-socket-activate to listen on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    control = tmp_path / "control.sock"
    activate = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}"]
    server = start_server(
        APP,
        "-w",
        "2",
        "--control-socket",
        str(control),
        bind=[],
        command_prefix=activate,
        wait_ready=False,
    )
    try:
        server.wait_for_log(rf"Listening on 127\.0\.0\.1:{port} as 3")
        # The first connection starts prefork; it waits in the passed socket's queue.
        with socket.create_connection(("127.0.0.1", port)):
            server.wait_for_log(r"Ready: 2 workers serving")
            open_connections(control, 1)
        open_connections(control, 0)
        assert "Balancing: connections" in server.log
        for _ in range(5):
            socks = open_at_once(port, BURST)
            try:
                counts = open_connections(control, BURST)
            finally:
                for sock in socks:
                    sock.close()
            assert not unbalanced(counts, BURST), counts
            open_connections(control, 0)
    finally:
        stop_server(server)
