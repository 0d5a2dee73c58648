"""Access log lines in gunicorn's format language, cheap enough for every request.

Theory of operation
-------------------
A format such as gunicorn's default

    %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"

is compiled once, when the worker starts, into a positional %-template
(`%s %s %s %s "%s" %s %s "%s" "%s"`) and one fetcher per atom.  Formatting a
line is then one pass over the request headers (only when the format names a
request header), one call per atom, and one `template % tuple`.  See
docs/logging.md for the measured cost.

Invariant: a logged line is exactly one line.  Every value that came from the
peer or the application (addresses, request line, headers, environ) goes
through `escape()`, which turns control characters, DEL, non-ASCII bytes, `"`
and `\\` into `\\xNN` (nginx does the same), so a client can neither split a
line nor forge a field by closing a quote.  Literal text of the format itself
is the operator's and is written as given.

Compatibility with gunicorn (glogging.py):
- an unknown atom renders as `-`, like gunicorn's SafeAtoms (the names are
  listed in `AccessLogFormatter.unknown_atoms`; nothing warns about them).
- `%%` is a literal `%`; a `%` that starts no atom is kept as written (gunicorn
  would fail on every request instead).
- `p` is `<pid>` and `L` has six decimals, as in gunicorn.
- `b` is `-` for an empty body (Common Log Format; gunicorn prints 0).
- repeated request or response headers are joined with `, ` (RFC 9110 5.3);
  gunicorn keeps the last one.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_to_bytes

if TYPE_CHECKING:
    from prefork.http.exchange import Exchange
    from prefork.observe.jsonlog import JsonAccessFormatter

from prefork.wallclock import MONTHS, utc_offset

__all__ = ["AccessEntry", "AccessLog", "AccessLogFormatter", "escape"]

LOGGER: Final = logging.getLogger("prefork")


@dataclass(slots=True)
class AccessEntry:
    remote_addr: str
    method: str
    target: str  # raw path and query as received, decoded latin-1
    http_version: str  # "1.1"
    status: int
    body_bytes: int
    request_headers: list[tuple[bytes, bytes]]  # names lower-case
    response_headers: list[tuple[bytes, bytes]]
    start_wall: float  # time.time() when the request started
    duration: float  # seconds
    pid: int
    # The WSGI environ, for `%({NAME}e)s`; None for ASGI (only os.environ is read).
    environ: Mapping[str, Any] | None = None
    # The close code that ended a WebSocket session, for `%(W)s`; None for HTTP.
    ws_close: int | None = None


def exchange_entry(
    exchange: Exchange,
    start: float,
    response_headers: list[tuple[bytes, bytes]],
    environ: Mapping[str, Any] | None = None,
) -> AccessEntry:
    """The entry for an HTTP exchange whose response is complete (`start`: its time.time())."""
    view = exchange.forwarded
    conn = exchange.conn
    client = conn.client if view is None or view.client is None else view.client
    return AccessEntry(
        remote_addr=client[0] if client else "-",
        method=exchange.method.decode("latin-1"),
        target=exchange.target.decode("latin-1"),
        http_version=exchange.version,
        status=exchange.status,
        body_bytes=exchange.body_sent,
        request_headers=exchange.headers,
        response_headers=response_headers,
        start_wall=start,
        duration=time.time() - start,
        pid=os.getpid(),
        environ=environ,
    )


# -- escaping ------------------------------------------------------------------

_ESCAPES: Final = {
    code: f"\\x{code:02X}" for code in (*range(0x20), 0x22, 0x5C, *range(0x7F, 0x100))
}


# Printable ASCII except `"` and `\\`: the bytes a logged value may contain as is.
_SAFE: Final = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')


def escape(value: str) -> str:
    """`value` with control characters, non-ASCII, `"` and `\\` written as \\xNN.

    Values arrive decoded as latin-1, so each character is one byte of what the
    peer sent and \\xNN shows that byte.  A character above U+00FF (only
    possible in an application-supplied environ value) is shown as its UTF-8
    bytes.
    """
    # The common case costs an ASCII check and one C-level translate that
    # deletes every safe byte: nothing left means nothing to escape.
    # (str.isprintable is slower: it consults the Unicode tables.)
    if value.isascii() and not value.encode("ascii").translate(None, _SAFE):
        return value
    escaped = value.translate(_ESCAPES)
    if escaped.isascii():
        return escaped
    return "".join(
        ch if ch.isascii() else "".join(f"\\x{b:02X}" for b in ch.encode("utf-8", "replace"))
        for ch in escaped
    )


def _escape_bytes(value: bytes) -> str:
    if not value.translate(None, _SAFE):
        return value.decode("ascii")
    return value.decode("latin-1").translate(_ESCAPES)


# -- time ----------------------------------------------------------------------


class _ClfClock:
    """`[10/Oct/2000:13:55:36 -0700]` for a wall-clock time, computed once a second."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, wall: float) -> str:
        second = int(wall)
        if second != self._second:
            tm = time.localtime(second)
            self._text = (
                f"[{tm.tm_mday:02d}/{MONTHS[tm.tm_mon - 1]}/{tm.tm_year:04d}:"
                f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {utc_offset(tm)}]"
            )
            self._second = second
        return self._text


