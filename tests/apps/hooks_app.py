"""Apps for the server-hook tests.

`db_wsgi` holds a database connection opened at import, as apps preloaded
with --preload do; a post_fork hook closes it so each worker opens its own.
`metrics_wsgi` writes a per-process metrics file, as prometheus_client's
multiprocess mode does, which child_exit must clean up.
"""

from __future__ import annotations

import glob
import os
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

OPENED_IN = os.getpid()
connection: sqlite3.Connection | None = sqlite3.connect(":memory:", check_same_thread=False)


def close_connection() -> None:
    """What a post_fork hook does to a connection inherited from the master."""
    global connection
    if connection is not None:
        connection.close()
        connection = None


def db_wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    global connection, OPENED_IN
    if connection is None:
        connection = sqlite3.connect(":memory:", check_same_thread=False)
        OPENED_IN = os.getpid()
    connection.execute("select 1")
    body = f"pid={os.getpid()} opened-in={OPENED_IN}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def metrics_dir() -> str:
    return os.environ["PROMETHEUS_MULTIPROC_DIR"]


def write_metrics_file() -> None:
    with open(os.path.join(metrics_dir(), f"counter_{os.getpid()}.db"), "w") as fh:
        fh.write("0")


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """A stand-in for prometheus_client.multiprocess.mark_process_dead: the same file removal."""
    for name in glob.glob(os.path.join(path or metrics_dir(), f"*_{pid}.db")):
        os.remove(name)


def metrics_wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    body = f"pid={os.getpid()}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
