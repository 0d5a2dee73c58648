"""The HTTP engine against real sockets: flow control, memory bounds, connection lifecycle.

Each test runs on a real server (tests/server.py) in up to three modes:
inline WSGI (the default), WSGI on a thread pool (--threads 4) and ASGI.
The app is tests/apps/engine_app.py.  One worker per server (-w 1), so the
worker pid is the process whose memory is watched and whose survival is
checked.  Byte-exact framing (pipelining, chunked, HEAD, close-delimited) is
checked on raw sockets; curl stands in for a real client where the point is
interoperability (Expect: 100-continue, curl -I).

Protocol details against a fake transport are in tests/unit/test_protocol.py
(the protocol layer alone) and tests/unit/test_interfaces.py (with ASGI and
WSGI apps), hostile input in test_corpus.py, framework semantics in
test_frameworks.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Final

import httpx
import psutil
import pytest

from tests.apps.engine_app import PIECE, stream_chunks
from tests.responses import Response, ResponseReader
from tests.server import Server, SharedServers

MIB: Final = 1 << 20
BIG: Final = 200 * MIB
# What a worker may grow by while 200 MiB pass through it: a few socket-sized
# buffers and allocator noise, far below the payload.
RSS_BUDGET: Final = 30 * MIB
IO_TIMEOUT: Final = 15.0

WSGI_APP: Final = "tests.apps.engine_app:wsgi_app"
ASGI_APP: Final = "tests.apps.engine_app:asgi_app"
MODES: Final = {
    "inline": (WSGI_APP,),
    "threads": (WSGI_APP, "--threads", "4"),
    "asgi": (ASGI_APP,),
}
# A short graceful timeout: stopping a server never waits long for an app
# that a failing test left hanging.
KINDS: Final = {
    "main": ("-w", "1", "--graceful-timeout", "1"),
    "short": ("-w", "1", "--graceful-timeout", "1", "--keep-alive", "1", "--send-timeout", "2"),
}
ALL_MODES: Final = list(MODES)


def engine(shared_server: SharedServers, mode: str, kind: str = "main") -> Server:
    """The module's server for a mode (inline, threads, asgi) and a kind of settings."""
    return shared_server(*MODES[mode], *KINDS[kind])


@pytest.fixture(scope="module")
def big_digest() -> str:
    digest = hashlib.sha256()
    for chunk in stream_chunks(BIG, PIECE):
        digest.update(chunk)
    return digest.hexdigest()


# -- raw HTTP client ------------------------------------------------------------


class Conn:
    """A raw client socket, read through the suite's strict response parser."""

    def __init__(self, server: Server) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
        self.reader = ResponseReader(self.sock, IO_TIMEOUT)

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self) -> Response:
        return self.reader.read_head()

    def response(self, method: str = "GET", interim: bool = False) -> Response:
        """The next response; 1xx ones are skipped unless `interim`."""
        response = self.reader.read(no_body=method == "HEAD")
        while response.status < 200 and not interim:
            response = self.reader.read(no_body=method == "HEAD")
        return response

    def count_body(self, size: int) -> tuple[int, str]:
        """Read `size` body bytes in big pieces: how many arrived, and their sha256."""
        digest = hashlib.sha256()
        got = 0
        while got < size:
            data = self.reader.take(min(MIB, size - got))
            if not data:
                break
            digest.update(data)
            got += len(data)
        return got, digest.hexdigest()

    def read_until_closed(self) -> int:
        """Bytes received until the server closes (EOF or reset)."""
        got = 0
        while data := self.reader.take(MIB):
            got += len(data)
        return got