# -- atoms ---------------------------------------------------------------------

Headers = dict[bytes, bytes]
Fetcher = Callable[[AccessEntry, Headers, Headers], object]


def _path(entry: AccessEntry) -> str:
    path = entry.target.partition("?")[0]
    if "%" in path:
        # gunicorn logs PATH_INFO, which is percent-decoded.
        path = unquote_to_bytes(path).decode("latin-1")
    return escape(path)


def _user(request: Headers) -> str:
    auth = request.get(b"authorization")
    if auth is None:
        return "-"
    scheme, _, credentials = auth.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return "-"
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "-"
    return _escape_bytes(decoded.partition(b":")[0]) or "-"


def _header(name: bytes, is_response: bool) -> Fetcher:
    def request_header(entry: AccessEntry, request: Headers, response: Headers) -> object:
        value = request.get(name)
        return "-" if value is None else _escape_bytes(value)

    def response_header(entry: AccessEntry, request: Headers, response: Headers) -> object:
        value = response.get(name)
        return "-" if value is None else _escape_bytes(value)

    return response_header if is_response else request_header


def _lookup(table: Mapping[str, Any], name: str, lowered: str) -> Any:
    value = table.get(name)
    if value is None:
        # gunicorn matches environ atoms case-insensitively (it lower-cases both).
        value = next((v for k, v in table.items() if k.lower() == lowered), None)
    return value


def _environ(name: str) -> Fetcher:
    """`%({name}e)s`: the WSGI environ as the app left it (gunicorn), else the process's.

    gunicorn reads the WSGI environ, so keys the app adds can be logged;
    hypercorn reads os.environ (HOSTNAME, a release tag), which is what the
    atom's documented name, "environment variable", suggests.  Both work here,
    the request's environ first.  ASGI requests have only os.environ.
    """
    lowered = name.lower()

    def fetch(entry: AccessEntry, request: Headers, response: Headers) -> object:
        value = None
        if entry.environ is not None:
            value = _lookup(entry.environ, name, lowered)
        if value is None:
            value = _lookup(os.environ, name, lowered)
        return "-" if value is None else escape(str(value))

    return fetch


def _simple_atoms(clock: _ClfClock) -> dict[str, Fetcher]:
    return {
        "h": lambda e, rq, rs: escape(e.remote_addr) or "-",
        "l": lambda e, rq, rs: "-",
        "u": lambda e, rq, rs: _user(rq),
        "t": lambda e, rq, rs: clock(e.start_wall),
        "r": lambda e, rq, rs: escape(f"{e.method} {e.target} HTTP/{e.http_version}"),
        "m": lambda e, rq, rs: escape(e.method),
        "U": lambda e, rq, rs: _path(e),
        "q": lambda e, rq, rs: escape(e.target.partition("?")[2]),
        "H": lambda e, rq, rs: escape("HTTP/" + e.http_version),
        "s": lambda e, rq, rs: e.status,
        "B": lambda e, rq, rs: e.body_bytes,
        "b": lambda e, rq, rs: e.body_bytes or "-",
        "f": lambda e, rq, rs: _escape_bytes(rq[b"referer"]) if b"referer" in rq else "-",
        "a": lambda e, rq, rs: _escape_bytes(rq[b"user-agent"]) if b"user-agent" in rq else "-",
        "T": lambda e, rq, rs: int(e.duration),
        "M": lambda e, rq, rs: int(e.duration * 1_000),
        "D": lambda e, rq, rs: int(e.duration * 1_000_000),
        "L": lambda e, rq, rs: f"{e.duration:.6f}",
        "p": lambda e, rq, rs: f"<{e.pid}>",
        "W": lambda e, rq, rs: "-" if e.ws_close is None else e.ws_close,
    }


