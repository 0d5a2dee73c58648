"""An app that prints to stdout and stderr, for the output-capture and `prefork logs` tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/fail":
        raise RuntimeError("failure on purpose")
    print(f"out: {path}", flush=True)
    print(f"err: {path}", file=sys.stderr, flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
