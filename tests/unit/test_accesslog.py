"""The access log formatter: every atom, escaping, gunicorn compatibility, rotation."""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefork.config import DEFAULT_ACCESS_LOG_FORMAT
from prefork.observe.accesslog import (
    ATOMS,
    BUFFER_SIZE,
    AccessEntry,
    AccessLog,
    AccessLogFormatter,
    escape,
)

# 2000-10-10 20:55:36 UTC, the instant of Apache's documentation example.
WALL = 971211336.25


def entry(**changes: object) -> AccessEntry:
    base = AccessEntry(
        remote_addr="192.0.2.7",
        method="GET",
        target="/a%20b/c?x=1&y=2",
        http_version="1.1",
        status=200,
        body_bytes=1234,
        request_headers=[
            (b"host", b"example.com"),
            (b"user-agent", b"curl/8.5.0"),
            (b"referer", b"https://example.com/from"),
            (b"authorization", b"Basic " + base64.b64encode(b"alice:secret")),
            (b"x-request-id", b"abc-123"),
        ],
        response_headers=[(b"content-type", b"text/plain"), (b"content-length", b"1234")],
        start_wall=WALL,
        duration=1.5,
        pid=4242,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def fmt(atom_format: str, e: AccessEntry | None = None) -> str:
    return AccessLogFormatter(atom_format).format(e or entry())


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("atom", "expected"),
    [
        ("h", "192.0.2.7"),
        ("l", "-"),
        ("u", "alice"),
        ("r", "GET /a%20b/c?x=1&y=2 HTTP/1.1"),
        ("m", "GET"),
        ("U", "/a b/c"),
        ("q", "x=1&y=2"),
        ("H", "HTTP/1.1"),
        ("s", "200"),
        ("B", "1234"),
        ("b", "1234"),
        ("f", "https://example.com/from"),
        ("a", "curl/8.5.0"),
        ("T", "1"),
        ("M", "1500"),
        ("D", "1500000"),
        ("L", "1.500000"),
        ("p", "<4242>"),
        ("{X-Request-Id}i", "abc-123"),
        ("{x-request-id}i", "abc-123"),
        ("{Content-Type}o", "text/plain"),
        ("{missing}i", "-"),
        ("{missing}o", "-"),
    ],
)
def test_each_atom(atom: str, expected: str) -> None:
    assert fmt(f"%({atom})s") == expected


def test_time_atom_is_common_log_format(utc: None) -> None:
    assert fmt("%(t)s") == "[10/Oct/2000:20:55:36 +0000]"


def test_time_atom_uses_local_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    # POSIX TZ sign is inverted: UTC+7 means seven hours *behind* UTC.
    monkeypatch.setenv("TZ", "XST+7")
    time.tzset()
    try:
        assert fmt("%(t)s") == "[10/Oct/2000:13:55:36 -0700]"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_time_atom_follows_the_entry_not_a_stale_cache(utc: None) -> None:
    formatter = AccessLogFormatter("%(t)s")
    first = formatter.format(entry())
    later = formatter.format(entry(start_wall=WALL + 61))
    assert first == "[10/Oct/2000:20:55:36 +0000]"
    assert later == "[10/Oct/2000:20:56:37 +0000]"


def test_default_format_matches_gunicorn_layout(utc: None) -> None:
    assert fmt(DEFAULT_ACCESS_LOG_FORMAT) == (
        '192.0.2.7 - alice [10/Oct/2000:20:55:36 +0000] "GET /a%20b/c?x=1&y=2 HTTP/1.1" '
        '200 1234 "https://example.com/from" "curl/8.5.0"'
    )


def test_missing_optional_values() -> None:
    bare = entry(request_headers=[], response_headers=[], body_bytes=0, target="/")
    assert fmt("%(u)s|%(f)s|%(a)s|%(b)s|%(B)s|%(q)s", bare) == "-|-|-|-|0|"