# What each atom shows (docs/logging.md lists them; tests keep the two in step).
ATOMS: Final = {
    "h": "remote address (`-` on a unix socket)",
    "l": "`-` (identd, never used)",
    "u": "user name from `Authorization: Basic`, else `-`",
    "t": "time the request started, `[10/Oct/2000:13:55:36 -0700]`",
    "r": "request line, `GET /path?q=1 HTTP/1.1`",
    "m": "method",
    "U": "path, percent-decoded (WSGI PATH_INFO), without the query",
    "q": "query string (empty if none)",
    "H": "protocol, `HTTP/1.1`",
    "s": "status code",
    "B": "response body bytes",
    "b": "response body bytes, `-` when 0 (Common Log Format)",
    "f": "`Referer` header, else `-`",
    "a": "`User-Agent` header, else `-`",
    "T": "duration, whole seconds",
    "M": "duration, whole milliseconds",
    "D": "duration, whole microseconds",
    "L": "duration, seconds with six decimals",
    "p": "worker pid, `<1234>`",
    "W": "WebSocket close code (1000, 1001, ...) of a session logged with status 101, else `-`",
    "{name}i": "request header `name` (any case), else `-`",
    "{name}o": "response header `name` (any case), else `-`",
    "{name}e": "WSGI environ key `name` (as the app left it), else the worker's "
    "environment variable `name`, else `-` (any case)",
}

# Request headers each simple atom reads; only these are collected per request.
_ATOM_HEADERS: Final = {"u": b"authorization", "f": b"referer", "a": b"user-agent"}

_TOKEN: Final = re.compile(
    r"%%|%\((?P<key>[^)]*)\)(?P<spec>[-#0 +]*(?:\d+)?(?:\.\d+)?[diouxXeEfFgGcrsa])"
)
_HEADER_ATOM: Final = re.compile(r"\{(?P<name>[^}]*)\}(?P<kind>[ioe])")


def _collect(headers: list[tuple[bytes, bytes]], wanted: frozenset[bytes]) -> Headers:
    # dict() runs in C; only a repeated header name (rare) needs the slow loop,
    # and then only the names the format reads are joined.
    table = dict(headers)
    if len(table) == len(headers):
        return table
    joined: Headers = {}
    for name, value in headers:
        if name in wanted:
            previous = joined.get(name)
            joined[name] = value if previous is None else previous + b", " + value
    return joined


_EMPTY: Final[Headers] = {}


class AccessLogFormatter:
    """Compiles a gunicorn access-log format once; `format()` renders one entry."""

    __slots__ = ("_fetchers", "_request_names", "_response_names", "_template", "unknown_atoms")

    def __init__(self, fmt: str) -> None:
        clock = _ClfClock()
        simple = _simple_atoms(clock)
        template: list[str] = []
        fetchers: list[Fetcher] = []
        request_names: set[bytes] = set()
        response_names: set[bytes] = set()
        unknown: list[str] = []
        position = 0
        for match in _TOKEN.finditer(fmt):
            template.append(fmt[position : match.start()].replace("%", "%%"))
            position = match.end()
            key = match["key"]
            if key is None:
                template.append("%%")
                continue
            template.append("%" + match["spec"])
            header = _HEADER_ATOM.fullmatch(key)
            if key in simple:
                fetchers.append(simple[key])
                if key in _ATOM_HEADERS:
                    request_names.add(_ATOM_HEADERS[key])
            elif header and header["kind"] == "e":
                fetchers.append(_environ(header["name"]))
            elif header:
                name = header["name"].lower().encode("latin-1", "replace")
                is_response = header["kind"] == "o"
                (response_names if is_response else request_names).add(name)
                fetchers.append(_header(name, is_response))
            else:
                unknown.append(key)
                fetchers.append(lambda e, rq, rs: "-")
        template.append(fmt[position:].replace("%", "%%"))
        self._template = "".join(template)
        self._fetchers = tuple(fetchers)
        self._request_names = frozenset(request_names)
        self._response_names = frozenset(response_names)
        self.unknown_atoms: tuple[str, ...] = tuple(unknown)
        self._check()

    def _check(self) -> None:
        """Fail now, not on every request, if a conversion cannot take its atom's value."""
        sample = AccessEntry("127.0.0.1", "GET", "/?q", "1.1", 200, 0, [], [], 0.0, 0.0, 0)
        try:
            self.format(sample)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"a conversion cannot render its atom ({exc})") from None

    def format(self, entry: AccessEntry) -> str:
        request = (
            _collect(entry.request_headers, self._request_names) if self._request_names else _EMPTY
        )
        response = (
            _collect(entry.response_headers, self._response_names)
            if self._response_names
            else _EMPTY
        )
        return self._template % tuple([fetch(entry, request, response) for fetch in self._fetchers])


