"""One HTTP/1.1 connection: httptools parsing, limits, pipelining, timeouts, flow control.

Theory of operation
-------------------
httptools calls back into this object as bytes arrive.  Between
`on_message_begin` and `on_headers_complete` the connection is *in the head*:
it counts fields and bytes against the limits and notes the few headers that
decide framing (checks.SPECIAL_NAMES).  At headers-complete it runs the
per-block checks (checks.check_head) once, then creates an Exchange and
appends it to `pipeline`.

Invariants:
- `pipeline[0]` is the only exchange that may write; responses therefore
  leave in request order.  While more than one exchange is queued, reading is
  paused, so a pipelining client cannot make us buffer without bound.
- `current` is the exchange whose body is still being parsed (or None).
- After a ProtocolError nothing more is parsed: the error response is queued
  behind the responses already owed, then the connection closes.

Timeouts cost nothing per request: each connection keeps two deadlines
(`read_deadline`, `write_deadline`) as plain floats against the server's
one-second clock, and the server sweeps all connections once a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, cast

import httptools

from prefork.errors import ProtocolError
from prefork.http import checks, forwarded, proxy_protocol, request_id
from prefork.http.exchange import BODY_HIGH_WATER, Exchange
from prefork.http.response import CONTINUE_100, error_response

# The names on_header notes: those that decide framing, and those a trusted
# proxy uses to describe the client (any other name costs one set lookup).
_SPECIAL_NAMES: Final = checks.SPECIAL_NAMES | forwarded.NAMES | {request_id.HEADER}

# Field names seen before that need nothing but lower-casing, as spelled on
# the wire -> lower-cased.  A hit replaces lower(), the lookup above and the
# underscore test by one dict lookup, and hands on the same lower-cased object
# each time, whose hash is then already computed for the interfaces' lookups.
# Bounded: a client sending made-up names fills it once, then takes the long way.
_PLAIN_NAMES_MAX: Final = 1024
_plain_names: dict[bytes, bytes] = {}

if TYPE_CHECKING:
    from prefork.http.server import ServerState
    from prefork.http.upgrade import Switch

LOGGER: Final = logging.getLogger("prefork.http")
INF: Final = float("inf")
# How long an idle TLS connection's close_notify gets to leave before the
# connection is dropped; it is a few dozen bytes to a peer that is not reading.
TLS_CLOSE_NOTIFY_GRACE: Final = 1.0

# The request line limit applies to "METHOD SP target SP HTTP/1.1"; the
# connection sees the target first, so it measures from the shortest line
# around it (ServerState.limit_target is the limit less this).
SHORTEST_LINE_AROUND_TARGET: Final = len("GET  HTTP/1.1")

# Takes a closed connection's place as its parser.  The connection's own
# parser holds the connection's bound callbacks, a reference cycle: left
# for the collector, 15 objects per connection (the connection, its parser,
# transport and their parts) made it run a tenth of a worker's time under
# `Connection: close`, with 3 ms pauses.  Never fed: a closed connection
# ignores data.
_DETACHED_PARSER: Final = httptools.HttpRequestParser(object())


class HttpConnection(asyncio.Protocol):
    """One client connection: parses its requests and hands each to an exchange.

    The event loop calls the asyncio.Protocol methods, httptools the `on_*`
    callbacks; exchanges call back through the methods of the "used by
    exchanges" section.  Every setting it reads is on `state` (ServerState).
    """

    __slots__ = (
        "adapter_cache",
        "body_size",
        "client",
        "closing",
        "content_length",
        "current",
        "drain_waiters",
        "dropped_fields",
        "expect",
        "fed",
        "forwarded",
        "head_bytes",
        "headers",
        "host",
        "hosts",
        "in_head",
        "keep_alive",
        "parser",
        "peer_eof",
        "pending_error",
        "pipeline",
        "read_deadline",
        "reading_paused",
        "request_id",
        "server",
        "sockname",
        "state",
        "switch",
        "trailer_bytes",
        "trailer_fields",
        "transfer_encoding",
        "transport",
        "trusted",
        "url",
        "write_deadline",
        "write_paused",
    )

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        self.pipeline: deque[Exchange] = deque()
        self.current: Exchange | None = None
        self.closing = False
        # False once this connection must close after its next response
        # (keep-alive disabled, the worker draining, or rebalancing, balance.py);
        # set in connection_made, which may run after a drain began.
        self.keep_alive = False
        self.pending_error: ProtocolError | None = None
        self.peer_eof = False
        self.reading_paused = False
        self.write_paused = False
        self.drain_waiters: list[asyncio.Future[None]] = []
        self.read_deadline = INF
        self.write_deadline = INF
        # Whatever the interface adapter computes once per connection (the WSGI
        # environ keys that only depend on the socket).
        self.adapter_cache: Any = None
        self.client: tuple[str, int] | None = None
        self.sockname: tuple[str, int] | None = None
        # Whether the peer may speak for the client (--forwarded-allow-ips):
        # decided once, when a request first carries a forwarding header.
        self.trusted: bool | None = None
        self.forwarded = False  # the head being parsed carries a forwarding header
        self.request_id = False  # ... or an X-Request-ID
        self.in_head = False
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.dropped_fields = 0  # fields of the current head not passed on (underscores)
        self.head_bytes = 0
        self.fed = 0
        self.hosts = 0
        self.host = b""
        self.transfer_encoding: bytes | None = None
        self.content_length = -1
        self.expect = False
        self.trailer_fields = 0
        self.trailer_bytes = 0
        self.body_size = 0  # of the body being parsed, against --limit-request-body
        self.switch: Switch | None = None  # set when an upgrade hook takes the connection

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        state = self.state
        state.connections.add(self)
        state.counters.connections += 1
        if state.gate is not None:
            state.gate.publish(state.counters.connections)
        self.keep_alive = state.keep_alive and not state.draining
        self.client = _address(transport.get_extra_info("peername"))
        self.sockname = _address(transport.get_extra_info("sockname"))
        self.read_deadline = state.clock.now + state.idle_timeout
        # The counter includes WebSocket sessions, which left `connections`.
        if state.limit_concurrency and state.counters.connections > state.limit_concurrency:
            self.reject(ProtocolError(503, "too many connections"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.parser = _DETACHED_PARSER  # freed by reference counting, not the collector
        state = self.state
        state.connections.discard(self)
        state.counters.connections -= 1
        if state.gate is not None:
            state.gate.publish(state.counters.connections)
        state.check_all_closed()
        for exchange in self.pipeline:
            if exchange.started:
                exchange.disconnected()  # it calls exchange_done once the app returns
            else:
                state.counters.inflight -= 1
        self._wake_writers()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.fed = len(data)
        metrics = self.state.metrics
        if metrics is not None:
            metrics.bytes_received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0] :] if exc.args and isinstance(exc.args[0], int) else b""
            if self.switch is not None:
                self._switch_protocol(self.switch, rest)
                return
            # No hook took the upgrade, so the offer is ignored (RFC 9110 7.8):
            # the request was served as plain HTTP, and a fresh parser takes
            # the bytes after it, since llhttp stops at an upgrade.
            self.parser = httptools.HttpRequestParser(self)
            if rest:
                self.data_received(rest)
            return
        except httptools.HttpParserError as exc:
            self.reject(_parser_error(exc, data))
            return
        if self.in_head:
            # Bytes fed while the head is incomplete: an upper bound of its size.
            self.head_bytes += len(data)
            if self.head_bytes > self.state.limit_headers:
                self.reject(ProtocolError(431, "request header block too large"))
        else:
            self.head_bytes = 0

    def eof_received(self) -> bool | None:
        """The client sent FIN: no request follows, but it may still read what it is owed."""
        self.peer_eof = True
        if not self.pipeline or self.current is not None:
            self.close()  # nothing owed, or a request body cut short: it is gone
            return True
        for exchange in self.pipeline:
            if exchange.started:
                exchange.client_eof()
        return True  # keep our side open for the responses still owed

    def pause_writing(self) -> None:
        self.write_paused = True
        self.write_deadline = self.state.clock.now + self.state.send_timeout

    def resume_writing(self) -> None:
        self.write_paused = False
        self.write_deadline = INF
        self._wake_writers()

    # -- httptools callbacks ---------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head = True
        self.url = b""
        self.headers = []
        self.dropped_fields = 0
        self.hosts = 0
        self.transfer_encoding = None
        self.content_length = -1
        self.expect = False
        self.forwarded = False
        self.request_id = False
        self.read_deadline = self.state.clock.now + self.state.header_timeout

    def on_url(self, url: bytes) -> None:
        url = self.url + url if self.url else url
        self.url = url
        # The shortest line around a target is "GET " + " HTTP/1.1"; measure
        # exactly only when that bound is crossed.
        if len(url) > self.state.limit_target:
            line = len(self.parser.get_method()) + len(url) + len("  HTTP/1.1")
            if line > self.state.limit_target + SHORTEST_LINE_AROUND_TARGET:
                raise ProtocolError(414, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        # Hot: called per field.  Counting and size limits are checked once per
        # block in on_headers_complete; the block limit bounds memory meanwhile.
        if self.in_head:
            lowered = _plain_names.get(name)
            if lowered is None:
                lowered = name.lower()
                if lowered == checks.HOST:  # in every request: spared the call below
                    self.hosts += 1
                    self.host = value
                elif lowered in _SPECIAL_NAMES:
                    self._special_header(lowered, value)
                # find(), not `in`: `bytes in bytes` first tries the needle as an
                # integer and discards a TypeError, 2x the cost (docs/profile.md).
                elif lowered.find(b"_") >= 0:
                    # Content_Length would become CONTENT_LENGTH in WSGI: drop, like
                    # nginx, but only after counting it against the limits.
                    self._dropped_field(lowered, value)
                    return
                elif len(_plain_names) < _PLAIN_NAMES_MAX:
                    _plain_names[name] = lowered
            # llhttp strips the OWS before a value, not after it (RFC 9112 5.1).
            # rstrip() without an argument is cheaper, and strips the same: of
            # the other bytes it strips (CR, LF, VT, FF), llhttp lets none into
            # a value (tests/corpus/fields/vt_ff_ending_value.http).
            self.headers.append((lowered, value.rstrip()))
        else:
            self._trailer(name, value)

    def _dropped_field(self, name: bytes, value: bytes) -> None:
        """A field the app never sees still counts, or it would escape the limits."""
        self.dropped_fields += 1
        if len(name) + len(value) > self.state.limit_field_size:
            raise ProtocolError(431, "header field too large")

    def _trailer(self, name: bytes, value: bytes) -> None:
        """A trailer field: held to the header limits, never shown to the app."""
        state = self.state
        size = len(name) + len(value)
        self.trailer_fields += 1
        self.trailer_bytes += size + 4
        if size > state.limit_field_size or self.trailer_fields > state.limit_fields:
            raise ProtocolError(431, "trailer field too large, or too many")
        if self.trailer_bytes > state.limit_headers:
            raise ProtocolError(431, "trailer section too large")

    def _special_header(self, name: bytes, value: bytes) -> None:
        if name == checks.CONTENT_LENGTH:
            self.content_length = int(value)  # llhttp has checked it is plain digits
        elif name == checks.TRANSFER_ENCODING:
            te = self.transfer_encoding
            self.transfer_encoding = value if te is None else te + b"," + value
        elif name == checks.EXPECT:
            if value.lower() == b"100-continue":
                self.expect = True
        elif name == request_id.HEADER:
            self.request_id = True
        else:
            self.forwarded = True  # one of forwarded.NAMES

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.closing:
            return
        state = self.state
        parser = self.parser
        method = parser.get_method()
        version = parser.get_http_version()
        url = self.url
        headers = self.headers
        if len(headers) + self.dropped_fields > state.limit_fields:
            raise ProtocolError(431, "too many header fields")
        if self.head_bytes + self.fed > state.limit_field_size:
            # Only this much input can hold a field over the limit, or a block
            # over it when the head arrived in one read.
            checks.check_sizes(url, headers, state.limit_field_size, state.limit_headers)
        # The common request passes these in a few C-level operations; anything
        # unusual goes through the full diagnosis, which raises or accepts it.
        content_length = self.content_length
        if (
            version != "1.1"
            or self.hosts != 1
            or url[:1] != b"/"
            or self.transfer_encoding is not None
            or url.find(b"#") >= 0  # find(), not `in`: see on_header
            or self.host.translate(checks.HOST_TABLE) != self.host
            or (state.limit_body and content_length > state.limit_body)
        ):
            checks.check_head(
                method,
                url,
                version,
                self.hosts,
                self.host,
                self.transfer_encoding,
                content_length,
                state.limit_body,
            )
        if state.upgrade is not None and parser.should_upgrade():
            switch = state.upgrade(self, method, url, version, headers)
            if switch is not None:
                if self.pipeline:
                    raise ProtocolError(400, "upgrade request pipelined behind another request")
                self.switch = switch
                return  # _switch_protocol runs once llhttp stops at the upgrade
        counters = state.counters
        counters.requests += 1
        if counters.requests == state.request_limit and state.on_request_limit is not None:
            state.on_request_limit()  # this request is the last: it sets state.draining
        if state.limit_concurrency and counters.inflight >= state.limit_concurrency:
            raise ProtocolError(503, "server busy")
        counters.inflight += 1
        keep_alive = self.keep_alive and parser.should_keep_alive()
        # Tested here as well as in forwarded_view: most requests then make no call.
        view = self.forwarded_view(headers) if self.forwarded else None
        if view is not None and view.host is not None:
            headers = forwarded.with_host(headers, view.host)
        if state.request_ids is not None and not (self.request_id and self._peer_is_proxy()):
            headers = state.request_ids.assign(headers, replace=self.request_id)
        exchange = state.exchange_class(self, method, url, version, headers, keep_alive)
        if view is not None:
            exchange.forwarded = view
        if state.metrics is not None:
            exchange.begun = perf_counter()
        pipeline = self.pipeline
        pipeline.append(exchange)
        if self.transfer_encoding is not None or content_length > 0:
            exchange.body_complete = False
            if self.expect and exchange.streams_body:
                exchange.expect_continue = True  # sent when the app first reads
            elif self.expect and len(pipeline) == 1:
                self.transport.write(CONTINUE_100)  # the body is read before the app runs
            self.current = exchange
            self.body_size = 0
            self.trailer_fields = self.trailer_bytes = 0
            self.read_deadline = state.clock.now + state.body_timeout
            if len(pipeline) == 1 and exchange.streams_body:
                exchange.started = True
                exchange.start()
        else:
            self.read_deadline = INF
            if len(pipeline) == 1:
                exchange.started = True
                exchange.start()
        if len(pipeline) > 1 and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def forwarded_view(self, headers: list[tuple[bytes, bytes]]) -> forwarded.Forwarded | None:
        """What a trusted proxy says about this request; None if nothing, or not trusted."""
        if self.forwarded and self._peer_is_proxy():
            return self._forwarded(headers)
        return None

    def _peer_is_proxy(self) -> bool:
        trusted = self.trusted
        if trusted is None:
            client = self.client
            trusted = self.trusted = self.state.proxy_trust.trusts(client[0] if client else None)
        return trusted

    def _forwarded(self, headers: list[tuple[bytes, bytes]]) -> forwarded.Forwarded | None:
        """What the trusted peer says about this request's client, scheme and host."""
        scheme = "https" if self.transport.get_extra_info("sslcontext") else "http"
        host = self.host if self.hosts else b""
        trust = self.state.proxy_trust
        return forwarded.resolve(headers, trust, scheme, self.sockname, host)

    def on_body(self, body: bytes) -> None:
        exchange = self.current
        if exchange is None:
            return
        state = self.state
        size = self.body_size = self.body_size + len(body)
        if state.limit_body and size > state.limit_body:
            raise ProtocolError(413, "request body larger than the limit")
        self.read_deadline = state.clock.now + state.body_timeout
        exchange.feed_body(body)

    def on_message_complete(self) -> None:
        exchange = self.current
        if exchange is None:
            return
        self.current = None
        self.read_deadline = INF
        exchange.body_complete = True
        exchange.body_done()
        if not exchange.started and self.pipeline and self.pipeline[0] is exchange:
            exchange.started = True
            exchange.start()

    # -- used by exchanges -----------------------------------------------------

    def pause_body(self, buffered: int) -> None:
        """The exchange holds `buffered` unread body bytes: stop reading past the high water."""
        if buffered > BODY_HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_body(self) -> None:
        if self.reading_paused and len(self.pipeline) <= 1 and not self.closing:
            self.reading_paused = False
            self.transport.resume_reading()

    async def drain(self) -> None:
        """Wait until the client has read enough of what we wrote."""
        if self.write_paused and not self.closing:
            waiter: asyncio.Future[None] = self.state.loop.create_future()
            self.drain_waiters.append(waiter)
            await waiter

    def exchange_done(self, exchange: Exchange) -> None:
        """The head exchange finished: start the next one, answer a pending error, or close."""
        state = self.state
        state.counters.inflight -= 1
        metrics = state.metrics
        if metrics is not None:
            metrics.observe(
                exchange.method,
                exchange.status,
                perf_counter() - exchange.begun,
                exchange.body_sent,
            )
        pipeline = self.pipeline
        if pipeline and pipeline[0] is exchange:
            pipeline.popleft()
        if self.closing:
            return
        if pipeline and exchange.keep_alive:
            following = pipeline[0]
            if following.streams_body or following.body_complete:
                following.started = True
                following.start()
            # Reading paused while two requests were queued; the next one may
            # still be receiving its body.
            self.resume_body()
        elif self.pending_error is not None:
            self._send_error(self.pending_error)
        elif not exchange.keep_alive or not exchange.body_complete or self.peer_eof:
            # An unread body would be parsed as the next request: close instead.
            self.close()
        else:
            if not self.in_head:
                self.read_deadline = state.clock.now + state.idle_timeout
            if self.reading_paused:  # rarely: the call is spared otherwise
                self.resume_body()

    def _switch_protocol(self, switch: Switch, rest: bytes) -> None:
        """Hand the transport, and the bytes read past the head, to the upgraded protocol."""
        self.closing = True  # nothing more is parsed or answered here
        self.read_deadline = self.write_deadline = INF
        self.state.connections.discard(self)  # the new protocol registers itself
        switch(self.transport, rest)

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.transport.close()

    # -- errors and timeouts -----------------------------------------------------

    def reject(self, error: ProtocolError) -> None:
        """Refuse what the client sent: answer after the responses already owed, then close."""
        self.in_head = False
        self.read_deadline = INF
        if not self.reading_paused and not self.closing:
            self.reading_paused = True
            self.transport.pause_reading()
        current, self.current = self.current, None
        head = self.pipeline[0] if self.pipeline else None
        if head is None or not head.started:
            self._send_error(error)
        elif head is current and head.status:
            self.close()  # its response is under way and its request body is broken
        elif current is None and not self.pipeline[-1].keep_alive:
            # The last request said it was the last (Connection: close), so what
            # follows it is not a request to answer: the connection just ends.
            return
        else:
            if head is current:
                head.disconnected()  # the app stops reading; the error is the answer
            self.pending_error = error

    def _send_error(self, error: ProtocolError) -> None:
        state = self.state
        state.counters.rejected += 1
        if state.metrics is not None:
            state.metrics.rejected[error.status] = state.metrics.rejected.get(error.status, 0) + 1
        LOGGER.info(
            "Rejected request from %s: %d %s", _peer(self.client), error.status, error.reason
        )
        if not self.closing:
            self.transport.write(error_response(error, state.clock.default_headers))
            self.close()

    def read_timeout(self) -> None:
        if self.in_head:
            self.reject(ProtocolError(408, "timed out receiving the request headers"))
        elif self.pipeline and self.pipeline[0].status == 0 and self.current is not None:
            self.reject(ProtocolError(408, "timed out receiving the request body"))
        elif self.pipeline:
            self.close()  # a response already under way: the transport flushes it first
        else:
            self.close_idle()

    def close_idle(self) -> None:
        """Close a kept-alive connection that owes nothing.

        Over TLS, closing sends close_notify and then waits for the client's
        (uvloop gives it 30 s).  A pooled client does not read an idle
        connection until its next request, so a draining worker would wait
        that long for nothing: TLS 1.3 does not require the closer to wait
        for the answering close_notify (RFC 8446 6.1), so the connection is
        dropped once ours has had a moment to leave.
        """
        self.close()
        if self.transport.get_extra_info("sslcontext") is not None:
            self.state.loop.call_later(TLS_CLOSE_NOTIFY_GRACE, self.transport.abort)

    def write_timeout(self) -> None:
        LOGGER.info("Closing connection from %s: client stopped reading", self.client)
        self.transport.abort()

    def _wake_writers(self) -> None:
        waiters = self.drain_waiters
        if waiters:
            self.drain_waiters = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)


