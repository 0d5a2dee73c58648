"""WSGI and ASGI semantics as applications see them, through a real prefork server.

WSGI: tests/apps/fw_validated.py wraps its routes in `wsgiref.validate`, the
standard library's PEP 3333 checker.  A violation on the server's side raises
AssertionError (or a WSGIWarning, made an error) inside the app, so it would
surface as a 500 and a logged traceback: every test asserts the exact status
and body, and the module fixture asserts that no validator complaint reached
the server log.  The same routes are also served unwrapped, so the server's
own wsgi.input iteration and wsgi.file_wrapper are exercised too, and
validated again with `--threads 4` (the thread-pool exchange).

ASGI: tests/apps/fw_scope.py answers with its scope as JSON; served with
`--root-path /api` and one worker (so lifespan state and its per-request
copies are observed in the same process).
"""

from __future__ import annotations

import hashlib
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps.fw_scope import STARTUP_TOKEN
from tests.responses import Response, ResponseReader, Truncated
from tests.server import Server, run_server

TIMEOUT = httpx.Timeout(20.0)
VALIDATOR_COMPLAINTS = ("AssertionError", "WSGIWarning", "garbage collected without being closed")


@pytest.fixture(scope="module")
def served_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # An odd size, larger than one file_wrapper block and one socket buffer.
    path = tmp_path_factory.mktemp("fw") / "served.bin"
    path.write_bytes(random.Random(7).randbytes(3 * 1024 * 1024 + 123))
    return path


@pytest.fixture(scope="module")
def closed_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fw-closed") / "closed.log"


def _wsgi_server(
    app: str, served_file: Path, closed_marker: Path, threads: int = 1
) -> Iterator[Server]:
    env = {"FW_FILE_PATH": str(served_file), "FW_CLOSED_PATH": str(closed_marker)}
    with run_server(app, "--workers", "1", "--threads", str(threads), env=env) as server:
        yield server
    for complaint in VALIDATOR_COMPLAINTS:
        assert complaint not in server.log, f"{complaint} in the server log:\n{server.log}"


@pytest.fixture(scope="module")
def validated(served_file: Path, closed_marker: Path) -> Iterator[Server]:
    yield from _wsgi_server("tests.apps.fw_validated:application", served_file, closed_marker)


@pytest.fixture(scope="module")
def plain(served_file: Path, closed_marker: Path) -> Iterator[Server]:
    yield from _wsgi_server("tests.apps.fw_validated:plain_application", served_file, closed_marker)


@pytest.fixture(scope="module")
def threaded(served_file: Path, closed_marker: Path) -> Iterator[Server]:
    # --threads moves the app off the event loop: a different exchange, whose
    # wsgi.input streams the body from the loop instead of buffering it first.
    yield from _wsgi_server(
        "tests.apps.fw_validated:application", served_file, closed_marker, threads=4
    )


@pytest.fixture(scope="module", params=["validated", "plain", "threaded"])
def wsgi_server(request: pytest.FixtureRequest) -> Server:
    server: Server = request.getfixturevalue(request.param)
    return server


def client_for(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT)


