"""Health policies the master applies to live workers: the watchdog, exit descriptions.

The watchdog (`watch`) runs on every wake-up of the master's loop:
- a worker told to stop that is still alive at its `kill_at` deadline gets
  SIGKILL (the arbiter sets the deadline when it drains a worker);
- --boot-timeout: a worker not ready in time is killed, and counts as a
  boot failure of its slot;
- --timeout: a silent ready worker gets SIGABRT (faulthandler dumps its
  stacks) and SIGCONT (a stopped worker could not dump them otherwise),
  then SIGKILL ABORT_GRACE seconds later.
- Crash backoff and the `errored` state are per slot: see slots.py.
- --max-memory is enforced by each worker on itself: see worker/memory.py.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, Final

from prefork import logs
from prefork.master import slots
from prefork.master.workers import WorkerState

if TYPE_CHECKING:
    from prefork.master.arbiter import Arbiter

log = logs.LOGGER

ABORT_GRACE: Final = 2.0


def watch(arbiter: Arbiter, now: float) -> None:
    """Kill what overstayed its deadline; abort what went silent (see the module doc)."""
    config = arbiter.config
    for handle in list(arbiter.workers.values()):
        if handle.kill_at is not None and now >= handle.kill_at:
            log.warning("%s: %s; sending SIGKILL", handle.name, handle.kill_why)
            handle.kill_at = None
            arbiter.kill(handle, handle.kill_why)
        elif (
            handle.state is WorkerState.BOOTING
            and not handle.exit_expected
            and handle.error is None
            and config.boot_timeout
            and now - handle.started > config.boot_timeout
        ):
            handle.error = f"not ready within --boot-timeout {config.boot_timeout:g}s"
            log.error("%s: %s; killing it", handle.name, handle.error)
            handle.end_reason = slots.TIMEOUT
            arbiter.kill(handle, handle.error)
        elif (
            handle.state is WorkerState.READY
            and config.timeout
            and handle.aborted_at is None
            and now - handle.last_seen > config.timeout
        ):
            why = f"no heartbeat for {config.timeout:g}s"
            log.error("%s timed out (%s); sending SIGABRT", handle.name, why)
            handle.aborted_at = now
            handle.kill_at = now + ABORT_GRACE
            handle.kill_why = why
            handle.end_reason = slots.TIMEOUT
            arbiter.kill(handle, why, signal.SIGABRT)
            # A stopped worker (SIGSTOP, a debugger) would only see the
            # SIGABRT, and dump its stacks, once continued.
            arbiter.send_signal(handle, signal.SIGCONT)


def describe_exit(status: int, killed_by_us: str | None = None) -> str:
    """A waitpid status as words: "exited with status 3", "was killed by SIGKILL (...)".

    `killed_by_us` is why the master itself sent the signal that ended the
    worker, if it did; a SIGKILL nobody here sent is most likely the kernel's
    OOM killer.
    """
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        text = f"was killed by {name}"
        if killed_by_us:
            text += f" (by prefork: {killed_by_us})"
        elif signum == signal.SIGKILL:
            text += " (not by prefork; out of memory?)"
        return text
    code = os.waitstatus_to_exitcode(status)
    return f"exited with status {code}"


def exit_code(status: int) -> int | None:
    """The exit status, or None when the process died from a signal."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
