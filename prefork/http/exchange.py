"""The contract between a connection and the interface adapter that runs one request.

A connection parses requests and owns the socket; for each request it creates
an `Exchange` of the class the worker chose for the app's interface
(`ServerState.exchange_class`: asgi/http.py, wsgi/inline.py or
wsgi/threaded.py).  The exchange runs the application and writes the
response through the connection.  Whatever the interface needs beyond the
request (the app, its settings) it keeps in `ServerState.adapter`.

Lifecycle (the connection drives the first three, the exchange the last):

    created at headers-complete -> start() when it heads the pipeline and
    (streams_body or body_complete) -> feed_body()/body_done() as the body
    arrives -> conn.exchange_done(self) once the app finished and the
    response is complete (or the connection must close).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar, Final

from prefork.http.response import CHUNKED, IDENTITY, NO_BODY, BodyFraming, chunk, error_504

if TYPE_CHECKING:
    from prefork.http.connection import HttpConnection
    from prefork.http.forwarded import Forwarded

LOGGER: Final = logging.getLogger("prefork")

# Flow control: the connection stops reading once an exchange holds this much
# request body unread by the app (`pause_body`), and an exchange need not ask
# to resume (`resume_body`) before the app has read it back below this
# (uvicorn and hypercorn use 64 KiB as well).
BODY_HIGH_WATER: Final = 65536

# The request methods seen most, as the text the interfaces hand the app
# (`METHOD_NAMES.get(method) or method.decode("ascii")`: a lookup, no decoding).
METHOD_NAMES: Final = {
    m.encode(): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")
}


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """The raw path and query of a request target.

    An absolute-form target (`http://host/path`, RFC 9112 3.2.2) gives its
    path; `*` (OPTIONS) gives `/`.
    """
    raw_path, _, query = target.partition(b"?")
    if raw_path[:1] != b"/":
        after_scheme = raw_path.split(b"://", 1)[-1]
        slash = after_scheme.find(b"/")
        raw_path = after_scheme[slash:] if slash >= 0 else b"/"
    return raw_path, query


class Exchange:
    """One request and its response, as the connection sees it; subclassed per interface.

    The connection fills the request side and calls the methods below; the
    subclass runs the app, writes through `conn` (`transport.write`,
    `drain`, `pause_body`/`resume_body`) and ends with `conn.exchange_done`.
    """

    # True: start the app as soon as the headers are in, streaming the body to it.
    # False: start it once the whole body has arrived (inline WSGI).
    streams_body: ClassVar[bool] = True

    __slots__ = (
        "arrived",
        "begun",
        "body_complete",
        "body_dropped",
        "body_sent",
        "conn",
        "expect_continue",
        "forwarded",
        "framing",
        "headers",
        "keep_alive",
        "method",
        "started",
        "status",
        "target",
        "version",
    )

    def __init__(
        self,
        conn: HttpConnection,
        method: bytes,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
    ) -> None:
        self.conn = conn
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        # The connection sets these two when the request has a body.
        self.body_complete = True
        self.expect_continue = False
        self.started = False
        # What a trusted proxy said about the client (set by the connection
        # right after construction); None for a direct request.
        self.forwarded: Forwarded | None = None
        self.status = 0  # the status sent, for the access log; 0 until then
        self.begun = 0.0  # perf_counter() at the end of the head; set with --metrics-bind
        self.arrived = conn.state.clock.now  # for --request-timeout
        self.framing: BodyFraming = IDENTITY  # decided with the head, by response.frame
        self.body_sent = 0  # body bytes written, for the access log and the metrics
        self.body_dropped = False  # the app sent a body its status allows none of

    def time_out(self, age: float) -> None:
        """--request-timeout expired: answer 504 if nothing was sent yet, else close.

        The adapter stops the app as far as its mode allows (see each one).
        """
        raise NotImplementedError

    def answer_timeout(self, age: float, response_begun: bool) -> bool:
        """End the connection for a timed-out request; True if it was answered 504."""
        conn = self.conn
        if response_begun:
            conn.close()
            conn.transport.abort()  # the response is cut short: its framing is lost
            outcome = "the response had started: connection closed"
        else:
            conn.transport.write(error_504(conn.state.clock.default_headers))
            conn.close()
            self.status = 504
            outcome = "answered 504"
        LOGGER.warning(
            "Request timed out after %.0fs (--request-timeout): %s %s; %s",
            age,
            self.method.decode("latin-1"),
            self.target.decode("latin-1")[:200],
            outcome,
        )
        return not response_begun

    def start(self) -> None:
        raise NotImplementedError

    def feed_body(self, data: bytes) -> None:
        raise NotImplementedError

    def body_done(self) -> None:
        raise NotImplementedError

    def disconnected(self) -> None:
        """The client went away; wake anything waiting on it."""
        raise NotImplementedError

    def client_eof(self) -> None:
        """The client will send nothing more (FIN) but may still read the response."""

    def body_bytes(self, data: bytes) -> bytes:
        """A piece of the app's body as it goes on the wire under `framing`."""
        framing = self.framing
        if framing is IDENTITY:
            self.body_sent += len(data)
            return data
        if framing is CHUNKED:
            if not data:
                return b""
            self.body_sent += len(data)
            return chunk(data)
        if framing is NO_BODY and data and not self.body_dropped:
            self.body_dropped = True
            LOGGER.debug(
                "Dropped the body of a %d response to %s %s: the status allows none "
                "(RFC 9110 6.4.1)",
                self.status,
                self.method.decode("latin-1"),
                self.target.decode("latin-1")[:200],
            )
        return b""