def raw_exchange(server: Server, request: bytes) -> tuple[Response, int]:
    """Send one request on a fresh connection and read until the server closes it.

    Returns the response (cut short if `complete` is False) and the client's
    local port.  Nothing may follow the response.
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(request)
        reader = ResponseReader(sock, timeout=10)
        try:
            response = reader.read()
        except Truncated as exc:
            assert exc.response is not None, exc
            return exc.response, local_port
        assert reader.rest() == b"", "bytes after the response"
    return response, local_port


def wait_until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    # For effects with no readiness signal of their own (a file an app writes).
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# -- WSGI: the basics --------------------------------------------------------------------


def test_get(wsgi_server: Server) -> None:
    with client_for(wsgi_server) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == "hello from a validated app\n"


def test_head_has_headers_but_no_body(wsgi_server: Server) -> None:
    with client_for(wsgi_server) as client:
        head = client.head("/")
        # Same connection: if HEAD had leaked a body, this response would be garbled.
        get = client.get("/")
    assert head.status_code == 200
    assert head.headers["content-length"] == "27"
    assert head.content == b""
    assert get.status_code == 200
    assert get.text == "hello from a validated app\n"


def test_environ(wsgi_server: Server) -> None:
    with client_for(wsgi_server) as client:
        response = client.get(
            "/environ/caf%C3%A9", params={"a": "1", "b": " "}, headers={"X-Custom": "Value"}
        )
    assert response.status_code == 200, response.text
    environ = response.json()
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["SCRIPT_NAME"] == ""
    # PEP 3333: the path is percent-decoded, its bytes carried as latin-1 ("native strings").
    assert environ["PATH_INFO"] == "/environ/caf\u00c3\u00a9"
    assert environ["QUERY_STRING"] == "a=1&b=+"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["SERVER_PORT"] == str(wsgi_server.port)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["HTTP_HOST"] == f"127.0.0.1:{wsgi_server.port}"
    assert environ["HTTP_X_CUSTOM"] == "Value"
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.version"] == [1, 0]
    assert environ["has_file_wrapper"] is True


def test_environ_with_root_path(served_file: Path, closed_marker: Path) -> None:
    # Behind a proxy that strips /api: SCRIPT_NAME carries it, PATH_INFO the rest.
    env = {"FW_FILE_PATH": str(served_file), "FW_CLOSED_PATH": str(closed_marker)}
    app = "tests.apps.fw_validated:application"
    with (
        run_server(app, "--root-path", "/api/", env=env) as server,
        client_for(server) as client,
    ):
        response = client.get("/environ/x")
    assert response.status_code == 200, response.text
    environ = response.json()
    assert environ["SCRIPT_NAME"] == "/api"
    assert environ["PATH_INFO"] == "/environ/x"
    for complaint in VALIDATOR_COMPLAINTS:
        assert complaint not in server.log, server.log


# -- WSGI: reading the request body -------------------------------------------------------

LINES_BODY = b"first line\n\nthird: " + b"x" * 70_000 + b"\nlast line without newline"
EXPECTED_LINES = [
    "first line\n",
    "\n",
    "third: " + "x" * 70_000 + "\n",
    "last line without newline",
]


def test_read_with_content_length(wsgi_server: Server) -> None:
    body = random.Random(3).randbytes(300_000)
    with client_for(wsgi_server) as client:
        response = client.post("/read", content=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "after_eof": "",
    }


def test_read_chunked_body_in_pieces(wsgi_server: Server) -> None:
    body = random.Random(4).randbytes(250_001)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 16_384):
            yield body[start : start + 16_384]

    with client_for(wsgi_server) as client:
        response = client.post("/read-pieces", content=chunks())
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["size"] == len(body)
    assert result["sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("route", ["/readline", "/readlines", "/iter"])
def test_line_reading(wsgi_server: Server, route: str) -> None:
    with client_for(wsgi_server) as client:
        response = client.post(route, content=LINES_BODY)
    assert response.status_code == 200, response.text
    assert response.json() == {"lines": EXPECTED_LINES}


def test_line_reading_of_chunked_body(wsgi_server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        # Split inside lines, so readline must join pieces from several chunks.
        for start in range(0, len(LINES_BODY), 5_000):
            yield LINES_BODY[start : start + 5_000]

    with client_for(wsgi_server) as client:
        response = client.post("/readline", content=chunks())
    assert response.status_code == 200, response.text
    assert response.json() == {"lines": EXPECTED_LINES}


def test_readline_with_size(wsgi_server: Server) -> None:
    with client_for(wsgi_server) as client:
        response = client.post("/readline-sized", content=b"abcdefg\nbb\n")
    assert response.status_code == 200, response.text
    assert response.json() == {"lines": ["abcd", "efg\n", "bb\n"]}


# -- WSGI: producing the response ---------------------------------------------------------


def test_write_callable(wsgi_server: Server) -> None:
    with client_for(wsgi_server) as client:
        response = client.get("/write")
    assert response.status_code == 200
    assert response.content == b"written-1;written-2;returned-3"


def test_iterable_close_is_called(wsgi_server: Server, closed_marker: Path) -> None:
    before = closed_marker.read_text().count("closed") if closed_marker.exists() else 0
    with client_for(wsgi_server) as client:
        response = client.get("/closing")
    assert response.status_code == 200
    assert response.content == b"part-1;part-2"
    wait_until(
        lambda: closed_marker.exists() and closed_marker.read_text().count("closed") > before,
        "the server to call close() on the response iterable",
    )


def test_file_wrapper_sends_the_file(wsgi_server: Server, served_file: Path) -> None:
    with client_for(wsgi_server) as client:
        response = client.get("/file")
        again = client.get("/")  # the connection stays usable after a file response
    expected = served_file.read_bytes()
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(expected))
    assert len(response.content) == len(expected)
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(expected).digest()
    assert again.status_code == 200


def test_file_wrapper_head(wsgi_server: Server, served_file: Path) -> None:
    with client_for(wsgi_server) as client:
        head = client.head("/file")
        get = client.get("/")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(served_file.stat().st_size)
    assert head.content == b""
    assert get.text == "hello from a validated app\n"


def test_start_response_with_exc_info_before_output(wsgi_server: Server) -> None:
    with client_for(wsgi_server) as client:
        response = client.get("/exc-info")
    # The app's own error page, not a server-made 500: the header proves it.
    assert response.status_code == 500
    assert response.headers["x-recovered"] == "yes"
    assert response.text == "recovered from ValueError"


def test_exc_info_after_output_never_sends_the_replacement(wsgi_server: Server) -> None:
    """The app yields a chunk, then calls start_response with exc_info.

    PEP 3333: headers count as sent once the app yielded a non-empty chunk, so
    that call must re-raise.  Either the server had already sent the head (then
    the response is cut short: no chunked terminator) or it had not (then it
    may still answer with its own 500).  What must never happen is the app's
    replacement status and the body produced after it reaching the client.
    """
    start = len(wsgi_server.lines)
    response, _ = raw_exchange(
        wsgi_server, b"GET /exc-after-output HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert b"must never be sent" not in response.body, response
    if response.status == 200:
        assert b"first part;" in response.body
        assert not response.complete, "a cut response must not look complete"
    else:
        assert response.status == 500, response
        assert b"first part;" not in response.body, "the app's 200 body under a 500 status"
    wsgi_server.wait_for_log("RuntimeError: failed after the headers were sent", start=start)
    with client_for(wsgi_server) as client:
        assert client.get("/").status_code == 200  # the worker survives


def test_wsgi_errors_reaches_the_log(wsgi_server: Server) -> None:
    start = len(wsgi_server.lines)
    with client_for(wsgi_server) as client:
        assert client.get("/errors").status_code == 200
    wsgi_server.wait_for_log("fw-validated: a line for wsgi.errors", start=start)


# -- ASGI scope ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scope_server() -> Iterator[Server]:
    with run_server("tests.apps.fw_scope:app", "--workers", "1", "--root-path", "/api") as server:
        yield server
    assert "Traceback" not in server.log, server.log


def test_asgi_http_scope(scope_server: Server) -> None:
    with client_for(scope_server) as client:
        response = client.get(
            "/caf%C3%A9", params={"x": "1", "y": " "}, headers={"X-Custom": "Mixed Case"}
        )
    assert response.status_code == 200, response.text
    scope = response.json()
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["asgi"]["spec_version"] in {"2.3", "2.4", "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    # The proxy in front stripped /api; the app sees it as root_path, and path
    # includes it (ASGI spec; uvicorn >= 0.26 and Starlette >= 0.35 agree).
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/café"
    assert scope["raw_path"] == {"type": "bytes", "latin1": "/caf%C3%A9"}
    assert scope["query_string"] == {"type": "bytes", "latin1": "x=1&y=+"}
    headers = scope["headers"]
    assert all(n_type == "bytes" and v_type == "bytes" for n_type, _, v_type, _ in headers)
    assert all(name == name.lower() for _, name, _, _ in headers)
    pairs = [(name, value) for _, name, _, value in headers]
    assert ("x-custom", "Mixed Case") in pairs
    assert ("host", f"127.0.0.1:{scope_server.port}") in pairs
    assert scope["server"] == ["127.0.0.1", scope_server.port]
    assert scope["client"][0] == "127.0.0.1"
    assert isinstance(scope["client"][1], int)


def test_asgi_client_port_and_http_10(scope_server: Server) -> None:
    response, local_port = raw_exchange(
        scope_server, b"POST /echo?q HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert response.status == 200, response
    scope = response.json()
    assert scope["client"] == ["127.0.0.1", local_port]
    assert scope["http_version"] == "1.0"
    assert scope["method"] == "POST"
    assert scope["path"] == "/api/echo"
    assert scope["query_string"]["latin1"] == "q"
    assert scope["body_size"] == 5


def test_asgi_root_path_through_fastapi() -> None:
    # Starlette routes on path minus root_path and builds URLs with root_path:
    # both work only if the server's scope follows the convention checked above.
    with (
        run_server("examples.fastapi_app:app", "--root-path", "/api") as server,
        client_for(server) as client,
    ):
        index = client.get("/")
        docs = client.get("/docs")
        openapi = client.get("/openapi.json")
    assert index.json() == {"message": "Hello from FastAPI!"}
    assert docs.status_code == 200
    assert "url: '/api/openapi.json'" in docs.text
    assert openapi.json()["servers"] == [{"url": "/api"}]


def test_asgi_lifespan_state_is_copied_into_each_request(scope_server: Server) -> None:
    with client_for(scope_server) as client:
        first = client.get("/mutate-state").json()
        second = client.get("/").json()
    for scope in (first, second):
        assert scope["state"]["token"] == STARTUP_TOKEN
        assert scope["state"]["lifespan_pid"] == scope["pid"]
    assert first["state"]["mutated"] == "by a request"
    # Each request gets its own copy: the first request's change must not leak.
    assert "mutated" not in second["state"]
