"""Drive prefork's HTTP engine without sockets: a fake transport and a real event loop.

    out = run_exchange(app, b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
    out.responses[0].status == 200

Bytes go in through `data_received` exactly as the event loop would deliver
them (optionally split), and everything written comes back parsed by the
suite's strict response parser (tests/responses.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import uvloop

from prefork.config import Config
from prefork.http.connection import HttpConnection
from prefork.http.server import ServerState
from prefork.loader import LoadedApp, detect
from prefork.worker.compose import WorkerServer, install_websockets
from tests.responses import Response, parse_all


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.reading = True
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def set_protocol(self, protocol: Any) -> None:
        """A protocol switch (http/upgrade.py) hands the transport to a new protocol."""
        self.protocol = protocol

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
class Outcome:
    raw: bytes  # everything the engine wrote
    closed: bool
    head_requests: int = 0  # how many of the first final responses answer HEAD

    @functools.cached_property
    def responses(self) -> list[Response]:
        return parse_all(self.raw, self.head_requests)

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]


def make_config(app: str = "tests:app", **settings: Any) -> Config:
    return dataclasses.replace(Config(app=app), **settings)


def run_exchange(
    app: Any,
    data: bytes | Sequence[bytes],
    *,
    interface: str | None = None,
    head_requests: int = 0,
    max_rounds: int = 200,
    websockets: bool = False,
    **settings: Any,
) -> Outcome:
    """Feed `data` (one bytes, or a sequence of pieces) and run the loop until it settles.

    The server is put together as the worker does it (worker/compose.py):
    `app` behind its interface's adapter, `settings` as Config fields, and
    with `websockets` the ASGI WebSocket hook installed.
    """
    kind = interface or ("asgi" if detect(app) != "wsgi" else "wsgi")
    loaded = LoadedApp(app, "asgi" if kind != "wsgi" else "wsgi", True, kind)
    config = make_config(**settings)

    def server_state() -> ServerState:
        state = WorkerServer(config, loaded, asyncio.get_running_loop(), {}).state
        if websockets:
            install_websockets(config, state)
        return state

    return run_state(server_state, data, head_requests=head_requests, max_rounds=max_rounds)


def run_state(
    server_state: Callable[[], ServerState],
    data: bytes | Sequence[bytes],
    *,
    head_requests: int = 0,
    max_rounds: int = 200,
) -> Outcome:
    """Like run_exchange, on the state `server_state()` builds inside the event loop."""
    chunks = [data] if isinstance(data, bytes) else list(data)

    async def main() -> Outcome:
        conn = HttpConnection(server_state())
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
        return Outcome(bytes(transport.written), transport.closed, head_requests)

    return uvloop.run(main())


async def _settle(conn: HttpConnection, transport: FakeTransport, rounds: int) -> None:
    """Let tasks run until nothing is pending on the connection (bounded)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
        if not conn.pipeline or transport.closed:
            await asyncio.sleep(0)
            return
