"""Load the raw-request corpus and talk to a live server with a strict client.

Theory of operation
-------------------
A corpus case (`tests/corpus/<category>/<name>.http`, format in README.md) is
a few directive lines, a `---` separator, then the raw request bytes written
with explicit escapes.  `load_cases()` turns each file into a `Case`.

`exchange()` sends a case over one TCP connection in a given split pattern
(whole, byte by byte, or a few random pieces), then reads responses with
the suite's strict response parser (tests/responses.py): anything prefork
sends that a careful client would choke on fails the test rather than being
tolerated.

Whether the server kept the connection open is decided without timing: after
the expected responses, a probe request (`GET /__probe`) is sent; a live
connection answers it with the echo app's 200 naming /__probe, a closed one
gives EOF.  So an extra, smuggled response can never pass for the probe's.
"""

from __future__ import annotations

import contextlib
import errno
import random
import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest

from tests.responses import Closed, ProtocolViolation, Response, ResponseReader

CORPUS_DIR: Final = Path(__file__).resolve().parent
PROBE: Final = b"GET /__probe HTTP/1.1\r\nHost: probe.test\r\n\r\n"
PROBE_PATH: Final = "/__probe"

_ESCAPE: Final = re.compile(r"\\(x[0-9a-fA-F]{2}|[rnt0\\{])")
_REPEAT: Final = re.compile(r"\{\{(.*?)\*(\d+)\}\}")
_SIMPLE_ESCAPES: Final = {"r": "\r", "n": "\n", "t": "\t", "0": "\0", "\\": "\\", "{": "{"}


class CorpusError(ValueError):
    """A corpus file does not follow the format in README.md."""


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


def case_params(cases: Sequence[Case], bytewise_max: int) -> list[Any]:
    """pytest parameters (case, interface, mode) for every run of `cases`.

    Cases longer than `bytewise_max` are not sent byte by byte.  A list, not a
    generator: pytest 9 deprecates non-Collection argvalues.
    """
    return [
        pytest.param(case, interface, mode, id=f"{case.name}-{interface}-{mode}")
        for case in cases
        for interface in case.interfaces
        for mode in case.modes
        if not (mode == "bytes" and len(case.raw) > bytewise_max)
    ]


def load_cases(root: Path = CORPUS_DIR) -> list[Case]:
    cases = []
    for path in sorted(root.glob("*/*.http")):
        name = f"{path.parent.name}/{path.stem}"
        cases.append(parse_case(name, path.read_text(encoding="utf-8")))
    return cases


# -- judging an exchange ---------------------------------------------------------


@dataclass(slots=True)
class Exchange:
    """What happened on one connection."""

    responses: list[Response] = field(default_factory=list)
    interim: list[Response] = field(default_factory=list)
    closed: bool = False
    sent_all: bool = True
    probe: Response | None = None


def judge(case: Case, result: Exchange) -> list[str]:
    """Everything wrong with `result` as an answer to `case`; empty if nothing is."""
    problems = []
    if not any(matches(result, outcome) for outcome in case.outcomes):
        expected = " or ".join(describe(o) for o in case.outcomes)
        problems.append(f"expected {expected}; got {observed(result)}")
    problems += check_rejections(result)
    problems += check_app_view(case, result.responses)
    for response in result.responses:
        if (
            response.status < 400
            and b"close" in response.connection_tokens
            and not any(o and o[-1].close for o in case.outcomes)
        ):
            problems.append(f"{response.status} says Connection: close on a keep-alive case")
    last = result.responses[-1] if result.responses else None
    if (
        result.closed
        and last is not None
        and b"close" not in last.connection_tokens
        and b"HTTP/1.0" not in case.raw
    ):
        problems.append(f"connection closed after {last.status} without Connection: close")
    return problems


def describe(outcome: tuple[Expected, ...]) -> str:
    if not outcome:
        return "close (no response)"
    return ", ".join(
        "|".join(str(s) for s in sorted(r.statuses)) + (" close" if r.close else " keep")
        for r in outcome
    )


