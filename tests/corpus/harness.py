"""Load the raw-request corpus and talk to a live server with a strict client.

Theory of operation
-------------------
A corpus case (`tests/corpus/<category>/<name>.http`, format in README.md) is
a few directive lines, a `---` separator, then the raw request bytes written
with explicit escapes.  `load_cases()` turns each file into a `Case`.

`exchange()` sends a case over one TCP connection in a given split pattern
(whole, byte by byte, or a few random pieces), then reads responses with
`ResponseReader`, a deliberately strict HTTP/1.1 response parser: anything
prefork sends that a careful client would choke on (bare LF, a header line
without a colon, a body framing that is neither Content-Length nor chunked
nor close-delimited) fails the test rather than being tolerated.

Whether the server kept the connection open is decided without timing: after
the expected responses, a probe request (`GET /__probe`) is sent; a live
connection answers it with the echo app's 200 naming /__probe, a closed one
gives EOF.  So an extra, smuggled response can never pass for the probe's.
"""

from __future__ import annotations

import contextlib
import errno
import json
import random
import re
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

CORPUS_DIR: Final = Path(__file__).resolve().parent
PROBE: Final = b"GET /__probe HTTP/1.1\r\nHost: probe.test\r\n\r\n"
PROBE_PATH: Final = "/__probe"

_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.[01] ([1-9][0-9]{2}) [\t !-~\x80-\xff]*")
_ESCAPE: Final = re.compile(r"\\(x[0-9a-fA-F]{2}|[rnt0\\{])")
_REPEAT: Final = re.compile(r"\{\{(.*?)\*(\d+)\}\}")
_SIMPLE_ESCAPES: Final = {"r": "\r", "n": "\n", "t": "\t", "0": "\0", "\\": "\\", "{": "{"}


class CorpusError(ValueError):
    """A corpus file does not follow the format in README.md."""


class ProtocolViolation(AssertionError):
    """The server sent bytes that are not a well-formed HTTP/1.1 response."""


# -- the corpus file format ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expected:
    """One final response the case must produce."""

    statuses: frozenset[int]
    close: bool  # the connection must be closed after this response
    no_body: bool = False  # a HEAD response: framing headers describe a body not sent


@dataclass(frozen=True, slots=True)
class Case:
    name: str  # "<category>/<file stem>"
    doc: str
    raw: bytes
    # Acceptable outcomes; each is the list of final responses in order.  An
    # empty list means "no response, connection closed".
    outcomes: tuple[tuple[Expected, ...], ...]
    server: str = "default"
    interfaces: tuple[str, ...] = ("wsgi", "asgi")
    modes: tuple[str, ...] = ("whole", "bytes", "split")
    app_checks: tuple[dict[str, str], ...] = ()  # i-th dict applies to the i-th 200 response
    app_absent: tuple[str, ...] = ()  # header names (any of - or _) no 200 response may show

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]


def decode_raw(text: str) -> bytes:
    """Raw section text to bytes: line breaks dropped, escapes and repeats expanded."""
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if line != line.rstrip(" \t"):
            raise CorpusError(f"raw line {number} has trailing whitespace; write it as \\x20")
    joined = "".join(lines)

    def repeat(match: re.Match[str]) -> str:
        return match[1] * int(match[2])

    expanded = _REPEAT.sub(repeat, joined)

    def escape(match: re.Match[str]) -> str:
        token = match[1]
        if token[0] == "x":
            return chr(int(token[1:], 16))
        return _SIMPLE_ESCAPES[token]

    decoded = _ESCAPE.sub(escape, expanded)
    if "\\" in _ESCAPE.sub("", expanded):
        raise CorpusError("unknown backslash escape in raw section")
    try:
        return decoded.encode("latin-1")
    except UnicodeEncodeError:
        raise CorpusError("raw section holds characters above \\xff; use \\xHH bytes") from None


def decode_text(text: str) -> str:
    return decode_raw(text).decode("latin-1")


