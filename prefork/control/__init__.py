"""The control socket: `prefork status|reload|scale|stop` talking to a running master.

Protocol: the client connects to a unix stream socket, sends one JSON object
on one line, e.g. `{"cmd": "scale", "workers": 4, "wait": true}`, and reads
one JSON object line back: `{"ok": true, ...}` or `{"ok": false, "error":
"one line"}`.  With `"wait": true` the master answers once the outcome is
known (the reload finished or failed, the workers are all ready, the master
stopped), so the client can report it.  Every request and answer is
written out, key for key, in `prefork.control.protocol`.

Trust, both ways: whoever can write to the socket's directory can replace the
socket with a listener of their own, so the directory must be one nobody else
can write to (`check_directory`), and each side checks the other's uid with
SO_PEERCRED (`peer_credentials`): the master answers only its own uid and root, the
client talks only to a master of its own uid or root.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from pathlib import Path

from prefork.errors import ControlError


def default_directory(environ: dict[str, str] | None = None) -> Path:
    """$XDG_RUNTIME_DIR/prefork, else /tmp/prefork-UID."""
    env = dict(os.environ) if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "prefork"
    return Path("/tmp") / f"prefork-{os.getuid()}"


def default_path(name: str | None, environ: dict[str, str] | None = None) -> str:
    """DIRECTORY/NAME.sock in `default_directory` (NAME is `default` without --name)."""
    return str(default_directory(environ) / f"{name or 'default'}.sock")


def check_directory(directory: Path, *, private: bool) -> None:
    """Raise ControlError unless `directory` is safe to hold a control socket.

    Always: a real directory (lstat, so a symlink planted in its place is
    refused), owned by us or root, writable by nobody else (a sticky
    directory such as /tmp is accepted: others cannot replace our files in
    it).  `private` (the default directory, which prefork creates itself):
    owned by us, and no access at all for anyone else (mode 0700).
    """
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        raise ControlError(f"control socket directory {directory} does not exist") from None
    except OSError as exc:
        raise ControlError(f"cannot check {directory}: {exc.strerror or exc}") from None
    me = os.geteuid()
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise ControlError(f"unsafe control socket directory {directory}: it is {kind}")
    owners = (me,) if private else (me, 0)
    if st.st_uid not in owners:
        raise ControlError(
            f"unsafe control socket directory {directory}: it belongs to uid {st.st_uid}, "
            f"not to you (uid {me}); remove it or choose another --control-socket"
        )
    mode = stat.S_IMODE(st.st_mode)
    if private and mode & 0o077:
        raise ControlError(
            f"unsafe control socket directory {directory}: mode {mode:04o} lets other users "
            "in; it must be 0700 (chmod 700 it)"
        )
    if mode & 0o022 and not mode & stat.S_ISVTX:
        raise ControlError(
            f"unsafe control socket directory {directory}: mode {mode:04o} lets other users "
            "replace the socket"
        )


def peer_credentials(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a connected unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", creds)
    return int(pid), int(uid)


def trusted_uid(uid: int) -> bool:
    """Our own uid, or root's (root can reach any process anyway)."""
    return uid in (0, os.geteuid())
