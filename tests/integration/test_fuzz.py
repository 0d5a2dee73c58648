"""Property-based fuzzing of the HTTP/1.1 front end, over real sockets.

Three generators feed a live server (module fixture, echo app):

- well-formed requests from a grammar: the server must answer exactly one
  200 whose echo shows our method, path, headers and body, and the
  connection must stay usable (a probe request is answered next);
- hostile requests from the same grammar with bad pieces mixed in (methods,
  targets, versions, header names and values with hostile bytes, CL/TE
  combinations, mutated chunked bodies);
- random byte mutations of well-formed requests.

For the last two, after sending we half-close, which obliges the server to
answer what it owes and close, so every example ends without waiting on a
timer.  Invariants: every byte the server sends parses as HTTP/1.1 responses;
at most one 2xx arrives and it echoes *our* request line (a second one would
be a smuggled request); an error response says Connection: close and is the
last thing sent; and a fresh connection still gets a 200.

Bodies use an alphabet that cannot spell a valid request line, so a
misframed body shows up as an error, never as a plausible second request.
The protocol checks (prefork.http.checks) are fuzzed directly, without
sockets, in tests/unit/test_checks_model.py.
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.corpus.harness import PROBE, PROBE_PATH, connect, healthy, pieces, send_pieces
from tests.http_strategies import HOSTILE_BYTES, from_alphabet, paths
from tests.responses import Closed, ProtocolViolation, Response, ResponseReader
from tests.server import Server, run_server

READ_TIMEOUT: Final = 5.0
FUZZ: Final = settings(
    derandomize=True,
    deadline=None,
    max_examples=100,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

METHODS: Final = (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"HEAD")
BODY_ALPHABET: Final = b"xyz0123456789-"
TOKEN_ALPHABET: Final = (
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^`|~"
)
VALUE_ALPHABET: Final = bytes(range(0x20, 0x7F)) + b"\t\x80\xe9\xff"
# Names prefork reads itself; generated headers avoid them unless they are the point.
RESERVED: Final = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"connection",
        b"upgrade",
        b"te",
        b"trailer",
        b"keep-alive",
    }
)


@dataclass
class Request:
    method: bytes
    path: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    framing: str = "none"  # none, length, chunked

    def encode(self, chunk_sizes: list[int] | None = None) -> bytes:
        head = b"%s %s %s\r\n" % (self.method, self.path, self.version)
        head += b"".join(b"%s: %s\r\n" % (n, v) for n, v in self.headers)
        if self.framing == "length":
            head += b"Content-Length: %d\r\n" % len(self.body)
        elif self.framing == "chunked":
            head += b"Transfer-Encoding: chunked\r\n"
        head += b"\r\n"
        if self.framing == "chunked":
            return head + encode_chunked(self.body, chunk_sizes or [])
        return head + self.body


def encode_chunked(body: bytes, sizes: list[int]) -> bytes:
    out, rest = b"", body
    for size in [*sizes, len(body)]:
        if not rest:
            break
        part, rest = rest[: max(size, 1)], rest[max(size, 1) :]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


def token(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[bytes]:
    return (
        st.binary(min_size=min_size, max_size=max_size)
        .map(lambda b: bytes(TOKEN_ALPHABET[x % len(TOKEN_ALPHABET)] for x in b))
        .filter(lambda b: len(b) >= min_size)
    )


header_names = token().filter(lambda n: n.lower() not in RESERVED and b"_" not in n)
header_values = from_alphabet(VALUE_ALPHABET, 0, 40).map(lambda v: v.strip(b" \t"))


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[Request, list[int]]:
    method = draw(st.sampled_from(METHODS))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
    path = draw(paths)
    query = draw(st.one_of(st.just(b""), from_alphabet(b"abc=&+%20xyz", 1, 15)))
    target = path + (b"?" + query if query else b"")
    names = draw(st.lists(header_names, max_size=8, unique_by=bytes.lower))
    headers = [(b"Host", b"example.com")]
    headers += [(n, draw(header_values)) for n in names]
    framing = "none"
    body = b""
    if method != b"HEAD":
        choices = ["none", "length", "chunked"] if version == b"HTTP/1.1" else ["none", "length"]
        framing = draw(st.sampled_from(choices))
        if framing != "none":
            body = draw(from_alphabet(BODY_ALPHABET, 0, 300))
    sizes = draw(st.lists(st.integers(1, 64), max_size=6))
    return Request(method, target, version, headers, body, framing), sizes


_FRAMING_HEADERS: Final = [
    [(b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked")],
    [(b"Content-Length", b"5"), (b"Content-Length", b"6")],
    [(b"Content-Length", b"5, 5")],
    [(b"Content-Length", b"+5")],
    [(b"Content-Length", b"-1")],
    [(b"Content-Length", b"0x5")],
    [(b"Content-Length", b"99999999999999999999")],
    [(b"Transfer-Encoding", b"gzip")],
    [(b"Transfer-Encoding", b"chunked, chunked")],
    [(b"Transfer-Encoding", b"gzip, chunked")],
    [(b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")],
    [(b"Transfer-Encoding", b" chunked")],
    [(b"Transfer-Encoding", b"\x0bchunked")],
    [(b"Transfer_Encoding", b"chunked")],
    [(b"Content_Length", b"5")],
    [(b"Transfer-Encoding ", b"chunked")],
    [(b"Host", b"a.example")],
    [(b"Host", b"exa mple")],
    [(b"Expect", b"100-continue")],
    [(b"Connection", b"close")],
    [(b"Connection", b"keep-alive")],
    [(b"Connection", b"Upgrade"), (b"Upgrade", b"h2c")],
]


@st.composite
def hostile_requests(draw: st.DrawFn) -> bytes:
    request, sizes = draw(valid_requests())
    if draw(st.booleans()):
        request.method = draw(st.one_of(token(1, 8), from_alphabet(HOSTILE_BYTES + b"GET", 0, 6)))
    if draw(st.booleans()):
        request.path = draw(
            st.one_of(paths, from_alphabet(HOSTILE_BYTES + b"/a", 0, 20), st.just(b"*"))
        )
    if draw(st.integers(0, 3)) == 0:
        request.version = draw(
            st.sampled_from(
                [
                    b"HTTP/2.0",
                    b"HTTP/1.2",
                    b"http/1.1",
                    b"HTTP/1",
                    b"",
                    b"HTTP/1.1 ",
                    b"HTTP/0.9",
                    b"HTTP/1.10",
                    b"HTTP/1.1\x00",
                ]
            )
        )
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.one_of(header_names, from_alphabet(HOSTILE_BYTES + b"XY-", 0, 10)))
        value = draw(st.one_of(header_values, from_alphabet(HOSTILE_BYTES + b"ab ", 0, 20)))
        request.headers.insert(draw(st.integers(0, len(request.headers))), (name, value))
    if draw(st.booleans()):
        request.headers += draw(st.sampled_from(_FRAMING_HEADERS))
    raw = request.encode(sizes)
    if request.framing == "chunked" and draw(st.booleans()):
        raw = mutate_chunked(raw, draw(st.randoms(use_true_random=False)))
    return raw


def mutate_chunked(raw: bytes, rng: random.Random) -> bytes:
    """Break one chunk-size line the ways smuggling payloads do."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = body.split(b"\r\n")
    index = rng.randrange(0, max(1, len(lines) - 2), 2) if len(lines) > 2 else 0
    replacement = rng.choice(
        [
            b"0x5",
            b"-1",
            b"ffffffffffffffffff",
            b"5 ",
            b" 5",
            b"5;a=\x01",
            b"5\n",
            b"",
            b"g",
            b"+5",
            b"5;a\nb",
            lines[index] + b"0",
        ]
    )
    lines[index] = replacement
    return head + sep + b"\r\n".join(lines)


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    request, sizes = draw(valid_requests())
    data = bytearray(request.encode(sizes))
    rng = draw(st.randoms(use_true_random=False))
    for _ in range(draw(st.integers(1, 4))):
        position = rng.randrange(len(data))
        action = rng.randrange(4)
        if action == 0:
            data[position] = rng.choice(HOSTILE_BYTES)
        elif action == 1:
            data.insert(position, rng.choice(HOSTILE_BYTES))
        elif action == 2 and len(data) > 1:
            del data[position]
        else:
            end = min(len(data), position + rng.randrange(1, 16))
            data[position:position] = data[position:end]
    return bytes(data)


