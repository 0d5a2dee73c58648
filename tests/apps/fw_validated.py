"""WSGI apps for tests/integration/test_frameworks.py, checked by the standard library's validator.

`application` is wrapped in `wsgiref.validate.validator`, which asserts PEP 3333
on both sides: the environ and wsgi.input the server provides, how it calls
start_response, write() and the iterable (including close()).  Its complaints
are AssertionErrors (which would reach the server as an app exception, i.e. a
500) or WSGIWarnings, turned into errors below so they fail the same way.

`plain_application` serves the same routes unwrapped, so the server's own
wsgi.file_wrapper object reaches it (the validator hides it behind an iterator).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.validate import WSGIWarning, validator

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

warnings.simplefilter("error", WSGIWarning)

# The file served through wsgi.file_wrapper; the test writes it and names it here.
FILE_ENV = "FW_FILE_PATH"
CLOSED_MARKER_ENV = "FW_CLOSED_PATH"

_JSON = [("Content-Type", "application/json")]


def _json(start_response: StartResponse, payload: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(payload, sort_keys=True).encode()
    start_response(status, [*_JSON, ("Content-Length", str(len(body)))])
    return [body]


def _digest(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _read_with_length(environ: WSGIEnvironment) -> dict[str, Any]:
    stream = environ["wsgi.input"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = stream.read(length)
    # PEP 3333: reading past CONTENT_LENGTH must look like end of file, not block.
    after = stream.read(1024)
    return {**_digest(data), "after_eof": after.decode("latin-1")}


def _read_in_pieces(environ: WSGIEnvironment) -> dict[str, Any]:
    """read(n) with a small n until b"": works for chunked bodies (no CONTENT_LENGTH)."""
    stream = environ["wsgi.input"]
    pieces = []
    while piece := stream.read(1000):
        pieces.append(piece)
    return {**_digest(b"".join(pieces)), "pieces": len(pieces)}


def _readline(environ: WSGIEnvironment) -> dict[str, Any]:
    stream = environ["wsgi.input"]
    lines = []
    while line := stream.readline():
        lines.append(line.decode("latin-1"))
    return {"lines": lines}


def _readline_sized(environ: WSGIEnvironment) -> dict[str, Any]:
    stream = environ["wsgi.input"]
    lines = []
    while line := stream.readline(4):
        lines.append(line.decode("latin-1"))
    return {"lines": lines}


def _readlines(environ: WSGIEnvironment) -> dict[str, Any]:
    return {"lines": [line.decode("latin-1") for line in environ["wsgi.input"].readlines()]}


def _iterate(environ: WSGIEnvironment) -> dict[str, Any]:
    return {"lines": [line.decode("latin-1") for line in environ["wsgi.input"]]}


BODY_READERS = {
    "/read": _read_with_length,
    "/read-pieces": _read_in_pieces,
    "/readline": _readline,
    "/readline-sized": _readline_sized,
    "/readlines": _readlines,
    "/iter": _iterate,
}


class _ClosingBody:
    """An iterable with close(); records the call so a test can see the server made it."""

    def __init__(self, parts: list[bytes], marker: str | None) -> None:
        self._parts = parts
        self._marker = marker

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._parts)

    def close(self) -> None:
        if self._marker:
            with open(self._marker, "a", encoding="utf-8") as fh:
                fh.write("closed\n")


def _environ_summary(environ: WSGIEnvironment) -> dict[str, Any]:
    keys = (
        "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
        "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "CONTENT_TYPE", "CONTENT_LENGTH",
        "HTTP_HOST", "HTTP_X_CUSTOM", "wsgi.url_scheme",
    )  # fmt: skip
    summary = {key: environ.get(key) for key in keys}
    summary["wsgi.version"] = list(environ["wsgi.version"])
    summary["has_file_wrapper"] = "wsgi.file_wrapper" in environ
    return summary


def _routes(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    if path == "/" and method in ("GET", "HEAD"):
        body = b"hello from a validated app\n"
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    if path.startswith("/environ"):
        return _json(start_response, _environ_summary(environ))
    if path in BODY_READERS and method == "POST":
        return _json(start_response, BODY_READERS[path](environ))
    if path == "/errors":
        environ["wsgi.errors"].write("fw-validated: a line for wsgi.errors\n")
        environ["wsgi.errors"].flush()
        return _json(start_response, {"written": True})
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written-1;")
        write(b"written-2;")
        return [b"returned-3"]
    if path == "/closing":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _ClosingBody([b"part-1;", b"part-2"], os.environ.get(CLOSED_MARKER_ENV))
    if path == "/file":
        fh = open(os.environ.get(FILE_ENV, __file__), "rb")  # noqa: SIM115 - the server closes it
        size = os.fstat(fh.fileno()).st_size
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
        )
        wrapped: Iterable[bytes] = environ["wsgi.file_wrapper"](fh, 32 * 1024)
        return wrapped
    if path == "/exc-info":
        # The PEP 3333 error-page idiom: headers chosen, then an error before any
        # output; start_response again with exc_info replaces the headers.
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("computing the page failed")
        except ValueError:
            body = b"recovered from ValueError"
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/plain"), ("X-Recovered", "yes"),
                 ("Content-Length", str(len(body)))],
                sys.exc_info(),
            )  # fmt: skip
            return [body]
    if path == "/exc-after-output":
        return _fail_after_output(start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


def _fail_after_output(start_response: StartResponse) -> Iterator[bytes]:
    """Headers and a first chunk are out when the error happens: the server must
    re-raise from start_response (PEP 3333) and cut the response short."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first part;"
    try:
        raise RuntimeError("failed after the headers were sent")
    except RuntimeError:
        start_response(
            "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
        )
    yield b"must never be sent"


plain_application: WSGIApplication = _routes
application: WSGIApplication = validator(_routes)
