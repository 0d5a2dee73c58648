"""A WSGI app with a known mix of answers, for the /metrics tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]
    if path == "/sleep":  # keeps a graceful stop waiting
        time.sleep(3.0)
    if path == "/boom":
        raise RuntimeError("the app failed")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
