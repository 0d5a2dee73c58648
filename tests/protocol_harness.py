"""Drive prefork's HTTP engine without sockets: a fake transport and a real event loop.

    out = run_exchange(app, b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
    out.responses[0].status == 200

Bytes go in through `data_received` exactly as the event loop would deliver
them (optionally split), and everything written comes back parsed with
httptools' response parser.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import uvloop

from prefork.config import Config
from prefork.http.connection import HttpConnection
from prefork.http.server import ServerState
from prefork.loader import LoadedApp, detect


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0


@dataclass
class Response:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = False

    def header(self, name: bytes) -> bytes | None:
        values = [v for n, v in self.headers if n.lower() == name]
        return values[0] if values else None


@dataclass
class Outcome:
    raw: bytes
    responses: list[Response]
    closed: bool

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]


def parse_responses(raw: bytes, head_requests: int = 0) -> list[Response]:
    """Split the bytes written into responses (1xx interim ones included).

    A strict little reader rather than httptools: it must keep going after a
    `Connection: close` response, and it must know HEAD responses have no body.
    The first `head_requests` final responses are taken as answers to HEAD.
    """
    responses = []
    data = raw
    while data:
        head, sep, data = data.partition(b"\r\n\r\n")
        if not sep:
            break
        status_line, *lines = head.split(b"\r\n")
        response = Response(status=int(status_line.split(b" ")[1]))
        for line in lines:
            name, _, value = line.partition(b":")
            response.headers.append((name, value.strip()))
        responses.append(response)
        if response.status < 200 or response.status in (204, 304):
            response.complete = True
            continue
        if head_requests:
            head_requests -= 1
            response.complete = True
            continue
        length = response.header(b"content-length")
        if response.header(b"transfer-encoding") == b"chunked":
            body = bytearray()
            while True:
                size_line, sep, data = data.partition(b"\r\n")
                if not sep:
                    break
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    data = data[2:]
                    response.complete = True
                    break
                body += data[:size]
                data = data[size + 2 :]
            response.body = bytes(body)
        elif length is not None:
            response.body, data = data[: int(length)], data[int(length) :]
            response.complete = len(response.body) == int(length)
        else:
            response.body, data = data, b""
    return responses


def make_config(app: str = "tests:app", **settings: Any) -> Config:
    return dataclasses.replace(Config(app=app), **settings)


def run_exchange(
    app: Any,
    data: bytes | Sequence[bytes],
    *,
    interface: str | None = None,
    head_requests: int = 0,
    max_rounds: int = 200,
    **settings: Any,
) -> Outcome:
    """Feed `data` (one bytes, or a sequence of pieces) and run the loop until it settles."""
    chunks = [data] if isinstance(data, bytes) else list(data)
    kind = interface or ("asgi" if detect(app) != "wsgi" else "wsgi")
    loaded = LoadedApp(app, "asgi" if kind != "wsgi" else "wsgi", True, kind)
    config = make_config(**settings)

    async def main() -> Outcome:
        state = ServerState(config, loaded, asyncio.get_running_loop(), {}, 1)
        conn = HttpConnection(state)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        for chunk in chunks:
            # A real transport delivers nothing while reading is paused.
            for _ in range(max_rounds):
                if transport.reading or transport.closed:
                    break
                await asyncio.sleep(0)
            if transport.closed or not transport.reading:
                break
            conn.data_received(chunk)
            await _settle(conn, transport, max_rounds)
        await _settle(conn, transport, max_rounds)
        if transport.closed:
            conn.connection_lost(None)
        return Outcome(
            bytes(transport.written),
            parse_responses(bytes(transport.written), head_requests),
            transport.closed,
        )

    return uvloop.run(main())


async def _settle(conn: HttpConnection, transport: FakeTransport, rounds: int) -> None:
    """Let tasks run until nothing is pending on the connection (bounded)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
        if not conn.pipeline or transport.closed:
            await asyncio.sleep(0)
            return
