"""Worker states (one transition table) and the master's handle on each worker.

    booting --ready--> ready --drain--> draining --exit--> exited
       |                 |                                   ^
       +--drain----------|-----------> draining              |
       +--exit-----------+-----------------------------------+

booting   forked; importing the app, running lifespan startup, starting to accept
ready     told the master it accepts connections (counts as serving capacity)
draining  told to stop (SIGTERM/SIGQUIT): finishes in-flight work, then exits
exited    reaped by the master; the handle is kept only for the log line

A booting worker can be told to drain (the master is stopping, or a reload
gave up on it) and any live worker can exit unexpectedly (crash, SIGKILL).
Every state change goes through `WorkerHandle.move`, which raises on a move
the table does not allow, so a policy bug shows up as an error, not as a
worker silently counted twice.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Final

from prefork.channel import Channel, Counters, RetireReason, no_counters
from prefork.master.slots import Reason


class WorkerState(enum.Enum):
    """Where a worker is in its life; the moves allowed are TRANSITIONS."""

    BOOTING = "booting"
    READY = "ready"
    DRAINING = "draining"
    EXITED = "exited"


TRANSITIONS: Final[dict[WorkerState, frozenset[WorkerState]]] = {
    WorkerState.BOOTING: frozenset({WorkerState.READY, WorkerState.DRAINING, WorkerState.EXITED}),
    WorkerState.READY: frozenset({WorkerState.DRAINING, WorkerState.EXITED}),
    WorkerState.DRAINING: frozenset({WorkerState.EXITED}),
    WorkerState.EXITED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A policy asked for a move TRANSITIONS does not allow: a bug in the master."""


@dataclass(eq=False, slots=True)
class WorkerHandle:
    """The master's record of one live worker process: its state, what it last
    reported, the deadlines the master set on it, and its replacement link.

    A handle is created at fork and dropped at reap; the slot outlives it
    (slots.py).  Replacement links go through `attach` and `detach` only.
    """

    pid: int
    slot: int
    generation: int
    channel: Channel
    state: WorkerState = WorkerState.BOOTING
    started: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)  # last message of any kind
    ready_at: float | None = None
    counters: Counters = field(default_factory=no_counters)  # from its latest heartbeat
    # Set when the worker reported a boot failure (`failed` message); logged at exit.
    error: str | None = None
    error_traceback: str = ""  # the user's traceback behind `error`, if any
    # Graceful replacement (reload, max-requests, max-memory): while `retiring`
    # this worker still serves, but it is not counted as capacity because a
    # replacement is booting in its place (the replacement's `replaces`).
    retiring: bool = False
    replaces: WorkerHandle | None = None
    retire_reason: RetireReason | None = None  # why it asked to be replaced
    retry_at: float = 0.0  # a failed replacement is retried after this time
    end_reason: Reason | None = None  # why the master ended it, counted for its slot
    # Deadlines (monotonic) for escalating a stop or a hang.
    kill_at: float | None = None  # SIGKILL if still alive then
    kill_why: str = ""  # said in the log if that SIGKILL ends it
    killed_for: str | None = None  # why the master sent the signal that ended it
    aborted_at: float | None = None  # SIGABRT sent for a heartbeat timeout
    exit_expected: bool = False  # the master asked it to stop
    # (monotonic time, CPU seconds) at the last `prefork status`: its CPU % is since then.
    cpu_sample: tuple[float, float] | None = None
    row: int | None = None  # its row of the master's connection table (balance.py)

    def move(self, new: WorkerState) -> None:
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"worker {self.slot} (pid {self.pid}): {self.state.value} -> {new.value}"
            )
        self.state = new
        if new is WorkerState.READY:
            self.ready_at = time.monotonic()

    def attach(self, replacement: WorkerHandle) -> None:
        """`replacement` was forked to take this worker's place once it is ready."""
        self.retiring = True
        replacement.replaces = self

    def detach(self, *, predecessor_serves_on: bool) -> WorkerHandle | None:
        """Cut this replacement's link to the worker it was to replace; returns that one.

        `predecessor_serves_on`: this replacement failed or was superseded,
        so the old worker, if still alive, counts as capacity again (and may
        be replaced later); otherwise it is about to drain.
        """
        old, self.replaces = self.replaces, None
        if old is not None and predecessor_serves_on and old.alive:
            old.retiring = False
        return old

    @property
    def alive(self) -> bool:
        return self.state is not WorkerState.EXITED

    @property
    def serving_capacity(self) -> bool:
        """Counts toward the target worker count (see `retiring`)."""
        return self.state in (WorkerState.BOOTING, WorkerState.READY) and not self.retiring

    @property
    def name(self) -> str:
        return f"Worker {self.slot} (pid {self.pid})"
