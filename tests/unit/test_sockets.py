"""Listeners in-process: address parsing, binding, unix socket files.

Serving on each kind of listener is in tests/integration/test_sockets_serving.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefork.errors import BindError
from prefork.sockets import Address, bind_all, close_all, describe, parse_address

WSGI = "tests.apps.proc_app:wsgi"
ASGI = "tests.apps.proc_app:asgi"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1:8000", Address("tcp", host="127.0.0.1", port=8000)),
        (":8000", Address("tcp", host="0.0.0.0", port=8000)),
        ("localhost:0", Address("tcp", host="localhost", port=0)),
        ("[::1]:8080", Address("tcp", host="::1", port=8080)),
        ("unix:/run/app.sock", Address("unix", path="/run/app.sock")),
        ("fd://3", Address("fd", fd=3)),
    ],
)
def test_parse_address(spec: str, expected: Address) -> None:
    assert parse_address(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("8000", "expected HOST:PORT"),
        ("127.0.0.1:http", "port must be a number"),
        ("127.0.0.1:70000", "port must be a number"),
        ("::1:8000", "brackets"),
        ("[::1]8000", r"expected \[IPV6\]:PORT"),
        ("unix:", "expected unix:PATH"),
        ("fd://x", "expected fd://N"),
    ],
)
def test_parse_address_rejects(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(spec)


def test_port_zero_resolves_to_the_real_port() -> None:
    listeners = bind_all(["127.0.0.1:0"], backlog=16)
    try:
        url = describe(listeners[0].sock)
        assert url.startswith("http://127.0.0.1:")
        assert int(url.rsplit(":", 1)[1]) > 0
        assert listeners[0].sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    finally:
        close_all(listeners, unlink=True)


def test_address_in_use_is_a_one_line_bind_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BindError) as info:
            bind_all([f"127.0.0.1:{port}"], backlog=16)
    message = str(info.value)
    assert message.startswith(f"cannot bind 127.0.0.1:{port}: Address already in use")
    assert "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root may bind privileged ports")
def test_privileged_port_is_permission_denied() -> None:
    with pytest.raises(BindError, match=r"cannot bind 127\.0\.0\.1:80: Permission denied"):
        bind_all(["127.0.0.1:80"], backlog=16)


def test_bad_address_is_a_bind_error() -> None:
    with pytest.raises(BindError, match="cannot bind 'nonsense': expected HOST:PORT"):
        bind_all(["nonsense"], backlog=16)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_unix_socket_mode_follows_umask_and_file_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    with umask(0o077):
        listeners = bind_all([f"unix:{path}"], backlog=16)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        assert describe(listeners[0].sock) == f"unix:{path}"
    finally:
        close_all(listeners, unlink=True)
    assert not path.exists()


def test_stale_unix_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: a crashed server's leftover
    listeners = bind_all([f"unix:{path}"], backlog=16)
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            # The leftover would refuse this (ECONNREFUSED): the path is live again.
            client.connect(str(path))
            accepted, _ = listeners[0].sock.accept()
            accepted.close()
    finally:
        close_all(listeners, unlink=True)
    assert not path.exists()  # the file this master created is removed with it


def test_live_unix_socket_is_not_stolen(tmp_path: Path) -> None:
    path = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(BindError, match="another server is listening"):
            bind_all([f"unix:{path}"], backlog=16)
        assert path.exists()


def test_regular_file_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("precious")
    with pytest.raises(BindError, match="exists and is not a socket"):
        bind_all([f"unix:{path}"], backlog=16)
    assert path.read_text() == "precious"


def test_a_replaced_socket_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    listeners = bind_all([f"unix:{path}"], backlog=16)
    os.unlink(path)
    with socket.socket(socket.AF_UNIX) as newer:
        newer.bind(str(path))  # someone else's socket now lives at the path
        close_all(listeners, unlink=True)
        assert path.exists()


def test_failed_bind_closes_earlier_listeners(tmp_path: Path) -> None:
    path = tmp_path / "first.sock"
    with pytest.raises(BindError):
        bind_all([f"unix:{path}", "nonsense"], backlog=16)
    assert not path.exists()


# -- end to end: the real server on each kind of listener --------------------