def observed(result: Exchange) -> str:
    parts = [f"{r.status}" for r in result.responses]
    text = ", ".join(parts) if parts else "no response"
    if result.closed:
        return text + " then close"
    if result.probe is None:
        return text + " (connection open, probe unanswered)"
    probe = result.probe
    try:
        path = probe.json().get("path")
    except ValueError:
        path = None
    return text + f" then keep (probe answered {probe.status} for {path!r})"


def matches(result: Exchange, outcome: tuple[Expected, ...]) -> bool:
    if len(result.responses) != len(outcome):
        return False
    for response, expected in zip(result.responses, outcome, strict=True):
        if response.status not in expected.statuses:
            return False
    if not outcome or outcome[-1].close:
        return result.closed
    return not result.closed and probe_ok(result.probe)


def probe_ok(probe: Response | None) -> bool:
    if probe is None or probe.status != 200:
        return False
    try:
        return bool(probe.json().get("path") == PROBE_PATH)
    except ValueError:
        return False


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def check_app_view(case: Case, responses: list[Response]) -> list[str]:
    """What the echo app saw, against the case's app checks; returns the mismatches."""
    problems = []
    # One entry per 200 response; None for a bodiless one (HEAD).  A missing
    # response is the outcome check's business, not this one's.
    views = [r.json() if r.body else None for r in responses if r.status == 200]
    for index, checks in enumerate(case.app_checks[: len(views)]):
        view = views[index]
        if view is None:
            if checks:
                problems.append(f"app check #{index + 1}: response has no body to check")
            continue
        headers: dict[str, list[str]] = {}
        for name, value in view["headers"]:
            headers.setdefault(_norm(name), []).append(value)
        for key, expected in checks.items():
            if key.startswith("header."):
                got: Any = ", ".join(headers.get(_norm(key[7:]), ["<absent>"]))
            else:
                got = view.get(key)
            if got != expected:
                problems.append(f"app #{index + 1} {key}: expected {expected!r}, got {got!r}")
    for view in filter(None, views):
        seen = {_norm(name) for name, _ in view["headers"]}
        problems.extend(
            f"header {name!r} reached the app: {view['headers']!r}"
            for name in case.app_absent
            if _norm(name) in seen
        )
    return problems


def check_rejections(result: Exchange) -> list[str]:
    """Every error prefork sends itself: Connection: close, short text/plain, then close."""
    problems = []
    for response in result.responses:
        if response.status < 400:
            continue
        if b"close" not in response.connection_tokens:
            problems.append(f"{response.status} without Connection: close")
        content_type = response.header(b"content-type") or b""
        if not content_type.startswith(b"text/plain"):
            problems.append(f"{response.status} with Content-Type {content_type!r}")
        if not 0 < len(response.body) <= 512:
            problems.append(f"{response.status} body of {len(response.body)} bytes")
        if not result.closed:
            problems.append(f"connection left open after {response.status}")
    return problems


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


def read_case(reader: ResponseReader, case: Case, send_probe: Callable[[], bool]) -> Exchange:
    """Read as many responses as the longest acceptable outcome has.

    If the connection is still open afterwards, `send_probe()` sends the probe
    request (False: the connection was closed first), whose answer tells
    whether the connection is usable (and not desynchronised).
    """
    expected_count = max(len(o) for o in case.outcomes)
    no_body = [r.no_body for r in max(case.outcomes, key=len)]
    result = Exchange()
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
    if not send_probe():
        result.closed = True
        return result
    try:
        result.probe = reader.read()
    except Closed:
        result.closed = True
    return result


def run_case(port: int, case: Case, mode: str, timeout: float = 5.0) -> Exchange:
    """Send a case to a live server, in `mode`, and read what it answers."""
    gap = 0.01 if mode == "split" else 0.0
    with connection(port, timeout) as sock:
        reader = ResponseReader(sock, timeout)
        sent_all = send_pieces(sock, pieces(case.raw, mode, case.name), gap)
        result = read_case(reader, case, lambda: send_pieces(sock, [PROBE]))
    result.sent_all = sent_all
    return result


def healthy(port: int, timeout: float = 5.0) -> bool:
    """A plain GET on a fresh connection answers 200."""
    with connection(port, timeout) as sock:
        sock.sendall(PROBE)
        response = ResponseReader(sock, timeout).read()
        return response.status == 200