def request(method: str, target: str, body: bytes = b"", version: str = "1.1") -> bytes:
    head = f"{method} {target} HTTP/{version}\r\nHost: test\r\n"
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def chunked(pieces: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


def worker(server: Server) -> psutil.Process:
    (pid,) = server.worker_pids()
    return psutil.Process(pid)


def get_pid(server: Server) -> int:
    response = httpx.get(server.url + "/pid", timeout=IO_TIMEOUT)
    assert response.status_code == 200
    return int(response.text)


class RssPeak:
    """Sample a process's RSS every 10 ms on a thread; `growth` is peak minus start."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.start = proc.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            with contextlib.suppress(psutil.NoSuchProcess):
                self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.start


# -- 1. slow readers --------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_slow_reader_pauses_the_app(
    shared_server: SharedServers, mode: str, big_digest: str
) -> None:
    server = engine(shared_server, mode)
    proc = worker(server)
    with Conn(server) as conn, RssPeak(proc) as rss:
        conn.send(request("GET", f"/stream?total={BIG}"))
        # The point of the test: the client reads nothing for a while.  With
        # flow control the app is parked once the socket buffers are full.
        time.sleep(2)
        stalled = rss.peak - rss.start
        response = conn.head()
        assert response.status == 200
        assert response.header(b"content-length") == b"%d" % BIG
        got, digest = conn.count_body(BIG)
    assert stalled < RSS_BUDGET, f"worker grew {stalled / MIB:.1f} MiB while the client stalled"
    assert rss.growth < RSS_BUDGET, f"worker grew {rss.growth / MIB:.1f} MiB"
    assert got == BIG
    assert digest == big_digest
    assert get_pid(server) == proc.pid


@pytest.mark.parametrize("mode", ALL_MODES)
def test_send_timeout_closes_a_client_that_never_reads(
    shared_server: SharedServers, mode: str
) -> None:
    server = engine(shared_server, mode, "short")
    pid = get_pid(server)
    mark = len(server.lines)
    with Conn(server) as conn:
        sent = time.monotonic()
        conn.send(request("GET", f"/stream?total={BIG}"))
        # Another client is served while this one is stuck.
        assert get_pid(server) == pid
        server.wait_for_log(r"client stopped reading", timeout=8, start=mark)
        elapsed = time.monotonic() - sent
        assert get_pid(server) == pid
        received = conn.read_until_closed()
    # --send-timeout 2, checked by a once-a-second sweep.
    assert elapsed < 4.5, f"closed after {elapsed:.1f}s"
    assert received < BIG


# -- 2. large uploads ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_large_chunked_upload_keeps_memory_flat(
    shared_server: SharedServers, mode: str, big_digest: str
) -> None:
    # Inline WSGI collects the body before the app runs: in a temporary file
    # past 1 MiB.  The others stream it to the app, pausing the socket.
    server = engine(shared_server, mode)
    proc = worker(server)
    with Conn(server) as conn, RssPeak(proc) as rss:
        conn.send(b"POST /hash HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in stream_chunks(BIG, PIECE):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        response = conn.response()
    assert response.status == 200
    assert json.loads(response.body) == {"sha256": big_digest, "length": BIG}
    assert rss.growth < RSS_BUDGET, f"worker grew {rss.growth / MIB:.1f} MiB"


# -- 3. disconnect ---------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    ["reset", "close"],
)
def test_asgi_app_sees_disconnect(shared_server: SharedServers, how: str) -> None:
    server = engine(shared_server, "asgi")

    def wait_seen(expected: list[str]) -> list[str]:
        deadline = time.monotonic() + 3
        while True:
            response = httpx.get(f"{server.url}/seen?id={how}", timeout=IO_TIMEOUT)
            got: list[str] = response.json()
            if got == expected or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    with Conn(server) as conn:
        conn.send(request("POST", f"/wait-disconnect?id={how}", b"abc"))
        assert wait_seen(["waiting"]) == ["waiting"]
        if how == "reset":
            # SO_LINGER 0: close() sends RST instead of FIN.
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert wait_seen(["waiting", "http.disconnect"]) == ["waiting", "http.disconnect"]


# -- 4. pipelining -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_pipelined_requests_in_one_send(shared_server: SharedServers, mode: str) -> None:
    server = engine(shared_server, mode)
    batch = []
    expected = []
    for i in range(10):
        if i % 3 == 1:
            body = b"body-%d;" % i * (i * 500)  # up to ~40 KiB: several reads
            batch.append(request("POST", f"/echo?i={i}", body))
            expected.append(b"POST i=%d " % i + body)
        elif i % 3 == 2:
            body = b"chunked-%d" % i
            head = f"PUT /echo?i={i} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
            batch.append(head.encode() + chunked([body[:3], body[3:]]))
            expected.append(b"PUT i=%d " % i + body)
        else:
            batch.append(request("GET", f"/echo?i={i}"))
            expected.append(b"GET i=%d " % i)
    with Conn(server) as conn:
        conn.send(b"".join(batch))
        bodies = []
        for _ in range(10):
            response = conn.response()
            assert response.status == 200
            bodies.append(response.body)
    assert bodies == expected


# -- 5. chunked both ways -------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_chunked_request_echoed_chunked(shared_server: SharedServers, mode: str) -> None:
    server = engine(shared_server, mode)
    pieces = [b"a" * 10, b"b" * 70000, b"c"]
    head = b"POST /echo%s HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    with Conn(server) as conn:
        conn.send(head % b"" + chunked(pieces))
        fixed = conn.response()
        conn.send(head % b"?stream=1" + chunked(pieces))
        streamed = conn.response()
    assert fixed.status == streamed.status == 200
    assert fixed.header(b"content-length") == b"%d" % len(fixed.body)
    assert fixed.body == b"POST  " + b"".join(pieces)
    assert streamed.header(b"transfer-encoding") == b"chunked"
    assert streamed.header(b"content-length") is None
    assert streamed.body == b"POST stream=1 " + b"".join(pieces)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_http10_stream_is_close_delimited(shared_server: SharedServers, mode: str) -> None:
    server = engine(shared_server, mode)
    body = b"x" * 100000
    with Conn(server) as conn:
        conn.send(request("POST", "/echo?stream=1", body, version="1.0"))
        response = conn.response()  # no framing headers: reads until the server closes
    assert response.status == 200
    assert response.header(b"transfer-encoding") is None
    assert response.header(b"content-length") is None
    assert response.body == b"POST stream=1 " + body


# -- 6. Expect: 100-continue -------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_expect_continue_with_curl(shared_server: SharedServers, mode: str, tmp_path: Path) -> None:
    server = engine(shared_server, mode)
    payload = bytes(range(256)) * 8192  # 2 MiB
    upload = tmp_path / "upload.bin"
    upload.write_bytes(payload)
    started = time.monotonic()
    # A long --expect100-timeout: curl must not fall back to sending anyway.
    result = subprocess.run(
        [
            *("curl", "-sS", "-v", "--expect100-timeout", "20"),
            *("-H", "Expect: 100-continue", "--data-binary", f"@{upload}"),
            f"{server.url}/hash",
        ],
        capture_output=True,
        text=True,
        timeout=IO_TIMEOUT,
        check=True,
    )
    elapsed = time.monotonic() - started
    assert "< HTTP/1.1 100 Continue" in result.stderr
    assert json.loads(result.stdout) == {
        "sha256": hashlib.sha256(payload).hexdigest(),
        "length": len(payload),
    }
    assert elapsed < 5


def test_asgi_rejection_needs_no_body(shared_server: SharedServers) -> None:
    server = engine(shared_server, "asgi")
    with Conn(server) as conn:
        conn.reader.timeout = 3
        conn.send(
            b"POST /reject HTTP/1.1\r\nHost: test\r\nContent-Length: 10000000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        response = conn.response(interim=True)
        assert response.status == 413
        assert response.body == b"too large"
        # The announced body never came, so it cannot be skipped: the server closes.
        assert conn.read_until_closed() == 0


# -- 7. HEAD ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_head_with_curl_and_raw(shared_server: SharedServers, mode: str) -> None:
    server = engine(shared_server, mode)
    result = subprocess.run(
        ["curl", "-sS", "-I", f"{server.url}/fixed"],
        capture_output=True,
        text=True,
        timeout=IO_TIMEOUT,
        check=True,
    )
    assert result.stdout.startswith("HTTP/1.1 200")
    assert "content-length: 5\n" in result.stdout.lower()
    # On a raw keep-alive connection: a body after a HEAD response would be
    # read as the next status line.
    with Conn(server) as conn:
        conn.send(request("HEAD", "/fixed") + request("HEAD", f"/stream?total={MIB}"))
        conn.send(request("GET", "/fixed"))
        fixed = conn.response("HEAD")
        streamed = conn.response("HEAD")
        after = conn.response()
    assert fixed.header(b"content-length") == b"5"
    assert streamed.header(b"content-length") == b"%d" % MIB
    assert after.status == 200
    assert after.body == b"hello"


# -- 8. keep-alive ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_idle_keep_alive_connection_closed(shared_server: SharedServers, mode: str) -> None:
    server = engine(shared_server, mode, "short")
    # Responses staggered over one second, so they land at every phase of the
    # server's once-a-second sweep.
    idle: list[float] = []

    def one(delay: float) -> None:
        time.sleep(delay)
        with Conn(server) as conn:
            conn.send(request("GET", "/fixed"))
            assert conn.response().body == b"hello"
            answered = time.monotonic()
            assert conn.read_until_closed() == 0
            idle.append(time.monotonic() - answered)

    threads = [threading.Thread(target=one, args=(i / 5,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(IO_TIMEOUT)
    assert len(idle) == len(threads)
    # --keep-alive 1, checked by a once-a-second sweep: between 1 and 2 s.
    assert min(idle) > 0.9 and max(idle) < 2.5, f"closed after {sorted(idle)} s idle"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_two_hundred_requests_on_one_connection(shared_server: SharedServers, mode: str) -> None:
    server = engine(shared_server, mode)
    with Conn(server) as conn:
        for i in range(200):
            if i % 2:
                body = b"%d" % i
                conn.send(request("POST", f"/echo?i={i}", body))
                expected = b"POST i=%d %s" % (i, body)
            else:
                conn.send(request("GET", f"/echo?i={i}"))
                expected = b"GET i=%d " % i
            response = conn.response()
            assert (response.status, response.body) == (200, expected), i
            assert response.header(b"connection") != b"close"


# -- 9. app exceptions -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_exception_before_start_is_500_worker_survives(
    shared_server: SharedServers, mode: str
) -> None:
    server = engine(shared_server, mode)
    pid = get_pid(server)
    with Conn(server) as conn:
        conn.send(request("GET", "/boom"))
        response = conn.response()
        assert response.status == 500
        # The app's state is unknown after a failure: this connection ends.
        assert response.header(b"connection") == b"close"
        assert conn.read_until_closed() == 0
    assert get_pid(server) == pid


@pytest.mark.parametrize("mode", ALL_MODES)
def test_exception_mid_stream_closes_connection(shared_server: SharedServers, mode: str) -> None:
    server = engine(shared_server, mode)
    pid = get_pid(server)
    with Conn(server) as conn:
        conn.send(request("GET", "/boom-late"))
        response = conn.head()
        assert response.status == 200
        assert response.header(b"transfer-encoding") == b"chunked"
        rest = conn.reader.rest()  # until the server closes
    assert b"partial-2" in rest
    assert not rest.endswith(b"0\r\n\r\n"), "a broken response must not look complete"
    assert get_pid(server) == pid
