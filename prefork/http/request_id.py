"""Request ids: every request reaches the app with exactly one `X-Request-ID`.

A trusted proxy's id (a peer in --forwarded-allow-ips, as for X-Forwarded-*)
is kept, so one id follows a request through nginx, prefork and the app's own
logs; any other request gets a new one, replacing what an untrusted client
sent (a client must not choose the id an operator greps for).  The app sees
it as a request header (`HTTP_X_REQUEST_ID` in WSGI) and the access log
records it (`request_id` in JSON, `%({x-request-id}i)s` in text).

An id is this worker's random prefix and a counter: unique across workers and
restarts without a system call per request (uuid4 would read the kernel's
random source each time).
"""

from __future__ import annotations

import os
from typing import Final

HEADER: Final = b"x-request-id"


class RequestIds:
    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        # 48 random bits per worker: a collision between two workers' prefixes
        # is a one-in-2**24 event after 4,096 worker starts (birthday bound).
        self._prefix = os.urandom(6).hex().encode() + b"-"
        self._count = 0

    def new(self) -> bytes:
        self._count += 1
        return self._prefix + b"%x" % self._count

    def assign(
        self, headers: list[tuple[bytes, bytes]], *, replace: bool
    ) -> list[tuple[bytes, bytes]]:
        """`headers` with a new id: appended, or (`replace`) instead of an untrusted one."""
        if replace:
            headers = [(n, v) for n, v in headers if n != HEADER]
        headers.append((HEADER, self.new()))
        return headers