@pytest.mark.parametrize(
    "authorization",
    [b"Bearer abc", b"Basic !!!not-base64", b"Basic", b"Digest username=alice"],
)
def test_user_is_dash_unless_valid_basic_auth(authorization: bytes) -> None:
    assert fmt("%(u)s", entry(request_headers=[(b"authorization", authorization)])) == "-"


def test_user_is_escaped() -> None:
    creds = base64.b64encode(b'ev"il\nuser:pw')
    e = entry(request_headers=[(b"authorization", b"basic " + creds)])
    assert fmt("%(u)s", e) == "ev\\x22il\\x0Auser"


def test_environ_atoms() -> None:
    environ = {"REMOTE_USER": "bob", "wsgi.url_scheme": "https"}
    e = entry(environ=environ)
    assert fmt("%({REMOTE_USER}e)s %({remote_user}e)s %({wsgi.url_scheme}e)s", e) == (
        "bob bob https"
    )
    assert fmt("%({nope}e)s", e) == "-"
    # ASGI: no environ, so every environ atom is "-".
    assert fmt("%({REMOTE_USER}e)s") == "-"


def test_repeated_headers_are_joined() -> None:
    headers = [
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"host", b"h"),
        (b"x-forwarded-for", b"10.0.0.2"),
    ]
    e = entry(request_headers=headers)
    assert fmt("%({x-forwarded-for}i)s %({host}i)s", e) == "10.0.0.1, 10.0.0.2 h"


def test_unknown_atom_renders_dash_like_gunicorn() -> None:
    formatter = AccessLogFormatter("%(h)s %(nope)s %({bad)s %(Z)s")
    assert formatter.format(entry()) == "192.0.2.7 - - -"
    assert formatter.unknown_atoms == ("nope", "{bad", "Z")


def test_percent_handling() -> None:
    assert fmt("100%% %(s)s") == "100% 200"
    # A lone % that starts no atom is kept as written, not an error per request.
    assert fmt("50% done %(s)s %") == "50% done 200 %"
    assert fmt("%(s)d %(D)08d %(h)-12s|") == "200 01500000 192.0.2.7   |"


def test_conversion_that_cannot_take_the_value_fails_at_compile_time() -> None:
    with pytest.raises(ValueError, match="conversion cannot render"):
        AccessLogFormatter("%(h)d")
    with pytest.raises(ValueError, match="conversion cannot render"):
        AccessLogFormatter("%(b)d")  # b is "-" for an empty body


# -- escaping ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain /path?q=1", "plain /path?q=1"),
        ("a\r\nb", "a\\x0D\\x0Ab"),
        ("nul\x00", "nul\\x00"),
        ('quote"', "quote\\x22"),
        ("back\\slash", "back\\x5Cslash"),
        ("tab\tdel\x7f", "tab\\x09del\\x7F"),
        ("caf\xe9", "caf\\xE9"),  # a latin-1-decoded byte 0xE9
        ("\u20ac", "\\xE2\\x82\\xAC"),  # beyond latin-1: its UTF-8 bytes
    ],
)
def test_escape(raw: str, expected: str) -> None:
    assert escape(raw) == expected


def test_peer_cannot_split_or_forge_a_line() -> None:
    e = entry(
        remote_addr="1.2.3.4",
        method="GET",
        target='/x" 200 0 "-" "-"\n5.6.7.8 - - [forged]',
        request_headers=[
            (b"user-agent", b'ua"\r\n127.0.0.1 - admin'),
            (b"referer", b"\x00\x1b[31mred"),
            (b"x-h", b"\xff\xfe"),
        ],
    )
    line = fmt(DEFAULT_ACCESS_LOG_FORMAT + " %({x-h}i)s", e)
    assert "\n" not in line
    assert "\r" not in line
    assert line.isascii()
    assert line.isprintable()
    # Exactly the format's own six quotes remain.
    assert line.count('"') == 6
    assert "\\x22 200 0 \\x22-\\x22" in line
    assert "\\x00\\x1B[31mred" in line
    assert line.endswith("\\xFF\\xFE")