# -- the live server -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    app = f"tests.apps.hardening_echo:{request.param}_app"
    with run_server(app, "--limit-request-body", "4096", "--header-timeout", "5") as srv:
        yield srv


def request_line_of(raw: bytes) -> bytes:
    """The method a 2xx echo must show: that of our first request line."""
    line = raw.lstrip(b"\r\n").split(b"\r\n", 1)[0]
    return line.split(b" ", 1)[0]


def read_all(reader: ResponseReader, no_body: bool) -> list[Response]:
    """Every response until EOF (the client half-closed, so EOF must come)."""
    responses: list[Response] = []
    while True:
        try:
            response = reader.read(no_body=no_body and not responses)
        except Closed:
            return responses
        responses.append(response)
        if len(responses) > 10:
            raise ProtocolViolation("more than 10 responses to one request")


def check_hostile(port: int, raw: bytes, seed: int) -> None:
    method = request_line_of(raw)
    with contextlib.closing(connect(port, READ_TIMEOUT)) as sock:
        send_pieces(sock, pieces(raw, "split", str(seed)) if seed % 2 else [raw])
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        reader = ResponseReader(sock, READ_TIMEOUT)
        responses = read_all(reader, no_body=method == b"HEAD")
    finals = [r for r in responses if r.status >= 200]
    successes = [r for r in finals if r.status < 300]
    assert len(successes) <= 1, f"{len(successes)} successful responses to one request {raw!r}"
    for response in successes:
        if response.body:
            view = response.json()
            assert view["method"].encode("latin-1") == method, (view, raw)
    for index, response in enumerate(finals):
        if response.status >= 400:
            assert b"close" in response.connection_tokens, (response.status, raw)
            assert index == len(finals) - 1, f"response after a {response.status}: {raw!r}"
    assert len(finals) <= 2, f"{len(finals)} responses to one request: {raw!r}"