def _parse_expected(text: str, where: str) -> tuple[tuple[Expected, ...], ...]:
    outcomes: list[tuple[Expected, ...]] = []
    for alternative_text in text.split(" or "):
        alternative = alternative_text.strip()
        if alternative == "close":
            outcomes.append(())
            continue
        responses = []
        for item in alternative.split(","):
            words = item.split()
            if len(words) not in (2, 3) or words[1] not in ("keep", "close"):
                raise CorpusError(f"{where}: bad expect item {item.strip()!r}")
            if len(words) == 3 and words[2] != "head":
                raise CorpusError(f"{where}: unknown expect flag {words[2]!r}")
            try:
                statuses = frozenset(int(s) for s in words[0].split("|"))
            except ValueError:
                raise CorpusError(f"{where}: bad status list {words[0]!r}") from None
            responses.append(Expected(statuses, words[1] == "close", len(words) == 3))
        if any(r.close for r in responses[:-1]):
            raise CorpusError(f"{where}: only the last response can close the connection")
        outcomes.append(tuple(responses))
    return tuple(outcomes)


_CHOICES: Final = {
    "server": ("default", "limited"),
    "interface": ("wsgi", "asgi", "both"),
}
_MODES: Final = ("whole", "bytes", "split")


def parse_case(name: str, text: str) -> Case:
    head, sep, raw_text = text.partition("\n---\n")
    if not sep:
        raise CorpusError(f"{name}: no '---' line before the raw request")
    doc_lines: list[str] = []
    values: dict[str, Any] = {"app_checks": [], "app_absent": []}
    for number, line in enumerate(head.split("\n"), 1):
        where = f"{name}:{number}"
        if line.startswith("#"):
            doc_lines.append(line.lstrip("# "))
            continue
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not colon:
            raise CorpusError(f"{where}: expected 'key: value', got {line!r}")
        if key == "expect":
            values["outcomes"] = _parse_expected(value, where)
        elif key in _CHOICES:
            if value not in _CHOICES[key]:
                raise CorpusError(f"{where}: {key} must be one of {', '.join(_CHOICES[key])}")
            if key == "interface":
                values["interfaces"] = ("wsgi", "asgi") if value == "both" else (value,)
            else:
                values[key] = value
        elif key == "modes":
            modes = tuple(m.strip() for m in value.split(","))
            if not modes or any(m not in _MODES for m in modes):
                raise CorpusError(f"{where}: modes are a list of {', '.join(_MODES)}")
            values["modes"] = modes
        elif key == "app":
            checks: dict[str, str] = {}
            for item in value.split(";") if value != "-" else ():
                field_name, eq, expected = item.strip().partition("=")
                if not eq:
                    raise CorpusError(f"{where}: app checks are 'field=value; ...'")
                checks[field_name.strip().lower()] = decode_text(expected.strip())
            values["app_checks"].append(checks)
        elif key == "app-absent":
            values["app_absent"].extend(n.strip().lower() for n in value.split(","))
        else:
            raise CorpusError(f"{where}: unknown directive {key!r}")
    if "outcomes" not in values:
        raise CorpusError(f"{name}: missing 'expect:' line")
    raw = decode_raw(raw_text.rstrip("\n"))
    if not raw:
        raise CorpusError(f"{name}: empty raw section")
    values["app_checks"] = tuple(values["app_checks"])
    values["app_absent"] = tuple(values["app_absent"])
    return Case(name=name, doc=" ".join(doc_lines), raw=raw, **values)


def load_cases(root: Path = CORPUS_DIR) -> list[Case]:
    cases = []
    for path in sorted(root.glob("*/*.http")):
        name = f"{path.parent.name}/{path.stem}"
        cases.append(parse_case(name, path.read_text(encoding="utf-8")))
    return cases


# -- a strict response reader --------------------------------------------------


@dataclass(slots=True)
class Response:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    framing: str = ""  # "length", "chunked", "close" or "none"

    def header(self, name: bytes) -> bytes | None:
        values = self.values(name)
        return b", ".join(values) if values else None

    def values(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name]

    @property
    def connection_tokens(self) -> set[bytes]:
        value = self.header(b"connection") or b""
        return {t.strip().lower() for t in value.split(b",") if t.strip()}

    def json(self) -> Any:
        return json.loads(self.body)


