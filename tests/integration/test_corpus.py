"""The hostile-input corpus, run against a live server, plus timeout and limit behaviour.

Every case in tests/corpus/ (format: tests/corpus/README.md) runs against the
WSGI and the ASGI echo app, sent three ways: whole, byte by byte (cases up to
BYTEWISE_MAX bytes), and cut into 3 pieces at seeded random points.  The
servers are module-scoped and shared: a case that leaves a server unhealthy
makes the next health check fail loudly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Final

import pytest

from tests.corpus.harness import (
    PROBE,
    Case,
    case_params,
    connect,
    healthy,
    judge,
    load_cases,
    read_responses,
    run_case,
)
from tests.responses import Closed, ResponseReader
from tests.server import Serve, Server, SharedServers, run_server

ECHO: Final = {
    "wsgi": "tests.apps.hardening_echo:wsgi_app",
    "asgi": "tests.apps.hardening_echo:asgi_app",
}
SERVER_ARGS: Final = {"default": (), "limited": ("--limit-request-body", "1024")}
# Byte-by-byte sending costs a wakeup per byte on the server; beyond this the
# whole and split modes already cover the case.
BYTEWISE_MAX: Final = 16384
CASES: Final = load_cases()


def echo(shared_server: SharedServers, interface: str, settings: str = "default") -> Server:
    """The module's echo server for an interface and a corpus `server:` setting."""
    return shared_server(ECHO[interface], *SERVER_ARGS[settings])


@pytest.mark.parametrize(("case", "interface", "mode"), case_params(CASES, BYTEWISE_MAX))
def test_corpus(shared_server: SharedServers, case: Case, interface: str, mode: str) -> None:
    server = echo(shared_server, interface, case.server)
    result = run_case(server.port, case, mode)
    problems = judge(case, result)
    assert not problems, f"{case.name} [{interface}/{mode}] ({case.doc}): " + "; ".join(problems)
    assert healthy(server.port), f"server unhealthy after {case.name}"


def test_corpus_size() -> None:
    categories: dict[str, int] = {}
    for case in CASES:
        categories[case.category] = categories.get(case.category, 0) + 1
    assert len(CASES) >= 100, categories
    assert categories.get("valid", 0) >= 20


# -- behaviour that needs time or several connections ------------------------------------


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_expect_continue_waits_for_interim(shared_server: SharedServers, interface: str) -> None:
    """Headers with Expect: 100-continue alone: the server asks for the body with 100."""
    with connect(echo(shared_server, interface).port) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        reader = ResponseReader(sock, timeout=3.0)
        interim = reader.read()
        assert interim.status == 100
        sock.sendall(b"hello")
        final = reader.read()
        assert final.status == 200
        assert final.json()["body"] == "hello"


def test_body_limit_refused_before_body_sent(shared_server: SharedServers) -> None:
    """413 for a declared oversize body arrives without the client sending any body."""
    with connect(echo(shared_server, "wsgi", "limited").port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        response = ResponseReader(sock, timeout=3.0).read()
        assert response.status == 413
        assert b"close" in response.connection_tokens


@pytest.fixture(scope="module")
def short_timeouts() -> Iterator[Server]:
    with run_server(ECHO["asgi"], "--header-timeout", "1", "--keep-alive", "1") as server:
        yield server


def test_header_timeout_sends_408(short_timeouts: Server) -> None:
    with connect(short_timeouts.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        reader = ResponseReader(sock, timeout=4.0)
        response = reader.read()
        elapsed = time.monotonic() - started
        assert response.status == 408
        assert b"close" in response.connection_tokens
        assert 0.5 <= elapsed <= 2.5, elapsed
        assert reader.at_eof()


def test_header_timeout_not_reset_by_trickle(short_timeouts: Server) -> None:
    """Slowloris: a byte every 0.3 s does not extend the 1 s header deadline."""
    with connect(short_timeouts.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        deadline = started + 4.0
        sock.settimeout(0.3)
        data = b""
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"X")
            except OSError:
                break
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                break
        elapsed = time.monotonic() - started
        assert data.startswith(b"HTTP/1.1 408"), data[:100]
        assert elapsed <= 2.5, elapsed


def test_keep_alive_idle_connection_closed(short_timeouts: Server) -> None:
    with connect(short_timeouts.port) as sock:
        reader = ResponseReader(sock, timeout=4.0)
        sock.sendall(PROBE)
        assert reader.read().status == 200
        started = time.monotonic()
        assert reader.at_eof(), "idle keep-alive connection not closed"
        assert 0.5 <= time.monotonic() - started <= 2.5


def test_limit_concurrency_answers_503(serve: Serve) -> None:
    server = serve(ECHO["asgi"], "--limit-concurrency", "2")
    held = [connect(server.port) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(PROBE)
            assert ResponseReader(sock, timeout=3.0).read().status == 200
        with connect(server.port) as third:
            third.sendall(PROBE)
            reader = ResponseReader(third, timeout=3.0)
            response = reader.read()
            assert response.status == 503
            assert response.header(b"retry-after") is not None
            assert b"close" in response.connection_tokens
            assert reader.at_eof()
    finally:
        for sock in held:
            sock.close()
    # Capacity comes back once the held connections are gone.
    deadline = time.monotonic() + 3.0
    while not _answers_200(server.port):
        assert time.monotonic() < deadline, "capacity not released after close"


def _answers_200(port: int) -> bool:
    with connect(port) as sock:
        sock.sendall(PROBE)
        return ResponseReader(sock, timeout=3.0).read().status == 200


# -- the response side ---------------------------------------------------------------------

BAD_HEADER_APP: Final = {
    "wsgi": "tests.apps.hardening_badheader:wsgi_app",
    "asgi": "tests.apps.hardening_badheader:asgi_app",
}


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def bad_header_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with run_server(BAD_HEADER_APP[request.param]) as server:
        yield server


@pytest.mark.parametrize("kind", ["crlf-value", "lf-value", "cr-value", "nul-value", "bad-name"])
def test_app_header_injection_gives_500(bad_header_server: Server, kind: str) -> None:
    with connect(bad_header_server.port) as sock:
        sock.sendall(f"GET /{kind} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        reader = ResponseReader(sock, timeout=3.0)
        responses, _, _ = read_responses(reader, 1)
        assert [r.status for r in responses] == [500]
        names = {name for name, _ in responses[0].headers}
        assert b"x-injected" not in names
        assert b"injected" not in responses[0].body
        # Nothing smuggled after the 500 either.
        if b"close" in responses[0].connection_tokens:
            assert reader.at_eof()
        else:
            sock.sendall(PROBE)
            try:
                follow = reader.read()
            except Closed:
                return
            assert follow.status == 200 and follow.body == b"fine"
    assert _bad_header_app_fine(bad_header_server.port)


def _bad_header_app_fine(port: int) -> bool:
    with connect(port) as sock:
        sock.sendall(b"GET /fine HTTP/1.1\r\nHost: x\r\n\r\n")
        response = ResponseReader(sock, timeout=3.0).read()
        return response.status == 200 and response.body == b"fine"
