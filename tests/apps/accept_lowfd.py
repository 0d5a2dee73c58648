"""A WSGI app whose worker can open only a few more descriptors (tests/integration/test_accept.py).

Importing it (in the worker, as the app is not preloaded) lowers the soft
RLIMIT_NOFILE to the highest descriptor in use plus ACCEPT_TEST_HEADROOM, so
a test can exhaust the worker's descriptors with a few dozen idle
connections.  The event loop, created after the import, takes a few of the
spare ones.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterable
from typing import Any

HEADROOM = int(os.environ.get("ACCEPT_TEST_HEADROOM", "24"))
_BODY = b"ok"


def _highest_fd() -> int:
    # os.listdir would need a descriptor of its own; fstat does not.
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = 2
    for fd in range(min(soft, 4096)):
        try:
            os.fstat(fd)
        except OSError:
            continue
        highest = fd
    return highest


_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (_highest_fd() + 1 + HEADROOM, _hard))


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [_BODY]