class Closed(Exception):
    """The server closed the connection (EOF or reset) at a message boundary."""


class ResponseReader:
    """Reads responses from a socket with a deadline per read; raises on anything malformed."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.buffer = b""
        self.eof = False
        self.reset = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        self.sock.settimeout(self.timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError(
                f"no data within {self.timeout}s (buffered: {self.buffer[:200]!r})"
            ) from None
        except ConnectionResetError:
            data = b""
            self.reset = True
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def _line(self, limit: int = 65536) -> bytes:
        while True:
            index = self.buffer.find(b"\n")
            if index >= 0:
                line, self.buffer = self.buffer[: index + 1], self.buffer[index + 1 :]
                if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
                    raise ProtocolViolation(f"line not ended by CRLF: {line!r}")
                return line[:-2]
            if len(self.buffer) > limit:
                raise ProtocolViolation(f"line longer than {limit} bytes")
            if not self._fill():
                raise ProtocolViolation(f"connection closed inside a line: {self.buffer!r}")

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ProtocolViolation(
                    f"connection closed after {len(self.buffer)} of {size} body bytes"
                )
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def at_eof(self) -> bool:
        """True if the server closed the connection with nothing more to read."""
        if self.buffer:
            return False
        return not self._fill()

    def read_head(self) -> Response:
        if not self.buffer and not self._fill():
            raise Closed("reset" if self.reset else "eof")
        line = self._line()
        match = _STATUS_LINE.fullmatch(line)
        if not match:
            raise ProtocolViolation(f"bad status line {line!r}")
        status = int(match[1])
        reason = line[13:]
        headers: list[tuple[bytes, bytes]] = []
        while True:
            line = self._line()
            if not line:
                break
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise ProtocolViolation(f"bad header line {line!r}")
            if b"\0" in value:
                raise ProtocolViolation(f"NUL in header value {line!r}")
            headers.append((name.lower(), value.strip(b" \t")))
            if len(headers) > 200:
                raise ProtocolViolation("more than 200 response header lines")
        return Response(status, reason, headers)

    def read(self, no_body: bool = False) -> Response:
        """The next response, with its body; 1xx interim responses are returned too."""
        response = self.read_head()
        lengths = response.values(b"content-length")
        codings = response.values(b"transfer-encoding")
        if lengths and codings:
            raise ProtocolViolation("response has both Content-Length and Transfer-Encoding")
        if len(set(lengths)) > 1:
            raise ProtocolViolation(f"conflicting Content-Length values {lengths!r}")
        # An error answering a HEAD the server could not trust may carry a body,
        # since the connection closes after it; read whatever framing says.
        if no_body and response.status >= 400 and b"close" in response.connection_tokens:
            no_body = False
        if no_body or response.status < 200 or response.status in (204, 304):
            response.framing = "none"
            return response
        if codings:
            if b", ".join(codings).lower() != b"chunked":
                raise ProtocolViolation(f"unexpected response Transfer-Encoding {codings!r}")
            response.framing = "chunked"
            response.body = self._read_chunked()
        elif lengths:
            if not lengths[0].isdigit():
                raise ProtocolViolation(f"bad response Content-Length {lengths[0]!r}")
            response.framing = "length"
            response.body = self._exactly(int(lengths[0]))
        else:
            response.framing = "close"
            while self._fill():
                pass
            response.body, self.buffer = self.buffer, b""
        return response

    def _read_chunked(self) -> bytes:
        body = b""
        while True:
            line = self._line()
            size_text = line.split(b";", 1)[0]
            if not re.fullmatch(rb"[0-9a-fA-F]{1,16}", size_text):
                raise ProtocolViolation(f"bad chunk size line {line!r}")
            size = int(size_text, 16)
            if size == 0:
                while self._line():  # trailer fields, if any
                    pass
                return body
            body += self._exactly(size)
            if self._exactly(2) != b"\r\n":
                raise ProtocolViolation("chunk data not followed by CRLF")


# -- sending -------------------------------------------------------------------


def pieces(raw: bytes, mode: str, seed: str) -> list[bytes]:
    """How `raw` is cut for sending: whole, byte by byte, or 3 random pieces (fixed seed)."""
    if mode == "whole" or len(raw) < 3:
        return [raw]
    if mode == "bytes":
        return [raw[i : i + 1] for i in range(len(raw))]
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(raw)), 2))
    return [raw[: cuts[0]], raw[cuts[0] : cuts[1]], raw[cuts[1] :]]


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


_GONE: Final = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ESHUTDOWN})


def send_pieces(sock: socket.socket, chunks: Sequence[bytes], gap: float = 0.0) -> bool:
    """Send each piece; False if the server closed the connection before all were sent.

    The server may reject a request and close before the client finished
    sending it; that is allowed, and the response already sent stays readable.
    """
    for index, chunk in enumerate(chunks):
        try:
            sock.sendall(chunk)
        except OSError as exc:
            if exc.errno in _GONE:
                return False
            raise
        if gap and index + 1 < len(chunks):
            # Pacing, not synchronisation: makes the pieces reach the server as
            # separate reads so the parser sees every boundary.
            time.sleep(gap)
    return True


@dataclass(slots=True)
class Exchange:
    """What happened on one connection."""

    responses: list[Response] = field(default_factory=list)
    interim: list[Response] = field(default_factory=list)
    closed: bool = False
    sent_all: bool = True
    probe: Response | None = None


@contextlib.contextmanager
def connection(port: int, timeout: float = 5.0) -> Iterator[socket.socket]:
    sock = connect(port, timeout)
    try:
        yield sock
    finally:
        sock.close()


def read_responses(
    reader: ResponseReader, count: int, no_body: Sequence[bool] = ()
) -> tuple[list[Response], list[Response], bool]:
    """Up to `count` final responses; stops early at EOF.  Returns (final, interim, closed)."""
    finals: list[Response] = []
    interim: list[Response] = []
    while len(finals) < count:
        try:
            response = reader.read(no_body[len(finals)] if len(finals) < len(no_body) else False)
        except Closed:
            return finals, interim, True
        if response.status < 200:
            interim.append(response)
            continue
        finals.append(response)
        if b"close" in response.connection_tokens:
            break
    return finals, interim, False


def run_case(port: int, case: Case, mode: str, timeout: float = 5.0) -> Exchange:
    """Send a case and read as many responses as the longest acceptable outcome has.

    If the connection is still open afterwards, the probe request tells
    whether it is usable (and not desynchronised).
    """
    expected_count = max(len(o) for o in case.outcomes)
    no_body = [r.no_body for r in max(case.outcomes, key=len)]
    gap = 0.01 if mode == "split" else 0.0
    result = Exchange()
    with connection(port, timeout) as sock:
        reader = ResponseReader(sock, timeout)
        result.sent_all = send_pieces(sock, pieces(case.raw, mode, case.name), gap)
        result.responses, result.interim, result.closed = read_responses(
            reader, expected_count, no_body
        )
        if result.closed:
            return result
        last = result.responses[-1] if result.responses else None
        if last is not None and b"close" in last.connection_tokens:
            # The server announced the close: it must follow, with nothing after it.
            if not reader.at_eof():
                extra = reader.buffer[:200]
                raise ProtocolViolation(f"bytes after a Connection: close response: {extra!r}")
            result.closed = True
            return result
        if not send_pieces(sock, [PROBE]):
            result.closed = True
            return result
        try:
            result.probe = reader.read()
        except Closed:
            result.closed = True
    return result


def healthy(port: int, timeout: float = 5.0) -> bool:
    """A plain GET on a fresh connection answers 200."""
    with connection(port, timeout) as sock:
        sock.sendall(PROBE)
        response = ResponseReader(sock, timeout).read()
        return response.status == 200