# Batch size for a regular file (nginx's access_log buffer= is often set to 64k).
BUFFER_SIZE: Final = 65536


class AccessLog:
    """The access log sink of one process: a file, stdout (`-`), or nothing (None).

    A regular file is written in batches, like nginx's `access_log ...
    buffer=`: lines collect in memory and leave in one `write(2)` when
    BUFFER_SIZE bytes are pending or when `flush()` is called, which the
    server does once a second and before the worker exits.  A line per
    `write(2)` would cost a system call per request (measured: ~45% of
    plaintext throughput).  The file is opened O_APPEND, so batches from
    several workers interleave whole lines.  Stdout (`-`) and files that are
    not regular files get one write per line instead: a pipe only keeps
    writes of up to PIPE_BUF bytes whole.  `reopen()` is for SIGUSR1 after
    logrotate renamed the file.
    """

    __slots__ = (
        "_buffer",
        "_buffered",
        "_fd",
        "_formatter",
        "_lock",
        "_owns_fd",
        "_path",
        "_pending",
        "_stdout_fd",
        "_warned",
        "dropped",
        "enabled",
    )

    def __init__(
        self, path: str | None, fmt: str, *, json_lines: bool = False, stdout_fd: int = 1
    ) -> None:
        self._path = path
        self._stdout_fd = stdout_fd
        self._formatter: AccessLogFormatter | JsonAccessFormatter
        if json_lines:
            from prefork.observe.jsonlog import JsonAccessFormatter

            self._formatter = JsonAccessFormatter()
        else:
            self._formatter = AccessLogFormatter(fmt)
        self.enabled = path is not None
        self.dropped = 0  # lines lost to write errors (disk full, closed pipe)
        self._warned = False
        self._owns_fd = path not in (None, "-")
        self._fd = self._open() if self.enabled else -1
        self._buffered = self._owns_fd and stat.S_ISREG(os.fstat(self._fd).st_mode)
        self._buffer: list[bytes] = []
        self._pending = 0
        # WSGI --threads may log from pool threads; the swap of the batch must be atomic.
        self._lock = threading.Lock()

    def _open(self) -> int:
        if not self._owns_fd:
            return self._stdout_fd
        assert self._path is not None
        return os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def log(self, entry: AccessEntry) -> None:
        if not self.enabled:
            return
        data = (self._formatter.format(entry) + "\n").encode("utf-8", "backslashreplace")
        if self._buffered:
            with self._lock:
                self._buffer.append(data)
                self._pending += len(data)
                if self._pending < BUFFER_SIZE:
                    return
                data = self._take()
        self._write(data)

    def _take(self) -> bytes:
        data = b"".join(self._buffer)
        self._buffer = []
        self._pending = 0
        return data

    def flush(self) -> None:
        """Write the pending lines now."""
        if self._pending:
            with self._lock:
                data = self._take()
            self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # only pipes and ttys write short
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            self.dropped += 1
            if not self._warned:
                self._warned = True
                LOGGER.warning("access log %s: write failed: %s", self._path, exc.strerror)

    def reopen(self) -> None:
        if not self._owns_fd:
            return
        self.flush()  # lines logged before the rotation belong in the old file
        try:
            fd = self._open()
        except OSError as exc:
            # Keep writing to the old file rather than losing lines.
            LOGGER.warning("access log %s: cannot reopen: %s", self._path, exc.strerror)
            return
        # dup2 swaps the file behind our descriptor number in one step, so a
        # thread writing meanwhile (WSGI --threads) reaches the old file or the
        # new one, never a closed or recycled descriptor.
        os.dup2(fd, self._fd, inheritable=False)
        os.close(fd)
        self._warned = False

    def close(self) -> None:
        if self.enabled:
            self.flush()
        if self._owns_fd and self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
        self.enabled = False
