"""What inline and threaded WSGI share: environ, start_response, the response head.

PEP 3333 rules enforced here: start_response may be called again only with
exc_info, and then only before the head is sent (after that, the original
exception is re-raised into the app); the status is "NNN reason"; header
names and values are latin-1 text without CR, LF or NUL.  The iterable's
close() is always called (callers use `close_iterable`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from prefork.http import response
from prefork.http.exchange import METHOD_NAMES, Exchange, split_target
from prefork.http.response import InvalidResponseHeader
from prefork.observe.accesslog import AccessLog, exchange_entry
from prefork.tls import peer_details
from prefork.wsgi import environ as wsgi_environ

LOGGER: Final = logging.getLogger("prefork")

_STATUS: Final = re.compile(r"[1-9]\d\d [^\r\n\0]*")
_STATUS_CACHE_MAX: Final = 256
_status_lines: dict[str, tuple[bytes, int]] = {}

_PROTOCOLS: Final = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
WriteCallable = Callable[[bytes], None]
StartResponse = Callable[..., WriteCallable]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class WSGIAdapter:
    """What the WSGI interface keeps for one server (`ServerState.adapter`)."""

    app: WSGIApp
    template: dict[str, Any]  # the environ keys every request shares (environ.template)
    secure: bool  # served over TLS: no sendfile(2), the bytes must be encrypted
    access_log: AccessLog
    pool: ThreadPoolExecutor | None = None  # --threads N > 1: where the app runs


def status_line(status: str) -> tuple[bytes, int]:
    """The status line for a WSGI status string, and its code."""
    line = _status_lines.get(status)
    if line is None:
        if not isinstance(status, str) or not _STATUS.fullmatch(status):
            raise InvalidResponseHeader(f"invalid WSGI status {status!r}")
        line = (b"HTTP/1.1 " + status.encode("latin-1") + b"\r\n", int(status[:3]))
        if len(_status_lines) < _STATUS_CACHE_MAX:
            _status_lines[status] = line
    return line


def app_head(key: Any, headers: Sequence[tuple[str, str]]) -> response.AppHead:
    """Validate and render the app's headers (`key`: their tuple), for response.cached_head."""
    try:
        for name, _ in headers:
            response.check_name(name.encode("latin-1"))
        block = "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidResponseHeader(f"invalid WSGI response headers: {exc!s:.200}") from None
    return response.app_head(key, block, len(headers))


class WSGIExchange(Exchange):
    """One request run as a WSGI app call; inline.py and threaded.py say where it runs."""

    # Per-request state starts from these class defaults (see ASGIExchange).
    # What start_response was given: the status line and code (status_line).
    status_head: tuple[bytes, int] | None = None
    response_headers: Sequence[tuple[str, str]] = ()
    head_sent = False
    # Set once the app produced body bytes: from then on the status and headers
    # are decided even if not yet written (PEP 3333 on exc_info).
    committed = False
    closed = False
    start_time = 0.0
    answered_504 = False  # --request-timeout answered for the app
    # The request's environ, kept for the access log's %({NAME}e)s atoms.
    wsgi_environ: dict[str, Any] | None = None

    def environ(self, wsgi_input: Any) -> dict[str, Any]:
        conn = self.conn
        base: dict[str, Any] | None = conn.adapter_cache
        if base is None:
            base = conn.adapter_cache = wsgi_environ.connection_environ(
                conn.state.adapter.template,
                conn.sockname,
                conn.client,
                peer_details(conn.transport),
            )
        raw_path, query = split_target(self.target)
        # find(), not `in`: cheaper (see HttpConnection.on_header).
        if raw_path.find(b"%") >= 0:
            raw_path = unquote_to_bytes(raw_path)
        method = self.method
        # copy() then stores: several times cheaper than a {**base, ...} literal.
        environ = base.copy()
        environ["REQUEST_METHOD"] = METHOD_NAMES.get(method) or method.decode("ascii")
        # PEP 3333: PATH_INFO percent-decoded, both as latin-1 text.
        environ["PATH_INFO"] = raw_path.decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        environ["SERVER_PROTOCOL"] = _PROTOCOLS[self.version]
        environ["wsgi.input"] = wsgi_input
        if self.forwarded is not None:
            wsgi_environ.apply_forwarded(environ, self.forwarded)
        # Header keys (HTTP_*, CONTENT_*) are none of the keys above, so a field
        # can only overwrite a field of the same name: counting the keys once
        # spares a lookup per field; a repeated field (rare) is then joined.
        headers = self.headers
        keys = wsgi_environ.KEYS
        size = len(environ) + len(headers)
        for name, value in headers:
            environ[keys.get(name) or wsgi_environ.header_key(name)] = value.decode("latin-1")
        if len(environ) != size:
            wsgi_environ.join_repeated(environ, headers)
        self.wsgi_environ = environ
        return environ

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> WriteCallable:
        if exc_info is not None:
            try:
                if self.head_sent or self.committed:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the traceback reference cycle (PEP 3333)
        elif self.status_head is not None:
            raise RuntimeError("start_response called twice without exc_info")
        # Validated now, so that the error points at the app's call; a status
        # seen before is one lookup, without the call.
        self.status_head = _status_lines.get(status) or status_line(status)
        self.response_headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def head(self, length: int) -> bytes:
        """The response head for a body of `length` bytes (-1: streamed)."""
        status_head = self.status_head
        if status_head is None:
            raise RuntimeError("the application did not call start_response")
        line, self.status = status_head
        # A draining server closes after this response (see HttpServer.begin_drain).
        # With --threads this runs on the app's thread: reading `draining` late
        # only means one more response on this connection, never a lost one.
        keep_alive = self.keep_alive and not self.conn.state.draining
        headers = self.response_headers
        key = tuple(headers)
        # The cache is looked up here, not in app_head, to spare a call per
        # request (an AppHead is a non-empty tuple: never false).
        lines, self.framing, self.keep_alive = response.frame(
            response.cached_head(key) or app_head(key, headers),
            self.status,
            self.method,
            self.version,
            keep_alive,
            length,
        )
        self.head_sent = True
        return line + self.conn.state.clock.default_headers + lines

    def log_access(self, access_log: AccessLog) -> None:
        headers = [
            (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in self.response_headers
        ]
        access_log.log(exchange_entry(self, self.start_time, headers, self.wsgi_environ))

    def failed(self, exc: BaseException) -> bytes | None:
        """Log an app failure; the bytes to send if no response left yet, else None."""
        LOGGER.error("Exception in WSGI application", exc_info=exc)
        if self.head_sent:
            return None
        self.keep_alive = False
        self.status = 500
        self.head_sent = True
        return response.error_500(self.conn.state.clock.default_headers)


def close_iterable(result: Iterable[bytes] | None) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            LOGGER.exception("Exception in the WSGI iterable's close()")
