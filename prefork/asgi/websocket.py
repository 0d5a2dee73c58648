"""ASGI `websocket` connections: the scope, the events, and the denial response.

`install` puts `upgrade` on the server state as its protocol-switch hook
(http/upgrade.py).  A request whose `Upgrade` names websocket becomes an
`ASGIWebSocket`: once the connection hands the transport over, the handshake
is checked (an invalid one gets a 400 with `Connection: close` and never
reaches the app) and the app runs with a `websocket` scope.

The app's messages drive a small state machine (ASGI spec 2.4):

    CONNECTING --websocket.accept--> OPEN --websocket.close--> CLOSED
    CONNECTING --websocket.close--> CLOSED (HTTP 403)
    CONNECTING --websocket.http.response.start--> DENYING
    DENYING --websocket.http.response.body (last)--> CLOSED (that response)

Anything else raises inside the app's `send`.  An app that returns without
accepting gets a 500, one that raises after accepting closes with 1011, and
one that returns while open closes with 1000.  One access-log line is
written per session, once both the app returned and the connection closed.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from prefork.asgi.http import render_headers, spawn
from prefork.asgi.scope import ASGIAdapter, connection_scope
from prefork.asgi.types import Message
from prefork.errors import ProtocolError
from prefork.http import response
from prefork.http.forwarded import with_host
from prefork.http.response import error_response
from prefork.observe.accesslog import AccessEntry
from prefork.ws import handshake
from prefork.ws.outbox import Outbox
from prefork.ws.session import INTERNAL_ERROR, NORMAL, Closed, Limits, WebSocketSession
from prefork.ws.session import Phase as SessionPhase

if TYPE_CHECKING:
    import asyncio

    from prefork.http.connection import HttpConnection
    from prefork.http.server import ServerState
    from prefork.http.upgrade import Switch

LOGGER: Final = logging.getLogger("prefork")

_CONNECT: Final = {"type": "websocket.connect"}
_EXTENSIONS: Final[dict[str, dict[str, Any]]] = {"websocket.http.response": {}}


class ClientDisconnected(OSError):
    """`websocket.send` after the connection closed (ASGI asks for an OSError)."""


class Phase(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    DENYING = "denying"
    CLOSED = "closed"


def install(state: ServerState, limits: Limits, deflate: bool) -> None:
    """Serve WebSockets on this worker's connections (`deflate`: offer permessage-deflate)."""
    state.upgrade = partial(upgrade, limits, Outbox(state.loop), deflate)


def upgrade(
    limits: Limits,
    outbox: Outbox,
    deflate: bool,
    conn: HttpConnection,
    method: bytes,
    target: bytes,
    version: str,
    headers: list[tuple[bytes, bytes]],
) -> Switch | None:
    if not handshake.asks_for_websocket(headers):
        return None  # h2c or another protocol: served as an ordinary request
    websocket = ASGIWebSocket(conn, target, headers, limits, outbox)
    negotiated = handshake.negotiate(method, target, version, headers, deflate)
    return partial(websocket.start, negotiated)


