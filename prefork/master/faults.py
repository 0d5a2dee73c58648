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
"""

from __future__ import annotations

from collections import deque
from typing import Final

MAX_FAULTS: Final = 5
FAULT_WINDOW: Final = 60.0


class FaultBudget:
    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=MAX_FAULTS)

    def exhausted_by(self, now: float) -> bool:
        """Record a fault at `now`; True once MAX_FAULTS fell within FAULT_WINDOW."""
        self.recent.append(now)
        return len(self.recent) == MAX_FAULTS and now - self.recent[0] <= FAULT_WINDOW
