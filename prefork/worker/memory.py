"""--max-memory, enforced by each worker on itself.

Theory of operation
-------------------
A master polling every worker (PM2 and granian sample every 30 s) reacts
too late for a leak of a few MiB per request: a worker reached 14x its
limit between samples.  So each worker checks itself, on its own event
loop, every CHECK_INTERVAL: one pread(2) of /proc/self/statm on a
descriptor kept open (about a microsecond; measured cost on the plaintext
benchmark in docs/operations.md).

- RSS is what statm gives.  USS and PSS need /proc/self/smaps_rollup, a
  page-table walk that costs milliseconds for a large process; since
  USS <= PSS <= RSS, it is only read once RSS itself is over the limit,
  and then at most every EXACT_INTERVAL.
- Over the limit (the soft threshold) the worker stops taking new work
  (it stops accepting and answers keep-alive requests with
  `Connection: close`, so its siblings take the traffic) and asks the
  master for a replacement; it stops growing while the replacement boots.
- Over HARD_FACTOR x the limit it asks the master to end it now: it drains
  (in-flight requests finish) even if no replacement is ready yet.

The reaction time is CHECK_INTERVAL, plus however long the event loop is
busy in one go (an inline WSGI call; a blocked loop is --timeout's job).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prefork.procfs import ProcFile, resident_bytes, rollup_bytes

CHECK_INTERVAL: Final = 0.1
EXACT_INTERVAL: Final = 1.0
HARD_FACTOR: Final = 1.5
METRICS: Final = ("rss", "uss", "pss")

# (metric, bytes used, hard: end it now)
OverLimit = Callable[[str, int, bool], None]


class MemoryGuard:
    """Calls `over_limit` once when the soft limit is crossed, once more at the hard one."""

    def __init__(self, limit: int, metric: str, over_limit: OverLimit) -> None:
        self.limit = limit
        self.hard_limit = int(limit * HARD_FACTOR)
        self.metric = metric
        self.over_limit = over_limit
        self.statm = ProcFile("/proc/self/statm")
        self.rollup = ProcFile("/proc/self/smaps_rollup") if metric != "rss" else None
        self.next_exact = 0.0
        self.tripped = False  # the soft limit was reported
        self.done = False  # the hard limit was reported: nothing more to do

    def check(self, now: float) -> None:
        """One sample (cheap unless RSS is over the limit and the metric is USS/PSS)."""
        if self.done:
            return
        used = resident_bytes(self.statm)
        if used <= self.limit:
            return
        if self.rollup is not None:
            if now < self.next_exact:
                return
            self.next_exact = now + EXACT_INTERVAL
            used = rollup_bytes(self.rollup, self.metric)
            if used <= self.limit:
                return
        hard = used > self.hard_limit
        if hard or not self.tripped:
            self.tripped = True
            self.done = hard
            self.over_limit(self.metric, used, hard)

    def close(self) -> None:
        self.statm.close()
        if self.rollup is not None:
            self.rollup.close()
