"""A WSGI app whose import takes $SLOW_BOOT_SECONDS, like a large Django project."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

time.sleep(float(os.environ.get("SLOW_BOOT_SECONDS", "0")))


def application(
    environ: dict[str, Any], start_response: Callable[[str, list[tuple[str, str]]], Any]
) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
