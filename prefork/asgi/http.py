"""ASGI 3 `http` requests: one ASGIExchange per request.

The response head is held back until the first body message, so a response
whose body arrives in one message leaves in one write with a Content-Length;
otherwise it is sent chunked (HTTP/1.1) or close-delimited (HTTP/1.0).

Message order is checked here (start, then body messages, nothing after the
last); a violation raises inside the app's `send` call, which gives a 500 if
no byte of the response left yet, else the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Coroutine
from typing import Any, Final

from prefork.asgi.scope import ASGIAdapter, request_scope, scope_template
from prefork.asgi.types import Message
from prefork.http import response
from prefork.http.exchange import METHOD_NAMES, Exchange
from prefork.http.response import CHUNKED, CHUNKED_END, CONTINUE_100, InvalidResponseHeader
from prefork.observe.accesslog import exchange_entry
from prefork.tls import asgi_extension, peer_details

LOGGER: Final = logging.getLogger("prefork")

_DISCONNECT: Final = {"type": "http.disconnect"}
_EMPTY_BODY: Final = {"type": "http.request", "body": b"", "more_body": False}


def _spawn_task(
    coro: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
) -> asyncio.Task[None]:
    return loop.create_task(coro)


def _spawn_eager(
    coro: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
) -> asyncio.Task[None]:
    # Python 3.12+: the app runs at once, inside the parser callback; a task is
    # only scheduled if it awaits something not ready yet.  Saves a loop
    # iteration per request, and keeps asyncio.current_task() right for the app.
    return asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]


spawn = _spawn_eager if sys.version_info >= (3, 12) else _spawn_task


class ASGIExchange(Exchange):
    """One `http` request run as an ASGI app call; the app is in `conn.state.adapter`."""

    # Per-request state lives in the instance dict, starting from these class
    # defaults: a request that never streams a body sets few of them.
    body_chunks: list[bytes] | None = None
    body_size = 0
    final_body_given = False
    waiter: asyncio.Future[None] | None = None
    response_started = False
    response_complete = False
    closed = False
    client_done = False  # FIN received: receive() reports http.disconnect
    head_status: int | None = None  # from http.response.start, until the head is sent
    response_headers: Any = ()
    start_time = 0.0
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        state = self.conn.state
        if state.adapter.access_log.enabled:
            self.start_time = time.time()
        self.task = spawn(self.run(), state.loop)

    def time_out(self, age: float) -> None:
        # Nothing was written until the head left with the first body message
        # (status is set then): a response started but not sent is replaced.
        if self.answer_timeout(age, response_begun=self.status != 0):
            self.response_started = self.response_complete = True
        self.closed = True  # whatever the app still sends goes nowhere
        if self.task is not None:
            self.task.cancel()

    def scope(self) -> dict[str, Any]:
        conn = self.conn
        template = conn.adapter_cache
        if template is None:  # once per connection
            peer = peer_details(conn.transport)
            extensions = {"tls": asgi_extension(peer)} if peer else {}
            template = conn.adapter_cache = scope_template("http", conn, extensions)
        http_scope = request_scope(
            template, conn, self.forwarded, self.version, self.target, self.headers
        )
        method = self.method
        http_scope["method"] = METHOD_NAMES.get(method) or method.decode("ascii")
        return http_scope

    async def run(self) -> None:
        conn = self.conn
        adapter: ASGIAdapter = conn.state.adapter
        try:
            await adapter.app(self.scope(), self.receive, self.send)
        except Exception as exc:
            self._app_failed(exc)
        else:
            if not self.response_started and not self.closed:
                LOGGER.error("ASGI app returned without starting a response")
                self._send_500()
            elif not self.response_complete and not self.closed:
                LOGGER.error("ASGI app returned without completing the response")
                conn.close()
        finally:
            if adapter.access_log.enabled:
                headers = list(self.response_headers)
                adapter.access_log.log(exchange_entry(self, self.start_time, headers))
            conn.exchange_done(self)

    def _app_failed(self, exc: Exception) -> None:
        if self.closed:
            return
        LOGGER.error("Exception in ASGI application", exc_info=exc)
        if self.status == 0:
            self._send_500()
        else:
            self.conn.close()

    def _send_500(self) -> None:
        self.keep_alive = False
        self.status = 500
        self.response_started = self.response_complete = True
        self.conn.transport.write(response.error_500(self.conn.state.clock.default_headers))

    # -- receive ---------------------------------------------------------------

    def feed_body(self, data: bytes) -> None:
        if self.body_chunks is None:
            self.body_chunks = [data]
        else:
            self.body_chunks.append(data)
        self.body_size += len(data)
        self.conn.pause_body(self.body_size)
        self._wake()

    def body_done(self) -> None:
        self._wake()

    def disconnected(self) -> None:
        self.closed = True
        self._wake()

    def client_eof(self) -> None:
        # Like uvicorn: a client that closed its side has left, as far as the
        # app can tell; what the app still sends is delivered all the same.
        self.client_done = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def receive(self) -> Message:
        if not self.final_body_given:
            if not self.body_chunks and not self.body_complete and not self.closed:
                if self.expect_continue:
                    self.expect_continue = False
                    self.conn.transport.write(CONTINUE_100)
                await self._wait()
            if self.closed:
                return dict(_DISCONNECT)
            if self.body_complete:
                self.final_body_given = True
                if not self.body_chunks:
                    return dict(_EMPTY_BODY)
            chunks = self.body_chunks or [b""]
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self.body_chunks = None
            self.body_size = 0
            self.conn.resume_body()
            return {"type": "http.request", "body": body, "more_body": not self.body_complete}
        if not self.closed and not self.response_complete and not self.client_done:
            await self._wait()  # nothing more to read: wait for the client to go away
        return dict(_DISCONNECT)

    async def _wait(self) -> None:
        waiter = self.waiter = self.conn.state.loop.create_future()
        await waiter

    # -- send ------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            self.response_started = True
            self.response_headers = message.get("headers", ())
            self.head_status = message["status"]
            return
        if kind != "http.response.body":
            raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
        if self.response_complete:
            raise RuntimeError("response already complete")
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        if not more_body:
            self.response_complete = True
        if self.closed:
            return  # the client is gone; the app learns it from receive()
        conn = self.conn
        status = self.head_status
        if status is not None:
            self.head_status = None
            data = self._head(status, self.response_headers, body, more_body)
            data += self.body_bytes(body)
        else:
            data = self.body_bytes(body)
        if not more_body and self.framing is CHUNKED:
            data += CHUNKED_END
        if data:
            conn.transport.write(data)
        if conn.write_paused:
            await conn.drain()

    def _head(self, status: int, headers: Any, body: bytes, more_body: bool) -> bytes:
        """The response head, ending in the blank line; decides the body framing."""
        key = headers if type(headers) is tuple else tuple(headers)
        app_head = response.cached_head(key)
        if app_head is None:
            block, count = render_headers(headers)
            app_head = response.app_head(key, block, count)
        self.status = status
        length = -1 if more_body else len(body)
        # A draining server closes after this response, unless an earlier head
        # already promised keep-alive (see HttpServer.begin_drain).
        keep_alive = self.keep_alive and not self.conn.state.draining
        lines, self.framing, self.keep_alive = response.frame(
            app_head, status, self.method, self.version, keep_alive, length
        )
        # A status seen before is one lookup, without the call.
        line = response.STATUS_LINES.get(status) or response.status_line(status)
        return line + self.conn.state.clock.default_headers + lines


def render_headers(headers: Any) -> tuple[bytes, int]:
    """An app's `[(name, value), ...]` as header lines, and how many; names are checked.

    What a value holds (CR, LF, NUL) is for the caller to check, once per
    block (response.check_block).
    """
    try:
        parts: list[bytes] = []
        for name, value in headers:
            response.check_name(name)
            parts += (name, b": ", value, b"\r\n")
        return b"".join(parts), len(parts) // 4
    except (TypeError, ValueError) as exc:
        raise InvalidResponseHeader(f"invalid response headers: {exc!s:.200}") from None