class ASGIWebSocket:
    """One WebSocket connection run as an ASGI app call, from the handshake to the close."""

    __slots__ = (
        "accept_headers",
        "adapter",
        "app_done",
        "client",
        "connect_sent",
        "denial",
        "extensions",
        "headers",
        "phase",
        "scope",
        "session",
        "start_time",
        "state",
        "status",
        "target",
    )

    def __init__(
        self,
        conn: HttpConnection,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        limits: Limits,
        outbox: Outbox,
    ) -> None:
        self.state = state = conn.state
        self.adapter: ASGIAdapter = state.adapter
        view = conn.forwarded_view(headers)
        if view is not None and view.host is not None:  # a trusted proxy's word, as for HTTP
            headers = with_host(headers, view.host)
        self.scope = connection_scope("websocket", conn, view, "1.1", target, headers, _EXTENSIONS)
        self.scope["subprotocols"] = handshake.subprotocols(headers)
        self.client: tuple[str, int] | None = self.scope["client"]
        self.target = target
        self.headers = headers
        self.session = WebSocketSession(state, limits, outbox, self._lost)
        self.phase = Phase.CONNECTING
        self.connect_sent = False
        self.app_done = False
        self.status = 0
        self.denial: tuple[int, bytes, list[bytes]] | None = None  # status, head, body parts
        self.extensions: list[Any] = []
        self.accept_headers: list[tuple[bytes, bytes]] = []
        self.start_time = time.time()

    def start(
        self,
        negotiated: handshake.Accepted | handshake.Refused,
        transport: asyncio.Transport,
        rest: bytes,
    ) -> None:
        """The connection's Switch: take the transport, then refuse or run the app."""
        state = self.state
        state.counters.requests += 1
        self.session.attach(transport, rest)
        if isinstance(negotiated, handshake.Refused) or state.draining:
            refusal = negotiated if isinstance(negotiated, handshake.Refused) else None
            status, reason = (refusal.status, refusal.reason) if refusal else (503, "draining")
            state.counters.rejected += 1
            peer = f"{self.client[0]}:{self.client[1]}" if self.client else "unix socket"
            LOGGER.info("Rejected WebSocket handshake from %s: %d %s", peer, status, reason)
            self.status = status
            self.app_done = True
            self.session.respond(error_response(ProtocolError(status, reason), _defaults(state)))
            return
        self.extensions = negotiated.extensions
        self.accept_headers = negotiated.headers
        spawn(self.run(), state.loop)

    async def run(self) -> None:
        session = self.session
        try:
            await self.adapter.app(self.scope, self.receive, self.send)
        except Exception as exc:
            self._app_failed(exc)
        else:
            if self.phase is Phase.OPEN:
                session.close(NORMAL)
            elif self.phase is not Phase.CLOSED:
                LOGGER.error("ASGI app returned without accepting or refusing the WebSocket")
                self._http_error(500)
        finally:
            self.phase = Phase.CLOSED
            self.app_done = True
            if session.phase is SessionPhase.CLOSED:
                self._finished()

    def _app_failed(self, exc: Exception) -> None:
        if isinstance(exc, ClientDisconnected):
            return  # it sent after the client left and did not catch it: no app bug to report
        LOGGER.error("Exception in ASGI application", exc_info=exc)
        if self.phase is Phase.OPEN:
            self.session.close(INTERNAL_ERROR)
        elif self.phase is not Phase.CLOSED:
            self._http_error(500)

    # -- receive ---------------------------------------------------------------------

    async def receive(self) -> Message:
        if not self.connect_sent:
            self.connect_sent = True
            return dict(_CONNECT)
        message = await self.session.receive()
        if type(message) is str:
            return {"type": "websocket.receive", "text": message}
        if type(message) is bytes:
            return {"type": "websocket.receive", "bytes": message}
        assert isinstance(message, Closed)
        return {"type": "websocket.disconnect", "code": message.code, "reason": message.reason}

    # -- send ------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        phase = self.phase
        session = self.session
        if phase is Phase.OPEN:
            if kind == "websocket.send":
                if not session.is_open:
                    raise ClientDisconnected("the WebSocket is closed")
                session.send(_payload(message))
                if session.writing_paused:
                    await session.drain()
            elif kind == "websocket.close":
                self.phase = Phase.CLOSED
                session.close(message.get("code") or NORMAL, message.get("reason") or "")
            else:
                raise RuntimeError(f"unexpected {kind!r} on an open WebSocket")
        elif phase is Phase.CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._http_error(403)  # ASGI: closing before accepting is an HTTP 403
            elif kind == "websocket.http.response.start":
                self._start_denial(message)
            else:
                raise RuntimeError(f"expected 'websocket.accept', got {kind!r}")
        elif phase is Phase.DENYING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"expected 'websocket.http.response.body', got {kind!r}")
            self._denial_body(message)
        elif kind == "websocket.send":
            raise ClientDisconnected("the WebSocket is closed")
        # A close after the close (a `finally:` in the app) is harmless.
        elif kind != "websocket.close":
            raise RuntimeError(f"unexpected {kind!r} after the WebSocket closed")

    def _accept(self, message: Message) -> None:
        lines = list(self.accept_headers)
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            lines.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        block = _header_block(lines + list(message.get("headers") or ()))
        self.phase = Phase.OPEN
        self.status = 101
        self.session.accept(_defaults(self.state) + block, self.extensions)

    def _start_denial(self, message: Message) -> None:
        status = int(message["status"])
        head = (
            response.status_line(status)
            + _defaults(self.state)
            + _header_block(list(message.get("headers") or ()))
        )
        self.phase = Phase.DENYING
        self.denial = (status, head, [])

    def _denial_body(self, message: Message) -> None:
        assert self.denial is not None
        status, head, parts = self.denial
        parts.append(bytes(message.get("body", b"")))
        if message.get("more_body", False):
            return
        # Buffered, so the response leaves with a Content-Length: denial bodies
        # are short, and the connection closes after them anyway.
        body = b"".join(parts)
        self.phase = Phase.CLOSED
        self.status = status
        self.session.respond(
            head + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body
        )

    def _http_error(self, status: int) -> None:
        self.phase = Phase.CLOSED
        self.status = status
        reason = "WebSocket refused by the application" if status == 403 else "application error"
        self.session.respond(error_response(ProtocolError(status, reason), _defaults(self.state)))

    # -- end of the session ----------------------------------------------------------

    def _lost(self) -> None:
        if self.app_done:
            self._finished()

    def _finished(self) -> None:
        access_log = self.adapter.access_log
        if not access_log.enabled:
            return

        client = self.client
        access_log.log(
            AccessEntry(
                remote_addr=client[0] if client else "-",
                method="GET",
                target=self.target.decode("latin-1"),
                http_version="1.1",
                status=self.status,
                body_bytes=0,
                request_headers=self.headers,
                response_headers=[],
                start_wall=self.start_time,
                duration=time.time() - self.start_time,
                pid=os.getpid(),
                ws_close=self.session.close_code() if self.status == 101 else None,
            )
        )


def _defaults(state: ServerState) -> bytes:
    return state.clock.default_headers


def _payload(message: Message) -> str | bytes:
    text = message.get("text")
    if text is not None:
        return str(text)
    data = message.get("bytes")
    if data is None:
        raise RuntimeError("'websocket.send' needs 'text' or 'bytes'")
    return bytes(data)


def _header_block(headers: list[tuple[bytes, bytes]]) -> bytes:
    block, lines = render_headers(headers)
    response.check_block(block, lines)
    return block
