"""sd_notify, LISTEN_FDS, the watchdog interval and ExecStart quoting, without a master."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from prefork import systemd
from prefork.systemd_unit import systemd_quote


def test_notify_sends_to_a_datagram_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        assert systemd.notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert sock.recv(100) == b"READY=1"
    assert not systemd.notify("READY=1", {})


def test_listen_fds_only_for_our_pid() -> None:
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "2"}
    assert systemd.listen_fds(env) == []
    assert env == {}  # consumed either way, so children never see them


def test_no_watchdog_for_another_pid() -> None:
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}) is None
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert systemd.watchdog_interval({}) is None


@pytest.mark.parametrize(
    ("arg", "word"),
    [
        ("plain", "plain"),
        ("with space", '"with space"'),
        ("100%", "100%%"),
        ("$HOME", "$$HOME"),
        ('say "hi"', '"say \\"hi\\""'),
        ("", '""'),
        (";", '";"'),
    ],
)
def test_exec_start_words_are_quoted_for_systemd(arg: str, word: str) -> None:
    assert systemd_quote(arg) == word