@given(st.binary(max_size=64), st.text(max_size=32))
def test_any_input_stays_on_one_printable_line(header: bytes, target: str) -> None:
    e = entry(target=target, request_headers=[(b"user-agent", header), (b"referer", header)])
    line = AccessLogFormatter(DEFAULT_ACCESS_LOG_FORMAT + " %(U)s %(q)s").format(e)
    assert line.isascii()
    assert line.isprintable()
    assert line.count('"') == 6


# -- the sink --------------------------------------------------------------------


def test_disabled_log_writes_nothing(tmp_path: Path) -> None:
    log = AccessLog(None, DEFAULT_ACCESS_LOG_FORMAT)
    assert not log.enabled
    log.log(entry())
    log.reopen()
    assert list(tmp_path.iterdir()) == []


def test_file_log_appends_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text("existing line\n")
    log = AccessLog(str(path), "%(m)s %(U)s %(s)s")
    assert log.enabled
    log.log(entry())
    log.log(entry(status=404))
    # Batched: nothing is written until flush() (the server's once-a-second tick).
    assert path.read_text() == "existing line\n"
    log.flush()
    assert path.read_text() == "existing line\nGET /a b/c 200\nGET /a b/c 404\n"
    log.close()


def test_file_log_writes_a_full_batch_at_once(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(str(path), "%(U)s")
    line_size = len("/a b/c\n")
    lines = BUFFER_SIZE // line_size + 1
    for _ in range(lines):
        log.log(entry())
    assert path.read_text() == "/a b/c\n" * lines
    log.close()


def test_reopen_after_rename_follows_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(str(path), "%(s)s")
    log.log(entry(status=200))
    rotated = tmp_path / "access.log.1"
    path.rename(rotated)  # what logrotate does before sending SIGUSR1
    log.log(entry(status=201))  # still goes to the renamed file
    log.reopen()
    log.log(entry(status=202))
    log.close()
    assert rotated.read_text() == "200\n201\n"
    assert path.read_text() == "202\n"


def test_reopen_failure_keeps_the_old_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    path = directory / "access.log"
    log = AccessLog(str(path), "%(s)s")
    path.rename(tmp_path / "kept.log")
    directory.rmdir()  # the directory is gone: reopening must fail
    log.reopen()
    log.log(entry(status=203))
    log.close()
    assert (tmp_path / "kept.log").read_text() == "203\n"
    assert re.search(r"cannot reopen", caplog.text)


def test_stdout_log(capfd: pytest.CaptureFixture[str]) -> None:
    log = AccessLog("-", "%(m)s %(s)s")
    log.log(entry())
    log.reopen()  # a no-op for stdout
    log.log(entry(status=500))
    assert capfd.readouterr().out == "GET 200\nGET 500\n"


def test_write_failure_is_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # writing now fails with EPIPE
    log = AccessLog("-", "%(s)s")
    log._fd = write_end  # a stdout whose reader went away
    try:
        log.log(entry())
        log.log(entry())
    finally:
        os.close(write_end)
    assert log.dropped == 2
    assert caplog.text.count("write failed") == 1


def test_every_documented_atom_is_known() -> None:
    for atom in ATOMS:
        formatter = AccessLogFormatter(f"%({atom.replace('name', 'x-id')})s")
        assert formatter.unknown_atoms == (), atom


def test_reopen_while_threads_write_loses_no_line(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(str(path), "%(s)s %(p)s %({x-n}i)s")
    threads, per_thread = 4, 2000

    def write(worker: int) -> None:
        for n in range(per_thread):
            log.log(entry(pid=worker, request_headers=[(b"x-n", str(n).encode())]))

    pool = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    rotated = []
    for generation in range(20):
        target = tmp_path / f"access.log.{generation}"
        path.rename(target)
        rotated.append(target)
        log.reopen()
    for thread in pool:
        thread.join(timeout=60)
        assert not thread.is_alive()
    log.close()
    lines = [line for f in [*rotated, path] for line in f.read_text().splitlines()]
    assert log.dropped == 0
    assert sorted(lines) == sorted(
        f"200 <{i}> {n}" for i in range(threads) for n in range(per_thread)
    )
