"""prefork.http.response.frame, table-driven: status and method first, then the headers.

The same rules through a real server, in every mode, are in tests/integration/test_framing.py.
"""

from __future__ import annotations

from typing import Final

import pytest

from prefork.http.response import BodyFraming, app_head, frame

NONE, HEAD, IDENTITY, CHUNKED = (
    BodyFraming.NONE,
    BodyFraming.HEAD,
    BodyFraming.IDENTITY,
    BodyFraming.CHUNKED,
)
LENGTH: Final = b"Content-Length: 7\r\n"
TYPE: Final = b"content-type: text/plain\r\n"

# (status, method, version, app header block, known length) -> (framing lines, framing, keep-alive)
CASES: Final = [
    (204, b"GET", "1.1", b"", -1, b"", NONE, True),
    (204, b"GET", "1.1", b"", 0, b"", NONE, True),
    (204, b"GET", "1.1", TYPE + LENGTH, 7, TYPE, NONE, True),  # RFC 9110 8.6: removed
    (304, b"GET", "1.1", b"", -1, b"", NONE, True),
    (304, b"GET", "1.1", LENGTH, 0, LENGTH, NONE, True),  # may describe the 200's body
    (304, b"GET", "1.0", b"", -1, b"connection: keep-alive\r\n", NONE, True),
    (103, b"GET", "1.1", b"", -1, b"", NONE, False),  # no final response can follow
    (200, b"HEAD", "1.1", b"", 0, b"", HEAD, True),  # never an invented 0
    (200, b"HEAD", "1.1", b"", -1, b"", HEAD, True),  # never chunked
    (200, b"HEAD", "1.1", b"", 5, b"content-length: 5\r\n", HEAD, True),
    (200, b"HEAD", "1.1", LENGTH, 0, LENGTH, HEAD, True),  # the app's length describes the GET
    (200, b"HEAD", "1.0", b"", -1, b"connection: keep-alive\r\n", HEAD, True),
    (204, b"HEAD", "1.1", LENGTH, -1, b"", NONE, True),
    (200, b"GET", "1.1", b"", 0, b"content-length: 0\r\n", IDENTITY, True),
    (200, b"GET", "1.1", LENGTH, -1, LENGTH, IDENTITY, True),
    (200, b"GET", "1.1", b"", -1, b"transfer-encoding: chunked\r\n", CHUNKED, True),
    (200, b"GET", "1.0", b"", -1, b"connection: close\r\n", IDENTITY, False),
]


@pytest.mark.parametrize(
    ("status", "method", "version", "block", "length", "lines", "framing", "keep_alive"), CASES
)
def test_frame(
    status: int,
    method: bytes,
    version: str,
    block: bytes,
    length: int,
    lines: bytes,
    framing: BodyFraming,
    keep_alive: bool,
) -> None:
    head = app_head(("test", status, method, version, block), block, block.count(b"\n"))
    assert frame(head, status, method, version, True, length) == (
        lines + b"\r\n",
        framing,
        keep_alive,
    )
