"""The master's error boundary: a bug in one policy must not take the workers down.

Workers die with their master (PR_SET_PDEATHSIG), so an exception escaping
the master's loop would cut every in-flight request.  Each step of the loop
(one selector callback, one signal, reaping, the time-based policies) runs
behind the boundary: an unexpected exception is logged with its traceback
and the loop goes on supervising.

A failed step may leave the bookkeeping half-updated, and a fault that
repeats means the state is no longer what the code assumes.  So MAX_FAULTS
faults within FAULT_WINDOW seconds stop the master gracefully (exit status
1): workers finish their in-flight requests, as with SIGTERM, and the
supervisor (systemd's Restart=on-failure) starts a fresh master.

A child the master forked (a worker, a new master) that fails before it is
on its own says why with `child_failed`, then exits.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from prefork import logs

MAX_FAULTS: Final = 5
FAULT_WINDOW: Final = 60.0


class FaultBudget:
    """The recent faults of the master's loop, and when they are too many."""

    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=MAX_FAULTS)

    def exhausted_by(self, now: float) -> bool:
        """Record a fault at `now`; True once MAX_FAULTS fell within FAULT_WINDOW."""
        self.recent.append(now)
        return len(self.recent) == MAX_FAULTS and now - self.recent[0] <= FAULT_WINDOW


def child_failed(what: str) -> None:
    """In a forked child about to `os._exit`: log why, with the traceback, and flush.

    `os._exit` skips every flush, so without this the reason would be lost.
    (Should logging itself fail, the caller's `finally` still exits.)
    """
    logs.LOGGER.exception("%s", what)
    for handler in logs.LOGGER.handlers:
        handler.flush()
