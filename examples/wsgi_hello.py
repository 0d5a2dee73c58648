"""The smallest WSGI application: no framework, standard library only.

Serve it from the repository root:

    prefork examples.wsgi_hello:application --workers 2

then `curl http://127.0.0.1:8000/` answers "Hello, world!".  A request with a
body (`curl -d hi http://127.0.0.1:8000/echo`) is echoed back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/echo":
        # CONTENT_LENGTH may be absent or empty (chunked request): read() to EOF then,
        # which PEP 3333 servers must make safe by ending wsgi.input at the body's end.
        length = environ.get("CONTENT_LENGTH") or ""
        body = environ["wsgi.input"].read(int(length)) if length else environ["wsgi.input"].read()
        start_response(
            "200 OK",
            [
                ("Content-Type", environ.get("CONTENT_TYPE") or "application/octet-stream"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
    body = b"Hello, world!\n"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
