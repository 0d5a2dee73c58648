"""`--interface auto`: WSGI, ASGI 2 and ASGI 3 told apart by how the app is called.

The same apps served by a real server: tests/integration/test_app_served_as_detected.py.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

from prefork.loader import detect


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
