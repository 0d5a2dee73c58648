"""prefork's own RFC 9112 checks: what llhttp (inside httptools) lets through.

Measured against httptools 0.6/llhttp 9, the parser already rejects:
Content-Length together with Transfer-Encoding, duplicate or malformed
Content-Length, obs-fold, whitespace before the colon, NUL/CR/LF/DEL inside
fields, bare LF line endings, malformed chunk sizes and extensions.

It accepts, and this module refuses:
- a missing or repeated Host on HTTP/1.1, or one with characters no
  authority may contain (RFC 9112 3.2: 400);
- versions other than 1.0 and 1.1 (`HTTP/2.0`, HTTP/0.9 style; 505);
- Transfer-Encoding on HTTP/1.0 (RFC 9112 6.1: the framing is not to be
  trusted; 400), codings other than a single `chunked` (unknown: 501, final
  coding not chunked: 400, `chunked` twice: 400);
- request targets other than origin-form, absolute-form, `*` for OPTIONS
  (RFC 9112 3.2), including a fragment (`#`) or CONNECT's authority-form;
- a declared body larger than --limit-request-body (413), before reading it.

Header names with underscores are dropped by the connection before they are
stored (as nginx and gunicorn do): `Content_Length` and `Content-Length` map
to the same WSGI environ key.  Trailer fields never reach the application.

Everything here runs once per header block, on data the parser already split.
"""

from __future__ import annotations

from typing import Final

from prefork.errors import ProtocolError

# Header names the connection must look at; every other name is only stored.
HOST: Final = b"host"
CONTENT_LENGTH: Final = b"content-length"
TRANSFER_ENCODING: Final = b"transfer-encoding"
EXPECT: Final = b"expect"
SPECIAL_NAMES: Final = frozenset({HOST, CONTENT_LENGTH, TRANSFER_ENCODING, EXPECT})

# RFC 3986 authority characters: reg-name, IP literals, port.
HOST_CHARS: Final = (
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:[]%"
)
# The same test for the hot path: a table that keeps HOST_CHARS and changes
# every other byte (to NUL, and NUL to 1), so `host.translate(HOST_TABLE) !=
# host` says the Host is not plain.  Several times cheaper than
# translate(None, HOST_CHARS), which builds a table on every call.
HOST_TABLE: Final = bytes(
    [byte if byte in HOST_CHARS else 1 if byte == 0 else 0 for byte in range(256)]
)
_TOKEN_CHARS: Final = (
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
SUPPORTED_VERSIONS: Final = frozenset({"1.1", "1.0"})


def check_head(
    method: bytes,
    target: bytes,
    version: str,
    hosts: int,
    host: bytes,
    transfer_encoding: bytes | None,
    content_length: int,
    limit_body: int,
) -> None:
    """Raise ProtocolError if this header block must be refused.

    `hosts` counts Host fields, `host` is the last one's value,
    `transfer_encoding` joins every Transfer-Encoding value with commas,
    `content_length` is -1 when absent.
    """
    if version not in SUPPORTED_VERSIONS:
        raise ProtocolError(505, f"HTTP/{version} is not supported")
    if hosts > 1:
        raise ProtocolError(400, "more than one Host header")
    if version == "1.1" and hosts == 0:
        raise ProtocolError(400, "missing Host header")
    if hosts and host.translate(None, HOST_CHARS):
        raise ProtocolError(400, "invalid Host header")
    first = target[:1]
    if first != b"/" and not _other_target_form(method, target):
        raise ProtocolError(400, "invalid request target")
    if b"#" in target:
        raise ProtocolError(400, "fragment in request target")
    if transfer_encoding is not None:
        _check_transfer_encoding(transfer_encoding, version)
    elif limit_body and content_length > limit_body:
        raise ProtocolError(413, "request body larger than the limit")


def _other_target_form(method: bytes, target: bytes) -> bool:
    if target == b"*":
        return method == b"OPTIONS"
    lowered = target[:8].lower()
    return lowered.startswith((b"http://", b"https://")) and method != b"CONNECT"


def _check_transfer_encoding(value: bytes, version: str) -> None:
    if version == "1.0":
        raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
    codings = [c.strip().lower() for c in value.split(b",")]
    if codings == [b"chunked"]:
        return
    if codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
        raise ProtocolError(400, "invalid Transfer-Encoding")
    raise ProtocolError(501, "unsupported transfer coding")


def method_status(method: bytes) -> int:
    """The status for a method llhttp refused: a well-formed but unknown one is 501."""
    return 501 if method and not method.translate(None, _TOKEN_CHARS) else 400


def check_sizes(
    target: bytes, headers: list[tuple[bytes, bytes]], field_limit: int, block_limit: int
) -> None:
    """Each field within `field_limit`, the whole head within `block_limit` (431)."""
    total = len(target) + len("OPTIONS  HTTP/1.1\r\n\r\n")
    for name, value in headers:
        size = len(name) + len(value)
        if size > field_limit:
            raise ProtocolError(431, "header field too large")
        total += size + len(": \r\n")
    if total > block_limit:
        raise ProtocolError(431, "request header block too large")
