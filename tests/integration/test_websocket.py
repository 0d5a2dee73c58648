"""WebSockets through a real server, with the `websockets` client and raw sockets.

The raw-socket helpers speak just enough RFC 6455 to send what a well-behaved
client never would (bad UTF-8, unmasked frames, no pongs) and to look at the
frames exactly as the server wrote them (RSV1 for compression, close codes).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Response

from tests.integration.test_accept import _self_signed
from tests.server import Server, control, run_server

APP = "tests.apps.ws_app:app"
T = TypeVar("T")
LOG_FORMAT = '"%(r)s" %(s)s %(W)s %(L)s'


@pytest.fixture(scope="module")
def access_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws") / "access.log"


@pytest.fixture(scope="module")
def server(access_log: Path) -> Iterator[Server]:
    args = ("-w", "1", "--access-logfile", str(access_log), "--access-logformat", LOG_FORMAT)
    with run_server(APP, *args) as srv:
        yield srv


@pytest.fixture(scope="module")
def strict() -> Iterator[Server]:
    """Pings every second, a 1 s pong deadline, 64 KiB messages."""
    args = ("--ws-ping-interval", "1", "--ws-ping-timeout", "1", "--ws-max-size", "64K")
    with run_server(APP, *args) as srv:
        yield srv


def ws_url(server: Server, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


# -- raw RFC 6455 ------------------------------------------------------------------


def raw_handshake(server: Server, path: str = "/echo") -> socket.socket:
    return handshake_with(server, path)[0]


def handshake_with(server: Server, path: str, extensions: str = "") -> tuple[socket.socket, str]:
    """A raw WebSocket connection after the 101, and the 101's head (lower-cased)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
    key = base64.b64encode(os.urandom(16)).decode()
    ext = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock, head.decode().lower()


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    key = os.urandom(4) if mask else b""
    size = len(payload)
    mask_bit = 0x80 if mask else 0
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if mask:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + payload


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, int, bytes]:
    """(first byte, opcode, payload) of the next frame the server wrote (never masked)."""
    first, second = recv_exact(sock, 2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", recv_exact(sock, 2))
    elif size == 127:
        (size,) = struct.unpack("!Q", recv_exact(sock, 8))
    return first, first & 0x0F, recv_exact(sock, size)


def read_close(sock: socket.socket) -> int:
    """Read frames until the close frame; its code."""
    while True:
        _, opcode, payload = read_frame(sock)
        if opcode == 0x8:
            return int(struct.unpack("!H", payload[:2])[0])


# -- echo, fragments, scope ----------------------------------------------------------


def test_text_and_binary_echo(server: Server) -> None:
    async def go() -> None:
        async with connect(ws_url(server, "/echo")) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"

    run(go())


def test_frames_split_and_mixed_in_any_way_are_all_answered(server: Server) -> None:
    """Simple frames (the fast path) mixed with pings and frames cut anywhere."""
    with raw_handshake(server) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        long_text = "é" * 200  # a 16-bit length
        stream = (
            frame(0x1, b"a")
            + frame(0x9, b"ping!")
            + frame(0x2, b"\x00b")
            + frame(0x1, long_text.encode())
            + frame(0x1, b"c")
        )
        for cut in (0, 1, 5, 7, 9, 20, len(stream) - 3):
            sock.sendall(stream[:cut])
            time.sleep(0.05)  # so the server reads the two parts separately, mostly
            sock.sendall(stream[cut:])
            replies = [read_frame(sock)[1:] for _ in range(5)]
            # The pong may overtake echoes that wait for the app: only messages keep order.
            assert (0xA, b"ping!") in replies, cut
            assert [reply for reply in replies if reply[0] != 0xA] == [
                (0x1, b"a"),
                (0x2, b"\x00b"),
                (0x1, long_text.encode()),
                (0x1, b"c"),
            ], cut


def test_a_16_mib_fragmented_message(server: Server) -> None:
    message = os.urandom(2**20) * 16  # exactly --ws-max-size's default

    async def go() -> None:
        async with connect(ws_url(server, "/echo"), max_size=None, compression=None) as ws:
            await ws.send([message[i : i + 65536] for i in range(0, len(message), 65536)])
            assert await ws.recv() == message
            text = "ü" * (2**20)  # a two-byte character split across fragment edges
            await ws.send([text[i : i + 1001] for i in range(0, len(text), 1001)])
            assert await ws.recv() == text

    run(go())


def test_scope_subprotocol_and_accept_headers(server: Server) -> None:
    async def go() -> tuple[str, str | None, str | None]:
        async with connect(ws_url(server, "/scope?x=1"), subprotocols=["a", "b"]) as ws:  # type: ignore[list-item]
            assert ws.response is not None
            extra = ws.response.headers.get("x-extra")
            return str(await ws.recv()), ws.subprotocol, extra

    text, subprotocol, extra = run(go())
    assert subprotocol == "b"  # the app picked the last offered one
    assert extra == "yes"
    for field in (
        "('type', 'websocket')",
        "('subprotocols', ['a', 'b'])",
        "('scheme', 'ws')",
        "('path', '/scope')",
        "('query_string', b'x=1')",
        "('extensions', {'websocket.http.response': {}})",
        "('http_version', '1.1')",
    ):
        assert field in text


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_wss(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with run_server(APP, "--certfile", str(cert), "--keyfile", str(key)) as srv:
        context = ssl.create_default_context(cafile=str(cert))
        url = srv.url.replace("https://", "wss://")

        async def go() -> tuple[str, str]:
            async with connect(url + "/scope", ssl=context) as ws:
                scope = str(await ws.recv())
            async with connect(url + "/echo", ssl=context, max_size=None) as ws:
                await ws.send("x" * 2**20)
                return scope, str(await ws.recv())

        scope, echoed = run(go())
        assert "('scheme', 'wss')" in scope
        assert echoed == "x" * 2**20


# -- compression -----------------------------------------------------------------------


def test_permessage_deflate_is_negotiated_and_used(server: Server) -> None:
    sock, head = handshake_with(server, "/echo", "permessage-deflate; client_max_window_bits")
    with sock:
        assert "sec-websocket-extensions: permessage-deflate" in head
        assert "server_max_window_bits=12" in head
        sock.sendall(frame(0x1, b"a" * 10000))  # uncompressed: a sender may choose
        first, opcode, payload = read_frame(sock)
        assert opcode == 0x1
        assert first & 0x40, "RSV1: the server compressed its reply"
        assert len(payload) < 200

    async def go() -> str:
        async with connect(ws_url(server, "/echo")) as ws:  # the client compresses too
            await ws.send("z" * 100000)
            return str(await ws.recv())

    assert run(go()) == "z" * 100000


def test_window_bits_follow_the_client(server: Server) -> None:
    offer = "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"
    sock, head = handshake_with(server, "/echo", offer)
    with sock:
        assert "server_max_window_bits=10" in head
        assert "client_max_window_bits=9" in head


# -- close codes -------------------------------------------------------------------------


def last_disconnect(server: Server) -> str:
    async def go() -> str:
        async with connect(ws_url(server, "/last-disconnect")) as ws:
            return str(await ws.recv())

    return str(run(go()))


def test_client_close_code_and_reason_reach_the_app(server: Server) -> None:
    async def go() -> None:
        async with connect(ws_url(server, "/report")) as ws:
            await ws.close(4321, "bye now")

    run(go())
    expected = {"type": "websocket.disconnect", "code": 4321, "reason": "bye now"}
    assert last_disconnect(server) == repr(expected)


def test_a_dropped_connection_is_1006(server: Server) -> None:
    sock = raw_handshake(server, "/report")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST, no close frame
    deadline = time.monotonic() + 10
    while "1006" not in (text := last_disconnect(server)) and time.monotonic() < deadline:
        pass
    assert "'code': 1006" in text


def test_an_app_accepting_after_the_client_left_gets_an_oserror(server: Server) -> None:
    mark = len(server.lines)
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /late-accept HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
    deadline = time.monotonic() + 10
    while "late-accept" not in (text := last_disconnect(server)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert text == repr({"late-accept": "ClientDisconnected"})
    assert not [line for line in server.lines[mark:] if "Traceback" in line]


def test_app_close_code_and_reason_reach_the_client(server: Server) -> None:
    async def go() -> ConnectionClosed:
        async with connect(ws_url(server, "/echo")) as ws:
            await ws.send("close-me")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value

    closed = run(go())
    assert isinstance(closed, ConnectionClosed)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4001, "asked to")


def test_an_app_that_returns_while_open_closes_with_1000(server: Server) -> None:
    with raw_handshake(server, "/return") as sock:
        assert read_frame(sock)[1:] == (0x1, b"bye")
        assert read_close(sock) == 1000


def test_an_app_that_raises_after_accepting_closes_with_1011(server: Server) -> None:
    with raw_handshake(server, "/crash-after") as sock:
        assert read_close(sock) == 1011
    server.wait_for_log("boom after accept")


def test_a_close_between_fragments_is_echoed(server: Server) -> None:
    """RFC 6455 5.4 allows control frames between fragments (Autobahn case 7.1.5)."""
    with raw_handshake(server) as sock:
        sock.sendall(frame(0x1, b"fragment1", fin=False))
        sock.sendall(frame(0x8, struct.pack("!H", 1000)))
        assert read_close(sock) == 1000


def test_invalid_utf8_is_1007(server: Server) -> None:
    with raw_handshake(server) as sock:
        sock.sendall(frame(0x1, b"ok\xc3", fin=False))  # incomplete is fine so far
        sock.sendall(frame(0x0, b"\x28"))  # ... but this is not a continuation byte
        assert read_close(sock) == 1007


def test_protocol_violations_are_1002(server: Server) -> None:
    for bad in (
        frame(0x1, b"x", mask=False),  # clients must mask
        frame(0x3, b"x"),  # reserved opcode
        frame(0x0, b"x"),  # continuation of nothing
        frame(0x9, b"x", fin=False),  # fragmented control frame
    ):
        with raw_handshake(server) as sock:
            sock.sendall(bad)
            assert read_close(sock) == 1002, bad


def test_a_message_over_the_limit_is_1009(strict: Server) -> None:
    async def go() -> ConnectionClosed:
        async with connect(ws_url(strict, "/echo")) as ws:
            await ws.send(b"x" * 65536)  # the limit itself is fine
            assert len(await ws.recv()) == 65536
            await ws.send([b"x" * 40000, b"x" * 40000])  # fragments add up
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value

    closed = run(go())
    assert isinstance(closed, ConnectionClosed)
    assert closed.rcvd is not None and closed.rcvd.code == 1009


# -- pings -------------------------------------------------------------------------------


def test_server_pings_and_a_client_that_pongs_stays(strict: Server) -> None:
    with raw_handshake(strict) as sock:
        _, opcode, payload = read_frame(sock)
        assert opcode == 0x9  # ping, within about a second
        sock.sendall(frame(0xA, payload))

    async def go() -> str:
        async with connect(ws_url(strict, "/echo"), ping_interval=None) as ws:
            await asyncio.sleep(4)  # several ping periods; the client answers each
            await ws.send("still here")
            return str(await ws.recv())

    assert run(go()) == "still here"


def test_no_pong_closes_with_1011(strict: Server) -> None:
    with raw_handshake(strict) as sock:
        started = time.monotonic()
        assert read_close(sock) == 1011  # pings go unanswered
        assert time.monotonic() - started < 8


# -- refusing ----------------------------------------------------------------------------


def refusal(server: Server, path: str) -> Response:
    """The HTTP response that refused a WebSocket handshake."""

    async def go() -> None:
        async with connect(ws_url(server, path)):
            pass

    with pytest.raises(InvalidStatus) as info:
        run(go())
    return info.value.response


def test_closing_before_accept_is_403(server: Server) -> None:
    assert refusal(server, "/refuse").status_code == 403


def test_denial_response(server: Server) -> None:
    response = refusal(server, "/deny")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Token"
    assert response.body == b"no token"


def test_an_app_that_fails_before_accepting_gives_500(server: Server) -> None:
    assert refusal(server, "/crash-before").status_code == 500


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ("Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key"),
        ("Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key"),
        ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n", "Version"),
    ],
)
def test_an_invalid_handshake_is_400_and_closes(server: Server, extra: str, why: str) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(
            f"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"{extra}\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in data.lower()
    assert why.encode() in data


def test_an_upgrade_pipelined_behind_a_request_is_400(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(
            b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 400 " in data
    assert b"pipelined" in data


def test_other_upgrades_are_ordinary_requests(server: Server) -> None:
    response = httpx.get(server.url + "/plain", headers={"Upgrade": "h2c", "Connection": "Upgrade"})
    assert response.status_code == 200
    assert response.text == "http /plain"


def test_ws_none_serves_websocket_upgrades_as_http() -> None:
    with run_server(APP, "--ws", "none") as srv:
        headers = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        }
        response = httpx.get(srv.url + "/echo", headers=headers)
        assert (response.status_code, response.text) == (200, "http /echo")


def test_wsgi_apps_get_upgrade_requests_as_ordinary_requests() -> None:
    with run_server("examples.wsgi_hello:application") as srv:
        for upgrade in ("websocket", "h2c"):
            headers = {"Upgrade": upgrade, "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
            response = httpx.get(srv.url, headers={**headers, "Sec-WebSocket-Key": "a" * 24})
            assert response.status_code == 200


# -- flow control ------------------------------------------------------------------------


def worker_rss(server: Server) -> int:
    return sum(psutil.Process(pid).memory_info().rss for pid in server.worker_pids())


@pytest.fixture(scope="module")
def backpressure() -> Iterator[Server]:
    """For apps that never return (/hold, /flood): a short graceful stop ends them."""
    with run_server(APP, "-w", "1", "--graceful-timeout", "1") as srv:
        yield srv


def test_an_app_that_does_not_receive_stops_the_client(backpressure: Server) -> None:
    server = backpressure
    before = worker_rss(server)

    async def go() -> int:
        sent = 0
        async with connect(ws_url(server, "/hold"), compression=None, write_limit=2**16) as ws:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    while sent < 400:
                        await ws.send(b"x" * 2**20)
                        sent += 1
            # The stalled client gives up: a closing handshake would sit behind
            # the unsent megabytes (websockets waits 15 s for it).
            ws.transport.abort()
        return sent

    sent = run(go())
    assert isinstance(sent, int)
    assert sent < 400, "the server kept reading for an app that does not receive"
    assert worker_rss(server) - before < 64 * 2**20


def test_a_client_that_does_not_read_stalls_the_app(backpressure: Server) -> None:
    server = backpressure
    before = worker_rss(server)
    with raw_handshake(server, "/flood") as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        time.sleep(3)  # the app sends 1 MiB messages as fast as it may, for 3 s
        grown = worker_rss(server) - before
    assert grown < 64 * 2**20, f"worker grew {grown >> 20} MiB for a client that does not read"


# -- access log ------------------------------------------------------------------------


def test_one_access_log_line_per_session(server: Server, access_log: Path) -> None:
    async def go() -> None:
        async with connect(ws_url(server, "/echo?log=1")) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(1000)

    run(go())
    deadline = time.monotonic() + 10  # the log is flushed once a second
    while time.monotonic() < deadline:
        lines = [line for line in access_log.read_text().splitlines() if "/echo?log=1" in line]
        if lines:
            break
        time.sleep(0.2)
    assert len(lines) == 1
    assert lines[0].startswith('"GET /echo?log=1 HTTP/1.1" 101 1000 ')


# -- many sessions, reload, stop -------------------------------------------------------------


def test_500_sessions_on_2_workers() -> None:
    with run_server(APP, "-w", "2") as srv:

        async def one(index: int) -> None:
            async with connect(ws_url(srv, "/echo"), open_timeout=30) as ws:
                await ws.send(f"n{index}")
                assert await ws.recv() == f"n{index}"
                await barrier.wait()

        async def go() -> None:
            await asyncio.gather(*(one(i) for i in range(500)))

        barrier = asyncio.Barrier(500)  # every session is open at the same time
        run(go())


async def open_sessions(server: Server, count: int) -> list[ClientConnection]:
    return list(await asyncio.gather(*(connect(ws_url(server, "/echo")) for _ in range(count))))


async def close_codes(sessions: list[ClientConnection]) -> list[int | None]:
    async def code(ws: ClientConnection) -> int | None:
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()
        return ws.close_code

    return list(await asyncio.gather(*(code(ws) for ws in sessions)))


def test_a_reload_closes_open_sessions_with_1012(tmp_path: Path) -> None:
    with run_server(APP, "-w", "2", "--ws-shutdown-grace", "0.5") as srv:

        async def go() -> list[int | None]:
            sessions = await open_sessions(srv, 20)
            srv.signal(signal.SIGHUP)
            codes = await close_codes(sessions)
            async with connect(ws_url(srv, "/echo")) as ws:  # the new workers serve
                await ws.send("after")
                assert await ws.recv() == "after"
            return codes

        started = time.monotonic()
        assert run(go()) == [1012] * 20
        assert time.monotonic() - started < 20


def test_a_stop_closes_open_sessions_with_1001() -> None:
    with run_server(APP, "-w", "2", "--ws-shutdown-grace", "0.5") as srv:

        async def go() -> list[int | None]:
            sessions = await open_sessions(srv, 20)
            srv.signal(signal.SIGTERM)
            return await close_codes(sessions)

        assert run(go()) == [1001] * 20
        assert srv.wait(20) == 0


def test_status_counts_open_websockets_per_worker(tmp_path: Path) -> None:
    sock = str(tmp_path / "control.sock")
    with run_server(APP, "-w", "2", "--control-socket", sock) as srv:

        def open_per_worker() -> list[int]:
            status = json.loads(control("status", "--socket", sock, "--json").stdout)
            return [w["websockets"] for w in status["workers"]]

        async def go() -> list[int]:
            sessions = await open_sessions(srv, 7)
            deadline = time.monotonic() + 15  # heartbeats come once a second
            while sum(counts := open_per_worker()) != 7 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            for ws in sessions:
                await ws.close()
            return counts

        assert sum(run(go())) == 7
        text = control("status", "--socket", sock).stdout
        assert " WS " in text


def test_a_client_that_ignores_the_close_does_not_hold_a_reload() -> None:
    args = ("-w", "1", "--ws-shutdown-grace", "0.5", "--graceful-timeout", "3")
    with run_server(APP, *args) as srv:
        (old_worker,) = srv.worker_pids()
        with raw_handshake(srv, "/hold") as sock:  # never answers the close frame
            started = time.monotonic()
            srv.signal(signal.SIGHUP)
            assert read_close(sock) == 1012
            psutil.Process(old_worker).wait(timeout=15)
            assert time.monotonic() - started < 10  # the graceful timeout, not forever


def test_a_trusted_proxys_forwarded_headers_reach_the_scope(server: Server) -> None:
    # 127.0.0.1 is trusted by default: a TLS-terminating proxy's word holds.
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}

    async def go() -> str:
        async with connect(ws_url(server, "/scope"), additional_headers=headers) as ws:
            return str(await ws.recv())

    text = run(go())
    assert "('scheme', 'wss')" in text
    assert "('client', ('203.0.113.7', 0))" in text, text
