"""systemd integration without a dependency: sd_notify and socket activation.

sd_notify is one datagram ("READY=1\\nSTATUS=...") sent to $NOTIFY_SOCKET, a
unix datagram socket path, or an abstract-namespace name when it starts with
"@" (sd_notify(3)).  Socket activation passes listeners as fds 3..3+N-1 with
$LISTEN_FDS=N and $LISTEN_PID=<our pid> (sd_listen_fds(3)); the variables are
removed once consumed so that children (workers, an upgraded master) do not
mistake them for their own.

With an upgrade (USR2) the new master announces itself with MAINPID=<pid>
before READY=1; the unit needs NotifyAccess=all for systemd to accept a
message from a process other than the original main pid (docs/operations.md).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, MutableMapping
from typing import Final

SD_LISTEN_FDS_START: Final = 3


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `message` to systemd; False when not under systemd or it failed."""
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True


def status_message(text: str) -> str:
    return "STATUS=" + text.replace("\n", " ")


def listen_fds(environ: MutableMapping[str, str] | None = None) -> list[int]:
    """The fds systemd passed us (empty if none or not meant for this pid)."""
    environ = os.environ if environ is None else environ
    pid_text = environ.pop("LISTEN_PID", None)
    count_text = environ.pop("LISTEN_FDS", None)
    environ.pop("LISTEN_FDNAMES", None)
    if pid_text is None or count_text is None:
        return []
    if not pid_text.isdigit() or int(pid_text) != os.getpid() or not count_text.isdigit():
        return []
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count_text)))
