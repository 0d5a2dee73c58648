"""Worker slots: why each was restarted, and the crash-loop policy (backoff, errored).

A slot is a worker's number (`worker 0`, `worker 1`, ...): the worker in it
is replaced many times over the master's life, the slot stays.  For each
slot `SlotBook` keeps

- the count of replacements by reason (`REASONS`) and the last one, which
  `prefork status` and `top` show;
- the boot failures in a row, which decide the slot's own respawn backoff:
  one slot crash-looping never delays another slot's respawn, so a request
  that kills whichever worker serves it cannot leave the server with no
  worker at all (gunicorn respawns at once too).

What is a boot failure: a worker that died before it was ready, or within
EARLY_WINDOW seconds after (an app that dies on its first request is a
crash loop too).  A worker that served for longer and then died (a
segfaulting request) is respawned at once.  A worker killed by the master's
own watchdog (--timeout) is never a boot failure: the timeout already paced
the loop.  The count resets once a worker of the slot has stayed ready for
EARLY_WINDOW seconds.  After ERRORED_AFTER failures in a row the slot is
`errored` and no longer respawned (PM2's `errored`); a reload or a scale
clears it.  When every slot is errored the master exits (see arbiter.py).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Final, Literal

from prefork.control.protocol import LastRestart, SlotStatus

# Why a worker was replaced; the keys of `prefork status --json`'s "reasons".
Reason = Literal["crash", "memory", "timeout", "max-requests", "reload", "scale"]
CRASH: Final = "crash"
MEMORY: Final = "memory"
TIMEOUT: Final = "timeout"
MAX_REQUESTS: Final = "max-requests"
RELOAD: Final = "reload"
SCALE: Final = "scale"
REASONS: Final[tuple[Reason, ...]] = (CRASH, MEMORY, TIMEOUT, MAX_REQUESTS, RELOAD, SCALE)

EARLY_WINDOW: Final = 2.0
BACKOFF_FIRST: Final = 0.5
BACKOFF_MAX: Final = 30.0
ERRORED_AFTER: Final = 5


def respawn_delay(failures: int) -> float:
    """Seconds before the next spawn of a slot after `failures` boot failures in a row."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1)))


@dataclass(slots=True)
class SlotRecord:
    """One slot's history: replacements by reason, and its crash-loop state."""

    reasons: Counter[Reason] = field(default_factory=Counter)
    last_reason: Reason | None = None
    last_at: float | None = None  # wall clock, for display
    failures: int = 0  # boot failures in a row
    not_before: float = 0.0  # monotonic: no spawn in this slot before then
    errored: bool = False
    last_error: str = ""

    @property
    def restarts(self) -> int:
        return sum(self.reasons.values())


class SlotBook:
    """Every slot's `SlotRecord`, created on first use; the crash-loop policy."""

    def __init__(self) -> None:
        self.records: dict[int, SlotRecord] = {}

    def __getitem__(self, slot: int) -> SlotRecord:
        record = self.records.get(slot)
        if record is None:
            record = self.records[slot] = SlotRecord()
        return record

    def replaced(self, slot: int, reason: Reason) -> SlotRecord:
        record = self[slot]
        record.reasons[reason] += 1
        record.last_reason = reason
        record.last_at = time.time()
        return record

    def boot_failed(self, slot: int, now: float, error: str) -> float:
        """Count a boot failure; the slot's respawn delay (inf once it is errored)."""
        record = self[slot]
        record.failures += 1
        record.last_error = error
        if record.failures >= ERRORED_AFTER:
            record.errored = True
            return float("inf")
        delay = respawn_delay(record.failures)
        record.not_before = now + delay
        return delay

    def stable(self, slot: int) -> None:
        """A worker of this slot stayed ready for EARLY_WINDOW: its crash loop is over."""
        record = self.records.get(slot)
        if record is not None and (record.failures or record.errored):
            record.failures = 0
            record.not_before = 0.0
            record.errored = False

    def may_spawn(self, slot: int, now: float) -> bool:
        record = self.records.get(slot)
        return record is None or (not record.errored and now >= record.not_before)

    def clear_errors(self) -> None:
        """New code or a new count (reload, scale): every slot may try again at once."""
        for record in self.records.values():
            record.failures = 0
            record.not_before = 0.0
            record.errored = False

    def errored(self, slots: range) -> bool:
        """True when every slot in `slots` is errored."""
        return all(self.records.get(s) is not None and self.records[s].errored for s in slots)

    def next_spawn(self, now: float) -> float | None:
        """The earliest pending backoff deadline, if any (for the loop's wait)."""
        waits = [r.not_before for r in self.records.values() if r.not_before > now]
        return min(waits) if waits else None

    def status(self, slot: int, now: float) -> SlotStatus:
        """The slot's part of its `prefork status` row."""
        record = self.records.get(slot) or SlotRecord()
        last = None
        if record.last_reason is not None and record.last_at is not None:
            last = LastRestart(reason=record.last_reason, at=record.last_at)
        return SlotStatus(
            restarts=record.restarts,
            reasons={str(reason): count for reason, count in record.reasons.items()},
            last_restart=last,
            failures=record.failures,
            errored=record.errored,
            respawn_in=round(max(0.0, record.not_before - now), 1),
        )

    def totals(self) -> dict[str, int]:
        """Replacements by reason over every slot (for /metrics)."""
        total: Counter[str] = Counter()
        for record in self.records.values():
            total.update(record.reasons)
        return dict(total)

    def summary(self, slot: int) -> str:
        """`3 restarts (crash 2, memory 1)`, for the log."""
        record = self[slot]
        total = record.restarts
        parts = ", ".join(f"{r} {record.reasons[r]}" for r in REASONS if record.reasons[r])
        return f"{total} restart{'' if total == 1 else 's'} ({parts})"
