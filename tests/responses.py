"""The one HTTP/1.1 response parser of the test suite: strict, for sockets and for bytes.

    reader = ResponseReader(sock, timeout=5.0)      # a live connection
    reader = ResponseReader.of_bytes(written, closed=transport_closed)  # a fake transport
    response = reader.read(no_body=method == b"HEAD")

Anything prefork sends that a careful client would choke on fails the test
rather than being tolerated: a line not ended by CRLF, a status line that is
not `HTTP/1.x NNN reason`, a header line without a colon or with a non-token
name, a NUL in a value, both Content-Length and Transfer-Encoding, conflicting
lengths, a coding other than chunked, a malformed chunk.  Such bytes raise
`ProtocolViolation`.  A connection that ends inside a response raises its
subclass `Truncated`, which carries what arrived: a server may legitimately
cut a response short (an app failed mid-stream), and tests of that assert on
the partial response.  End of input at a message boundary raises `Closed`.

Bodies follow RFC 9112 section 6.3: none for HEAD (the caller says which
responses answer HEAD), 1xx, 204 and 304; then chunked, Content-Length, or
everything until the connection closes.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Final

_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS_LINE: Final = re.compile(rb"HTTP/(1\.[01]) ([1-9][0-9]{2}) ([\t !-~\x80-\xff]*)")
_CHUNK_SIZE: Final = re.compile(rb"[0-9a-fA-F]{1,16}")
MAX_LINE: Final = 65536
MAX_HEADERS: Final = 200


class ProtocolViolation(AssertionError):
    """The server sent bytes that are not a well-formed HTTP/1.1 response."""


class Truncated(ProtocolViolation):
    """The connection ended inside a response; `response` holds what arrived of it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.response: Response | None = None


class Closed(Exception):
    """The server closed the connection (EOF or reset) at a message boundary."""


@dataclass(slots=True)
class Response:
    status: int
    reason: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # names lowercased
    body: bytes = b""
    framing: str = ""  # "length", "chunked", "close" or "none"
    version: str = "1.1"
    complete: bool = True  # False on a Truncated's partial response

    def header(self, name: bytes) -> bytes | None:
        """The field's value, repeated lines joined by ", "; None if absent."""
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


class ResponseReader:
    """Reads responses from a socket (a deadline per read) or from bytes already received."""

    def __init__(self, sock: socket.socket | None, timeout: float = 5.0) -> None:
        self.sock = sock
        self.timeout = timeout
        self.buffer = b""
        self.eof = False
        self.reset = False
        self.closed_at_end = True  # without a socket: whether the bytes end in a close

    @classmethod
    def of_bytes(cls, data: bytes, *, closed: bool = True) -> ResponseReader:
        """A reader over bytes a server wrote.

        `closed`: the server closed the connection after them.  If it did not,
        reading past them raises TimeoutError, as waiting on a live connection
        the server keeps open would.
        """
        reader = cls(None)
        reader.buffer = data
        reader.closed_at_end = closed
        return reader

    def extend(self, data: bytes, *, closed: bool) -> None:
        """More bytes the server wrote (to a reader made by `of_bytes`)."""
        self.buffer += data
        self.closed_at_end = closed

    # -- input ------------------------------------------------------------------------

    def _fill(self) -> bool:
        if self.eof:
            return False
        if self.sock is None:
            if not self.closed_at_end:
                raise TimeoutError(f"the server awaits more input (after {self.buffer[:200]!r})")
            self.eof = True
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

    def _line(self) -> bytes:
        while True:
            index = self.buffer.find(b"\n")
            if index >= 0:
                line, self.buffer = self.buffer[: index + 1], self.buffer[index + 1 :]
                if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
                    raise ProtocolViolation(f"line not ended by CRLF: {line!r}")
                return line[:-2]
            if len(self.buffer) > MAX_LINE:
                raise ProtocolViolation(f"line longer than {MAX_LINE} bytes")
            if not self._fill():
                raise Truncated(f"connection closed inside a line: {self.buffer[:200]!r}")

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise Truncated(f"connection closed after {len(self.buffer)} of {size} body bytes")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def take(self, limit: int) -> bytes:
        """Up to `limit` raw bytes (for bodies too big to hold); b"" once the peer closed."""
        if not self.buffer:
            self._fill()
        data, self.buffer = self.buffer[:limit], self.buffer[limit:]
        return data

    def rest(self) -> bytes:
        """Every byte until the peer closes, unparsed."""
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def at_eof(self) -> bool:
        """True if the server closed the connection with nothing more to read."""
        if self.buffer:
            return False
        return not self._fill()

    # -- responses --------------------------------------------------------------------

    def read_head(self) -> Response:
        if not self.buffer and not self._fill():
            raise Closed("reset" if self.reset else "eof")
        line = self._line()
        match = _STATUS_LINE.fullmatch(line)
        if not match:
            raise ProtocolViolation(f"bad status line {line!r}")
        response = Response(int(match[2]), match[3], version=match[1].decode())
        while line := self._line():
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise ProtocolViolation(f"bad header line {line!r}")
            if b"\0" in value:
                raise ProtocolViolation(f"NUL in header value {line!r}")
            response.headers.append((name.lower(), value.strip(b" \t")))
            if len(response.headers) > MAX_HEADERS:
                raise ProtocolViolation(f"more than {MAX_HEADERS} response header lines")
        return response

    def read(self, no_body: bool = False) -> Response:
        """The next response, with its body; 1xx interim responses are returned too.

        `no_body`: this response answers a HEAD request.
        """
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
        try:
            if codings:
                if b", ".join(codings).lower() != b"chunked":
                    raise ProtocolViolation(f"unexpected response Transfer-Encoding {codings!r}")
                response.framing = "chunked"
                self._read_chunked(response)
            elif lengths:
                if not lengths[0].isdigit():
                    raise ProtocolViolation(f"bad response Content-Length {lengths[0]!r}")
                response.framing = "length"
                response.body = self._exactly(int(lengths[0]))
            else:
                response.framing = "close"
                response.body = self.rest()
        except Truncated as exc:
            if response.framing == "length":
                response.body, self.buffer = self.buffer, b""
            response.complete = False
            exc.response = response
            raise
        return response

    def _read_chunked(self, response: Response) -> None:
        # The body grows on `response` as chunks arrive, so a cut-off one keeps its part.
        while True:
            line = self._line()
            size_text = line.split(b";", 1)[0]
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise ProtocolViolation(f"bad chunk size line {line!r}")
            size = int(size_text, 16)
            if size == 0:
                while self._line():  # trailer fields, if any
                    pass
                return
            response.body += self._exactly(size)
            if self._exactly(2) != b"\r\n":
                raise ProtocolViolation("chunk data not followed by CRLF")


def parse_all(data: bytes, head_requests: int = 0) -> list[Response]:
    """Every response in `data`, 1xx included, the last one possibly incomplete.

    The first `head_requests` final responses are taken as answers to HEAD.
    """
    reader = ResponseReader.of_bytes(data)
    responses: list[Response] = []
    while True:
        finals = sum(r.status >= 200 for r in responses)
        try:
            responses.append(reader.read(no_body=finals < head_requests))
        except Closed:
            return responses
        except Truncated as exc:
            if exc.response is None:  # cut inside a head: nothing to assert on
                raise
            responses.append(exc.response)
            return responses
