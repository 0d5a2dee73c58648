"""`%({NAME}e)s` through a real server: the request's WSGI environ, else the worker's os.environ."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.server import run_server

APPS = """\
def wsgi_app(environ, start_response):
    environ["myapp.user"] = "alice"  # an app adds what it wants logged
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""
FORMAT = "%({RELEASE_TAG}e)s|%({myapp.user}e)s|%({request_method}e)s|%({NO_SUCH_KEY}e)s"


def logged_line(path: Path, timeout: float = 20.0) -> str:
    """The first access log line (the log is written in batches, at least once a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and (text := path.read_text()):
            return text.splitlines()[0]
        time.sleep(0.05)
    raise AssertionError(f"nothing in {path} within {timeout}s")


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        ("wsgi_app", "v42|alice|GET|-"),
        # ASGI has no environ: only the process's environment variables.
        ("asgi_app", "v42|-|-|-"),
    ],
)
def test_environ_atoms(tmp_path: Path, app: str, expected: str) -> None:
    (tmp_path / "environ_log_apps.py").write_text(APPS)
    access_log = tmp_path / "access.log"
    args = ("--app-dir", str(tmp_path), "--access-logfile", str(access_log))
    with run_server(
        f"environ_log_apps:{app}",
        *args,
        "--access-logformat",
        FORMAT,
        env={"RELEASE_TAG": "v42"},
    ) as server:
        assert httpx.get(server.url, timeout=10).text == "ok"
        assert logged_line(access_log) == expected
