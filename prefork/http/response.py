"""Bytes for the response side, precomputed wherever the hot path allows.

Status lines are built once per process; the `Date` and `Server` lines are
rebuilt once a second by the server's clock tick (RFC 9110 5.6.7 only asks
for the time the message was generated, at one-second resolution).  Header
blocks set by the application are validated once per block, not per byte:
a header line may not smuggle CR, LF or NUL (response splitting), and a name
must be an RFC 9110 token.  Names already seen are remembered, so steady
traffic pays one set lookup per header.
"""

from __future__ import annotations

import enum
import http
import re
import time
from typing import Any, Final, NamedTuple

from prefork import __version__
from prefork.errors import ProtocolError
from prefork.wallclock import DAYS, MONTHS

STATUS_LINES: Final[dict[int, bytes]] = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("latin-1")
    for status in http.HTTPStatus
}

# RFC 9110 5.6.2: token = 1*tchar
TOKEN_CHARS: Final = (
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

# Bounded so an app echoing client-chosen names cannot grow it without limit.
_VALID_NAMES_MAX: Final = 1024
_valid_names: set[bytes] = set()

CONTINUE_100: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
CHUNKED_END: Final = b"0\r\n\r\n"


class InvalidResponseHeader(ValueError):
    """The application tried to send a header that would corrupt the response."""


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise InvalidResponseHeader(f"invalid status code {status!r}")
        line = STATUS_LINES[status] = b"HTTP/1.1 %d \r\n" % status
    return line


def check_name(name: bytes) -> None:
    if name in _valid_names:
        return
    if not name or name.translate(None, TOKEN_CHARS):
        raise InvalidResponseHeader(f"invalid header name {name!r}")
    if len(_valid_names) < _VALID_NAMES_MAX:
        _valid_names.add(name)


def check_block(block: bytes, lines: int) -> None:
    """`block` holds `lines` header lines, each ending in CRLF: nothing else may break a line."""
    if block.count(b"\n") != lines or block.count(b"\r") != lines or b"\0" in block:
        raise InvalidResponseHeader("header value contains CR, LF or NUL")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class Clock:
    """Monotonic time and the Date/Server header lines, refreshed once a second."""

    __slots__ = ("default_headers", "now", "server_line")

    def __init__(self, server_header: bool) -> None:
        self.server_line = b"server: prefork\r\n" if server_header else b""
        self.now = 0.0
        self.default_headers = b""
        self.tick()

    def tick(self) -> None:
        self.now = time.monotonic()
        date = http_date(time.time()).encode("ascii")
        self.default_headers = self.server_line + b"date: " + date + b"\r\n"


def http_date(timestamp: float) -> str:
    """RFC 9110 5.6.7 IMF-fixdate (email.utils would pull the email package into every worker)."""
    t = time.gmtime(timestamp)
    return (
        f"{DAYS[t.tm_wday]}, {t.tm_mday:02d} {MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


SERVER_SOFTWARE: Final = f"prefork/{__version__}"


class AppHead(NamedTuple):
    """The app's header lines, validated, and what they say about framing."""

    block: bytes
    has_length: bool
    closes: bool  # the app set `Connection: close`


# Apps send the same few header lists over and over (same content type, same
# length for the same page); validating each list once makes the steady state
# one tuple hash and one dict lookup.  Bounded: cleared when full.
_HEADS_MAX: Final = 512
_heads: dict[Any, AppHead] = {}


def cached_head(key: Any) -> AppHead | None:
    try:
        return _heads.get(key)
    except TypeError:  # e.g. headers given as lists: valid, just not cacheable
        return None


def app_head(key: Any, block: bytes, lines: int) -> AppHead:
    """Validate a rendered header block of `lines` lines and remember it under `key`."""
    check_block(block, lines)
    lowered = b"\n" + block.lower()
    if b"\ntransfer-encoding:" in lowered:
        # RFC 9112 6.1: a hop-by-hop matter; the server decides the transfer coding.
        raise InvalidResponseHeader("Transfer-Encoding is set by the server, not the app")
    at = lowered.find(b"\nconnection:")
    closes = at >= 0 and b"close" in lowered[at : lowered.find(b"\r", at)]
    head = AppHead(block, b"\ncontent-length:" in lowered, closes)
    try:
        if len(_heads) >= _HEADS_MAX:
            _heads.clear()
        _heads[key] = head
    except TypeError:
        pass
    return head


class BodyFraming(enum.Enum):
    """How the body of one response goes on the wire; decided once, by `frame`."""

    IDENTITY = "identity"  # as the app gives it: a Content-Length, or close-delimited (HTTP/1.0)
    CHUNKED = "chunked"
    HEAD = "head"  # the head describes a body that is not sent (RFC 9110 9.3.2)
    NONE = "none"  # the status allows no body (1xx, 204, 304): what the app sends is dropped


IDENTITY: Final = BodyFraming.IDENTITY
CHUNKED: Final = BodyFraming.CHUNKED
NO_BODY: Final = BodyFraming.NONE

# RFC 9110 6.4.1: a 1xx, 204 or 304 response ends at the blank line, whatever
# its headers say; a client reads any byte after it as the next response.
BODYLESS_STATUSES: Final = frozenset((*range(100, 200), 204, 304))
_HEAD: Final = b"HEAD"
_CONTENT_LENGTH_LINE: Final = re.compile(rb"(?im)^content-length:[^\r]*\r\n")


def frame(
    head: AppHead, status: int, method: bytes, version: str, keep_alive: bool, length: int
) -> tuple[bytes, BodyFraming, bool]:
    """Complete the head with the framing lines; return (lines + blank line, framing, keep_alive).

    `length` is the whole body's size when known, else -1 (streamed).  As in
    h11's `_body_framing`, the status and the request method decide first
    (some responses never have a body), the headers only after that.
    """
    block = head.block
    if status in BODYLESS_STATUSES:
        framing = NO_BODY
        if status < 200:
            # No final response follows an app's 1xx on this connection (101
            # hands it to another protocol): the HTTP exchange ends here.
            return block + b"\r\n", framing, False
        if head.has_length and status == 204:
            # RFC 9110 8.6: MUST NOT be sent in a 204.  (A 304 may carry the
            # length of the representation it validates, like HEAD.)
            block = _CONTENT_LENGTH_LINE.sub(b"", block)
    elif method == _HEAD:
        framing = BodyFraming.HEAD
        # The app's Content-Length describes the GET; a body the app produced
        # gives it too.  An empty one says nothing (apps often skip the body
        # for HEAD), so no `content-length: 0` is invented.
        if not head.has_length and length > 0:
            block += b"content-length: %d\r\n" % length
    elif head.has_length:
        framing = IDENTITY
    elif length >= 0:
        framing = IDENTITY
        block += b"content-length: %d\r\n" % length
    elif version == "1.1":
        framing = CHUNKED
        block += b"transfer-encoding: chunked\r\n"
    else:
        framing = IDENTITY
        keep_alive = False  # HTTP/1.0 without a length: closing the connection ends the body
    if head.closes:
        keep_alive = False
    elif not keep_alive:
        block += b"connection: close\r\n"
    elif version == "1.0":
        block += b"connection: keep-alive\r\n"
    return block + b"\r\n", framing, keep_alive


def error_500(default_headers: bytes) -> bytes:
    return _closing_error(500, b"Internal Server Error\n", default_headers)


def error_504(default_headers: bytes) -> bytes:
    """The answer to a request that ran past --request-timeout."""
    return _closing_error(504, b"Gateway Timeout: the request took too long\n", default_headers)


def _closing_error(status: int, body: bytes, default_headers: bytes) -> bytes:
    return (
        STATUS_LINES[status]
        + default_headers
        + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n" % len(body) + body
    )


def error_response(error: ProtocolError, default_headers: bytes) -> bytes:
    """The answer to a request refused with `error`; the connection closes after it."""
    body = f"{error.status} {_phrase(error.status)}: {error.reason}\n".encode()
    retry = b"retry-after: 1\r\n" if error.status == 503 else b""
    return (
        STATUS_LINES[error.status]
        + default_headers
        + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body)
        + retry
        + b"connection: close\r\n\r\n"
        + body
    )


def _phrase(status: int) -> str:
    return STATUS_LINES[status][13:-2].decode("latin-1")
