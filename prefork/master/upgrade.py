"""The binary upgrade (USR2; HUP with --preload): a new master on the same listeners.

Old master                                  New master
----------                                  ----------
fork + exec `python -m prefork ARGV`,
listeners' fds in PREFORK_INHERIT_FDS,
its pid in PREFORK_OLD_MASTER         --->  adopts the listeners (sockets.py),
                                            boots its workers
                                      <---  once they are ready: SIGTERM to the
drains its workers and exits                old master (`take_over`), MAINPID=
                                            to systemd

If the new master exits before it took over, the upgrade failed: it counts
as a failed reload attempt and the old master goes on serving.  The new
master trusts PREFORK_OLD_MASTER only when that pid is its parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Final

from prefork import logs, systemd
from prefork.master import health
from prefork.master.faults import child_failed
from prefork.sockets import INHERIT_ENV

if TYPE_CHECKING:
    from prefork.master.arbiter import Arbiter

log = logs.LOGGER

OLD_MASTER_ENV: Final = "PREFORK_OLD_MASTER"


def old_master_from_environment() -> int | None:
    """In a new master: the old master's pid, if it started us (and forget the variable)."""
    value = os.environ.pop(OLD_MASTER_ENV, "")
    if value.isdigit() and int(value) == os.getppid():
        return int(value)
    return None


class Upgrade:
    """Both sides of an upgrade: the new master this one started, the old one it replaces."""

    def __init__(self, arbiter: Arbiter) -> None:
        self.arbiter = arbiter
        self.pid: int | None = None  # the new master this one started, until it exits
        self.started = 0.0  # wall clock, for the outcome's record
        self.old_master: int | None = None  # the master this one replaces, until it took over

    def start(self, reason: str) -> str:
        """Start a new master on the same listeners; returns what happened, for the caller."""
        arbiter = self.arbiter
        reloads = arbiter.reloads
        if arbiter.stop_mode:
            return "stopping; upgrade ignored"
        if self.pid is not None:
            reloads.again = True
            log.info("Upgrade already in progress; a reload will follow it")
            return "queued after the upgrade in progress"
        reloads.attempts += 1
        fds = [listener.sock.fileno() for listener in arbiter.listeners]
        env = dict(os.environ)
        env[INHERIT_ENV] = ",".join(map(str, fds))
        env[OLD_MASTER_ENV] = str(os.getpid())
        argv = [sys.executable, "-m", "prefork", *arbiter.argv]
        systemd.notify(systemd.reloading_message("starting a new master"))
        pid = os.fork()
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                os.chdir(arbiter.start_cwd)
                for fd in fds:
                    os.set_inheritable(fd, True)
                arbiter.hooks("pre_exec")
                os.execve(sys.executable, argv, env)
            except BaseException:
                child_failed(f"Upgrade: cannot start a new master ({sys.executable})")
            finally:
                os._exit(127)
        self.pid = pid
        self.started = time.time()
        log.info("Upgrading (%s): started a new master (pid %d)", reason, pid)
        return f"started new master (pid {pid})"

    def exited(self, status: int) -> None:
        """The new master exited: after taking over (we are stopping), or failing."""
        pid, self.pid = self.pid, None
        arbiter = self.arbiter
        if arbiter.stop_mode:
            return  # it took over (it told us to stop) and later exited itself
        detail = f"new master (pid {pid}) {health.describe_exit(status)}"
        arbiter.reloads.record(False, arbiter.generation, detail, self.started)
        arbiter.reloads.follow_up()

    def claim_main_pid(self) -> None:
        """In a new master about to say READY: systemd must follow this pid from now on."""
        if self.old_master is not None:
            systemd.notify(f"MAINPID={os.getpid()}")

    def take_over(self) -> None:
        """In a new master, once its workers are ready: stop the old master."""
        if self.old_master is None:
            return
        log.info("Upgrade complete: stopping the old master (pid %d)", self.old_master)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.old_master, signal.SIGTERM)
        self.old_master = None
