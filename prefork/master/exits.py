"""What a worker's exit means, and what the master does about it.

The arbiter reaps a worker and takes it out of its table, then hands it to
`Exits.judge` with its wait status and the state it was in.  The first case
that matches decides:

expected     the master asked it to stop (a drain for a reload, a scale-down,
             a replacement, the master stopping): one log line
first boot   before the master's first `Ready`, a worker that was never ready
             exited 3 (boot failure) or 4 (import failure): the deploy is
             broken, so the master stops with the same status instead of
             respawning forever (gunicorn's precedent)
reload       a replacement of the reload in progress was never ready: the new
             code failed, not the slot, so the reload fails (reload.py) and
             the old workers keep serving
replacement  it replaced a worker that still serves (--max-requests,
             --max-memory): that one stays, and a new replacement is tried
             after the slot's backoff
crash        anything else: counted for its slot; dying before it was ready,
             or soon after, is a boot failure that backs the slot off or marks
             it errored (slots.py); a worker that served for a while is
             respawned at once (the arbiter's reconcile step does it)

A worker that dies before it was ever ready also fails a waiting `prefork
scale` (commands.py).  Every worker of a broken deploy fails the same way,
so the user's traceback is logged once per generation, not once per worker.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from prefork import logs
from prefork.errors import EXIT_BOOT, EXIT_IMPORT
from prefork.master import health, slots
from prefork.master.workers import WorkerHandle, WorkerState

if TYPE_CHECKING:
    from prefork.master.arbiter import Arbiter

log = logs.LOGGER


class Exits:
    """Judges each reaped worker's exit (see the module docstring)."""

    def __init__(self, arbiter: Arbiter) -> None:
        self.arbiter = arbiter
        # (generation, traceback) last logged: each attempt shows it once, not per worker.
        self.last_traceback: tuple[int, str] | None = None

    def judge(self, handle: WorkerHandle, status: int, was: WorkerState) -> None:
        """`handle` exited with wait `status`, having been in state `was`."""
        arbiter = self.arbiter
        now = time.monotonic()
        how = health.describe_exit(status, handle.killed_for)
        code = health.exit_code(status)
        old = handle.detach(predecessor_serves_on=True)

        if handle.exit_expected:
            text = "exited" if code == 0 else how
            if handle.end_reason is not None and not arbiter.stop_mode:
                text += f" [{self._slot_summary(handle.slot)}]"
            log.info("%s %s", handle.name, text)
            return
        reason = handle.error or f"{handle.name} {how}"
        never_ready = was is WorkerState.BOOTING
        if not arbiter.initial_ready and never_ready and code in (EXIT_BOOT, EXIT_IMPORT):
            log.error("%s", self._with_traceback(handle, f"failed to boot: {handle.error or how}"))
            log.error("Shutting down: a worker could not boot (exit status %d)", code)
            arbiter.exit_status = code
            arbiter.stop(graceful=False)
            return
        if never_ready:
            arbiter.commands.worker_failed(reason)
        run = arbiter.reloads.run
        if run is not None and never_ready and handle.generation == run.generation:
            # The new code failed, not the slot: nothing was restarted.
            log.error("%s", self._with_traceback(handle, f"failed to boot: {handle.error or how}"))
            arbiter.reloads.failed(reason)
            return
        # A worker the watchdog killed was ready; anything else unplanned is a crash.
        cause = handle.end_reason or slots.CRASH
        early = never_ready or (
            cause == slots.CRASH
            and handle.ready_at is not None
            and now - handle.ready_at < slots.EARLY_WINDOW
        )
        book = arbiter.slots
        if old is not None and old.alive:
            # A replacement for --max-requests/--max-memory failed; the old
            # worker stays, and the replacement is tried again after a backoff.
            book.boot_failed(handle.slot, now, reason)
            delay = slots.respawn_delay(book[handle.slot].failures)
            old.retry_at = now + delay
            stays = f"worker {old.slot} (pid {old.pid}) stays, retried in {delay:.1f}s"
            line = f"failed to boot: {handle.error or how}; {stays}"
            log.error("%s", self._with_traceback(handle, line))
            return
        book.replaced(handle.slot, cause)
        summary = self._slot_summary(handle.slot)
        if handle.error:
            log.error("%s failed to boot: %s [%s]", handle.name, handle.error, summary)
        else:
            log.error("%s %s [%s]", handle.name, how, summary)
        if not early:
            return  # served for a while: respawned at once
        delay = book.boot_failed(handle.slot, now, handle.error or how)
        failures = book[handle.slot].failures
        if math.isinf(delay):
            log.error(
                "Worker slot %d is errored: %d boot failures in a row (last: %s); "
                "not respawning it until a reload or a scale",
                handle.slot,
                failures,
                handle.error or how,
            )
        elif delay:
            log.warning(
                "Respawning worker %d in %.1fs (%d boot failures in a row)",
                handle.slot,
                delay,
                failures,
            )

    def _with_traceback(self, handle: WorkerHandle, what: str) -> str:
        """ "<worker> <what>", then the user's traceback behind it, once per generation."""
        line = f"{handle.name} {what}"
        details = handle.error_traceback
        if not details or (handle.generation, details) == self.last_traceback:
            return line
        self.last_traceback = (handle.generation, details)
        return f"{line}\n{details}"

    def _slot_summary(self, slot: int) -> str:
        return f"slot {slot}: {self.arbiter.slots.summary(slot)}"