@FUZZ
@given(data=st.data())
def test_valid_requests_round_trip(server: Server, data: st.DataObject) -> None:
    request, sizes = data.draw(valid_requests())
    raw = request.encode(sizes)
    mode = data.draw(st.sampled_from(["whole", "split"]))
    with contextlib.closing(connect(server.port, READ_TIMEOUT)) as sock:
        send_pieces(sock, pieces(raw, mode, raw.hex()[:16]))
        reader = ResponseReader(sock, READ_TIMEOUT)
        response = reader.read(no_body=request.method == b"HEAD")
        assert response.status == 200, (response.status, response.body, raw)
        if request.method != b"HEAD":
            view = response.json()
            assert view["method"] == request.method.decode()
            assert view["body"].encode("latin-1") == request.body
            path, _, query = request.path.partition(b"?")
            assert view["path"].encode() == path
            assert view["query"].encode() == query
            seen: dict[str, list[str]] = {}
            for name, value in view["headers"]:
                seen.setdefault(name, []).append(value)
            for name, value in request.headers:
                key = name.decode().lower()
                assert value.decode("latin-1") in ", ".join(seen.get(key, [])), (key, view, raw)
        if request.version == b"HTTP/1.0":
            assert reader.at_eof()
            return
        assert b"close" not in response.connection_tokens
        sock.sendall(PROBE)
        probe = reader.read()
        assert probe.status == 200 and probe.json()["path"] == PROBE_PATH, (probe, raw)


@FUZZ
@given(raw=hostile_requests(), seed=st.integers(0, 1000))
def test_hostile_requests(server: Server, raw: bytes, seed: int) -> None:
    check_hostile(server.port, raw, seed)
    assert healthy(server.port)


@FUZZ
@given(raw=mutated_requests(), seed=st.integers(0, 1000))
def test_mutated_requests(server: Server, raw: bytes, seed: int) -> None:
    check_hostile(server.port, raw, seed)
    assert healthy(server.port)