class ProxyProtocolConnection(HttpConnection):
    """`--proxy-protocol`: a PROXY header precedes the first request, from a trusted peer.

    The header gives the client's address, which then takes the peer's
    place everywhere (scope, environ, access log, and the trust decision for
    forwarding headers).  A missing or malformed header is answered with 400
    (a v2 one, being binary, by closing), a header from a peer outside
    --forwarded-allow-ips with 403; one log line each.  A subclass, so that
    without the setting the hot path has no check to make.
    """

    __slots__ = ("proxy_pending",)

    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        self.proxy_pending: bytes | None = b""  # None once the header was read

    def data_received(self, data: bytes) -> None:
        pending = self.proxy_pending
        if pending is None or self.closing:
            super().data_received(data)
            return
        data = pending + data if pending else data
        try:
            parsed = proxy_protocol.parse(data)
            if parsed is not None and not self._peer_is_proxy():
                raise ProtocolError(403, "PROXY header from a peer not in --forwarded-allow-ips")
        except ProtocolError as error:
            if proxy_protocol.is_binary(data):
                self.state.counters.rejected += 1
                LOGGER.info("Closed connection from %s: %s", _peer(self.client), error.reason)
                self.close()
            else:
                self.reject(error)
            return
        if parsed is None:
            self.proxy_pending = data
            return
        header, size = parsed
        self.proxy_pending = None
        if not header.local:
            self.client = header.client
            self.trusted = None  # forwarding headers are now the real client's to vouch for
        if size < len(data):
            super().data_received(data[size:])


def _parser_error(exc: httptools.HttpParserError, data: bytes) -> ProtocolError:
    cause = exc.__context__
    if isinstance(cause, ProtocolError):
        return cause
    if isinstance(cause, Exception) and not isinstance(
        cause, (httptools.HttpParserError, httptools.HttpParserUpgrade)
    ):
        # A fault of ours (or of an exchange class) inside a callback: not the
        # client's, so not a 400; llhttp would only say "User callback error".
        LOGGER.error("Internal error while reading a request", exc_info=cause)
        return ProtocolError(500, "internal error")
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        method = data.split(b" ", 1)[0] if b" " in data[:32] else b""
        status = checks.method_status(method)
        return ProtocolError(status, "unknown method" if status == 501 else "invalid request")
    message = str(exc)
    if "HTTP version" in message:
        return ProtocolError(505, "unsupported HTTP version")
    return ProtocolError(400, message.rstrip(".") or "invalid request")


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unix socket"


def _address(info: object) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None
