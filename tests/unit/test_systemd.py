"""sd_notify and LISTEN_FDS, without a master: prefork.systemd's own functions."""

from __future__ import annotations

import socket
from pathlib import Path

from prefork import systemd


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
