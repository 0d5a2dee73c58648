"""A process's memory and CPU time, read from /proc (Linux).

Workers read their own (the heartbeat's RSS, --max-memory: worker/memory.py)
and the master reads its workers' (`prefork status`, /metrics).  psutil would
answer the same questions, but importing it costs 1.5 MiB of the master's
heap, which every worker inherits with the fork (docs/profile.md, "Idle
memory").
"""

from __future__ import annotations

import os
from typing import Final

PAGE_SIZE: Final = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
# smaps_rollup fields (kB) that make up each metric; USS is the private pages,
# as psutil counts it.
_ROLLUP_FIELDS: Final = {
    "uss": (b"Private_Clean:", b"Private_Dirty:"),
    "pss": (b"Pss:",),
}


class ProcFile:
    """A /proc file kept open and re-read with pread(2)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def read(self) -> bytes:
        return os.pread(self.fd, 4096, 0)

    def close(self) -> None:
        os.close(self.fd)


def resident_bytes(statm: ProcFile) -> int:
    return int(statm.read().split()[1]) * PAGE_SIZE


def rollup_bytes(rollup: ProcFile, metric: str) -> int:
    """USS or PSS from a smaps_rollup file, in bytes."""
    names = _ROLLUP_FIELDS[metric]
    total = 0
    for line in rollup.read().splitlines():
        if line.startswith(names):
            total += int(line.split()[1]) * 1024
    return total


def memory_bytes(pid: int, metric: str) -> int | None:
    """Process `pid`'s memory by `metric` (rss, uss, pss); None once it is gone.

    USS and PSS walk its page tables: milliseconds for a large process.
    """
    path = f"/proc/{pid}/statm" if metric == "rss" else f"/proc/{pid}/smaps_rollup"
    try:
        proc = ProcFile(path)
    except OSError:
        return None
    try:
        used = resident_bytes(proc) if metric == "rss" else rollup_bytes(proc, metric)
    except (OSError, ValueError, IndexError):  # exited meanwhile: the file reads empty
        return None
    finally:
        proc.close()
    return used or None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time process `pid` has used; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name, in parentheses, may itself hold spaces and parentheses:
    # the fields are counted from the last ")" (utime and stime are the 14th
    # and 15th of proc(5)).
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (IndexError, ValueError):
        return None
