"""The accept loop: descriptor exhaustion is survived, logged once, and recovered from.

The worker of `tests.apps.accept_lowfd` can open only ~24 more descriptors,
so a few dozen idle connections make its accept() fail with EMFILE.  What
must hold (prefork/http/accept.py): one ERROR line, not one per attempt; no
busy loop; connections beyond the limit wait in the kernel queue instead of
being accepted and reset (libuv's "EMFILE trick"); connections already open
keep being served; once descriptors are freed the queued ones are answered.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.responses import ResponseReader
from tests.server import Serve

LOWFD_APP = "tests.apps.accept_lowfd:app"
HELLO_APP = "tests.apps.proc_app:wsgi"
REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
# Well beyond the worker's spare descriptors, well below the listen backlog.
HELD = 60
# Longer than --timeout below: the worker must keep its heartbeat going while
# it cannot open a descriptor (psutil's memory sample needs one).
EXHAUSTED_FOR = 3.5
HEARTBEAT_TIMEOUT = "3"


def _answered(sock: socket.socket, timeout: float) -> bool:
    """The next response on `sock` is the accept_lowfd app's 200 "ok"."""
    response = ResponseReader(sock, timeout).read()
    return (response.status, response.body) == (200, b"ok")


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@contextlib.contextmanager
def _connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        # extend() keeps the sockets made before a failure, for the cleanup.
        socks.extend(socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_descriptor_exhaustion_backs_off_logs_once_and_recovers(serve: Serve) -> None:
    server = serve(
        LOWFD_APP,
        "-w",
        "1",
        "--keep-alive",
        "60",
        "--header-timeout",
        "60",
        "--timeout",
        HEARTBEAT_TIMEOUT,
    )
    (pid,) = server.worker_pids()
    worker = psutil.Process(pid)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as first:
        first.sendall(REQUEST)
        assert _answered(first, 5)
        mark = len(server.lines)

        with _connections(server.port, HELD) as held:
            server.wait_for_log(
                r"\[ERROR\] Cannot accept connections on 127\.0\.0\.1:\d+: "
                r"Too many open files \(EMFILE\); retrying in 0\.1 s",
                timeout=10,
                start=mark,
            )
            exhausted_at = time.monotonic()
            cpu_before = _cpu_seconds(worker)

            # A connection past the limit waits in the queue: not reset,
            # not answered.
            probe = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            probe.sendall(REQUEST)
            probe.settimeout(0.5)
            with pytest.raises(TimeoutError):
                probe.recv(1, socket.MSG_PEEK)

            # A connection opened before keeps being served.
            first.sendall(REQUEST)
            assert _answered(first, 5)

            remaining = EXHAUSTED_FOR - (time.monotonic() - exhausted_at)
            time.sleep(max(remaining, 0))  # the measurement window, not a wait
            wall = time.monotonic() - exhausted_at
            cpu = _cpu_seconds(worker) - cpu_before
            assert cpu < 0.5 * wall, f"worker used {cpu:.2f} s CPU in {wall:.2f} s"
            assert len(held) == HELD

        # Descriptors are free again: the queued probe gets its answer.
        with probe:
            assert _answered(probe, 10)
        response = httpx.get(server.url, timeout=10)
        assert response.status_code == 200
        assert response.text == "ok"
        server.wait_for_log(r"\[INFO\] Accepting connections on \S+ again after", start=mark)

    log = server.lines[mark:]
    errors = [line for line in log if "Cannot accept connections" in line]
    assert len(errors) == 1, "\n".join(errors)
    assert not [line for line in log if "Traceback" in line], "\n".join(log)
    assert server.worker_pids() == {pid}, "\n".join(log)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_connections_and_failed_handshakes(tmp_path: Path, serve: Serve) -> None:
    cert, key = _self_signed(tmp_path)
    server = serve(HELLO_APP, "-w", "1", "--certfile", str(cert), "--keyfile", str(key))
    assert server.url.startswith("https://")
    mark = len(server.lines)
    # Handshakes that fail: plain HTTP on the TLS port, and a client that
    # hangs up right after connecting.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as plain:
        plain.sendall(REQUEST)
        plain.settimeout(5)
        with contextlib.suppress(ConnectionError):
            while plain.recv(4096):
                pass
    socket.create_connection(("127.0.0.1", server.port), timeout=5).close()

    context = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(verify=context, timeout=10) as client:
        for _ in range(3):
            response = client.get(server.url, headers={"Connection": "close"})
            assert response.status_code == 200
    log = server.lines[mark:]
    assert not [line for line in log if "Traceback" in line or "exception" in line], log
