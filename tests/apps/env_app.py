"""Answers with the variables the --env-file tests set (read per request, and at import)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

AT_IMPORT = os.environ.get("ENV_APP_REQUIRED", "")  # --check-config imports this module
if not AT_IMPORT:
    raise RuntimeError("ENV_APP_REQUIRED is not set")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = f"{os.environ.get('GREETING', '-')}|{os.environ.get('GONE', '-')}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
