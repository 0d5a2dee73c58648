"""Answers with the hot path the worker runs: `prefork.compiled.MODE`, the connection's file."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from prefork import compiled


def application(
    environ: dict[str, Any], start_response: Callable[[str, list[tuple[str, str]]], Any]
) -> Iterable[bytes]:
    connection = sys.modules["prefork.http.connection"].__file__ or ""
    body = f"{compiled.MODE}\n{os.path.basename(connection)}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
