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

Besides READY/RELOADING/STOPPING (sent where they happen), `Notifier` runs
on every turn of the master's loop and sends what is due:

- WATCHDOG=1 every WATCHDOG_USEC/2 when systemd set WatchdogSec= (a master
  whose loop is stuck stops pinging, and systemd restarts the service);
- EXTEND_TIMEOUT_USEC while workers are still booting (a slow app import
  must not trip TimeoutStartSec), until prefork's own --boot-timeout decides
  or a worker slot is found errored (crash-looping);
- STATUS= with workers ready, requests per second and the last reload,
  whenever it changed, at most every STATUS_INTERVAL.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

SD_LISTEN_FDS_START: Final = 3
STATUS_INTERVAL: Final = 5.0
# While booting, each EXTEND_TIMEOUT_USEC message grants this long and is
# renewed every EXTEND_EVERY seconds, so one missed turn does not matter.
EXTEND_BY: Final = 30.0
EXTEND_EVERY: Final = 10.0


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


def reloading_message(status: str) -> str:
    """RELOADING=1 with the CLOCK_MONOTONIC time systemd (253+) needs for notify-reload."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return f"RELOADING=1\nMONOTONIC_USEC={usec}\n{status_message(status)}"


def watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None if not asked."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    # After a USR2 upgrade WATCHDOG_PID still names the old master, our parent.
    if (
        not usec.isdigit()
        or int(usec) == 0
        or (pid and int(pid) not in (os.getpid(), os.getppid()))
    ):
        return None
    return int(usec) / 2e6


class Notifier:
    """What the master sends systemd on its own schedule (see the module docstring)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.enabled = bool(self.environ.get("NOTIFY_SOCKET"))
        self.watchdog = watchdog_interval(self.environ) if self.enabled else None
        self.next_watchdog = 0.0
        self.next_extend = 0.0
        self.next_status = 0.0
        self.last_status = ""
        self.requests = 0
        self.requests_at = 0.0

    def next_due(self, now: float) -> float:
        """Seconds until the next watchdog ping (the loop must wake up for it)."""
        if self.watchdog is None:
            return float("inf")
        return max(0.0, self.next_watchdog - now)

    def tick(self, now: float, booting: bool, snapshot: Callable[[], Snapshot]) -> None:
        if not self.enabled:
            return
        if self.watchdog is not None and now >= self.next_watchdog:
            self.next_watchdog = now + self.watchdog
            notify("WATCHDOG=1", self.environ)
        if booting and now >= self.next_extend:
            self.next_extend = now + EXTEND_EVERY
            notify(f"EXTEND_TIMEOUT_USEC={int(EXTEND_BY * 1e6)}", self.environ)
        if now >= self.next_status:
            text = self._status(now, snapshot())
            if text != self.last_status:
                self.last_status = text
                notify(status_message(text), self.environ)
            self.next_status = now + STATUS_INTERVAL

    def _status(self, now: float, snap: Snapshot) -> str:
        # Counters restart with each new worker, so a replaced worker can make
        # the total drop: such an interval counts as 0, not as negative.
        elapsed = now - self.requests_at
        rate = max(0, snap.requests - self.requests) / elapsed if self.requests_at else 0.0
        self.requests, self.requests_at = snap.requests, now
        text = f"{snap.state}: {snap.ready}/{snap.target} workers ready, {rate:.0f} req/s"
        if snap.last_reload is not None:
            outcome = "ok" if snap.last_reload.get("ok") else "failed"
            finished = time.strftime("%H:%M:%S", time.localtime(snap.last_reload["finished"]))
            text += f", last reload {outcome} at {finished}"
        return text


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The master's state, as the STATUS= line shows it."""

    state: str  # starting, running, reloading, stopping, errored
    ready: int
    target: int
    requests: int  # served by the live workers, in total
    last_reload: Mapping[str, Any] | None


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
