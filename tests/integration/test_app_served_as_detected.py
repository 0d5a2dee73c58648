"""Apps detected as WSGI (a class, PEP 3333), ASGI 2 and ASGI 3 are served as such.

How detection decides: tests/unit/test_app_detection.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.server import run_server

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
