"""`--interface auto`: WSGI, ASGI 2 and ASGI 3 told apart by how the app is called."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefork.loader import detect
from tests.server import run_server


def wsgi_function(environ: Any, start_response: Any) -> list[bytes]:
    return []


def wsgi_with_option(environ: Any, start_response: Any, debug: bool = False) -> list[bytes]:
    return []


class WSGIClass:
    """PEP 3333: the class is the application, its instances the response iterable."""

    def __init__(self, environ: Any, start_response: Any) -> None:
        start_response("200 OK", [])

    def __iter__(self) -> Iterator[bytes]:
        yield b""


class WSGIObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


class ASGI2Class:
    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        pass


class ASGI2VarargsClass:
    def __init__(self, *args: Any) -> None:
        pass

    async def __call__(self, receive: Any, send: Any) -> None:
        pass


def asgi2_function(scope: Any) -> Any:
    return ASGI2Class(scope)


async def asgi3_function(scope: Any, receive: Any, send: Any) -> None:
    pass


class ASGI3Object:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


def decorated(app: Any) -> Any:
    @functools.wraps(app)
    def wrapper(*args: Any) -> Any:
        return app(*args)

    return wrapper


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (wsgi_function, "wsgi"),
        (wsgi_with_option, "wsgi"),
        (WSGIClass, "wsgi"),
        (WSGIObject(), "wsgi"),
        (decorated(wsgi_function), "wsgi"),
        (ASGI2Class, "asgi2"),
        (ASGI2VarargsClass, "asgi2"),
        (asgi2_function, "asgi2"),
        (asgi3_function, "asgi3"),
        (ASGI3Object(), "asgi3"),
        (functools.partial(asgi3_function), "asgi3"),
    ],
    ids=lambda value: value if isinstance(value, str) else getattr(value, "__name__", "object"),
)
def test_detect(app: Any, expected: str) -> None:
    assert detect(app) == expected


APPS = """\
class WSGIApp:
    def __init__(self, environ, start_response):
        self.body = ("wsgi class " + environ["PATH_INFO"]).encode()
        start_response("200 OK", [("Content-Length", str(len(self.body)))])

    def __iter__(self):
        yield self.body


class ASGI2App:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] != "http":
            return
        body = ("asgi2 class " + self.scope["path"]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


async def asgi3_app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = ("asgi3 " + scope["path"]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


@pytest.mark.parametrize(
    ("attr", "declared", "answer"),
    [
        ("WSGIApp", "wsgi", "wsgi class /x"),
        ("ASGI2App", "asgi2", "asgi2 class /x"),
        ("asgi3_app", "asgi", "asgi3 /x"),
    ],
)
def test_served_as_detected(tmp_path: Path, attr: str, declared: str, answer: str) -> None:
    (tmp_path / "detected_apps.py").write_text(APPS)
    spec = f"detected_apps:{attr}"
    with run_server(spec, "--app-dir", str(tmp_path)) as server:
        assert f"Application: {spec} ({declared}, detected)" in server.log
        response = httpx.get(server.url + "/x", timeout=10)
        assert response.status_code == 200
        assert response.text == answer
