"""Apps that misbehave on purpose, for the worker-health tests (tests/test_health.py).

Paths (WSGI and ASGI alike where it makes sense):
    /leak            keeps 1 MiB per request for the life of the worker
    /grow?MB         keeps MB MiB at once
    /sleep?S         takes S seconds (WSGI: time.sleep, touching the file named by
                     the X-Mark header first; ASGI: asyncio.sleep)
    /stream?N        WSGI: yields N chunks, one a second
    /stall           ASGI: starts the response, then sleeps 30 s
    /segv            the worker dies of SIGSEGV
    anything else    `pid=<pid>`
ASGI requests cancelled by --request-timeout append their path to the file
named by $HEALTH_CANCELLED.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tests.apps import proc_app
from tests.apps.lifespan import run_lifespan

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
MIB = 1 << 20

_kept: list[bytes] = []

# Set for the crash-loop tests: a worker dies at import once this file exists.
_CRASH_FLAG = os.environ.get("HEALTH_CRASH_FLAG")
if _CRASH_FLAG and os.path.exists(_CRASH_FLAG):
    os._exit(1)


def _keep(mib: int) -> None:
    # b"x" * n writes every page, so the memory is resident (bytes(n) might not be).
    # One block, filled while this thread holds the GIL: the worker's memory
    # check (on the loop thread) sees the size before or after, never halfway,
    # so a 200 MiB step crosses the hard limit without tripping the soft one.
    _kept.append(b"x" * (mib * MIB))


def _chunks(count: int) -> Iterator[bytes]:
    for i in range(count):
        if i:
            time.sleep(1.0)
        yield b"chunk %d\n" % i


def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/leak":
        _keep(1)
    elif path == "/grow":
        _keep(int(query))
    elif path == "/sleep":
        mark = environ.get("HTTP_X_MARK")
        if mark:  # tells the test the request is in flight
            open(mark, "w").close()
        time.sleep(float(query))
    elif path == "/segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _chunks(int(query))
    return proc_app.wsgi({**environ, "PATH_INFO": "/"}, start_response)


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    path = scope["path"]
    try:
        if path == "/sleep":
            await asyncio.sleep(float(scope["query_string"]))
        elif path == "/stall":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
            await asyncio.sleep(30)
    except asyncio.CancelledError:
        with open(os.environ["HEALTH_CANCELLED"], "a") as fh:
            fh.write(path + "\n")
        raise
    await proc_app.asgi(scope, receive, send)
