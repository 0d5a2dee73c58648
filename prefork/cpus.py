"""How many workers `--workers max` (or `-N`) means on this machine.

`max` is the number of CPUs this process may actually run on: the scheduler
affinity mask (so `taskset -c 0` gives 1), further capped by a cgroup CPU
quota when one is set (so a container limited to 2 CPUs on a 64-core host
gets 2, not 64).  The quota is read from cgroup v2 `cpu.max` ("QUOTA PERIOD"
or "max PERIOD"), falling back to cgroup v1 `cpu.cfs_quota_us` /
`cpu.cfs_period_us`; a fractional quota rounds up (1.5 CPUs -> 2 workers),
as the JVM and Go's automaxprocs do.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

CGROUP_ROOT: Final = Path("/sys/fs/cgroup")


def affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def parse_cpu_max(text: str) -> int | None:
    """CPUs allowed by a cgroup v2 `cpu.max` line, or None if unlimited/unreadable."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _own_cgroup_v2_dir(root: Path) -> Path:
    # /proc/self/cgroup has "0::/some/path" for the unified hierarchy; inside a
    # container with a cgroup namespace the path is "/" and root is our cgroup.
    text = _read(Path("/proc/self/cgroup")) or ""
    for line in text.splitlines():
        if line.startswith("0::"):
            return root / line[3:].lstrip("/")
    return root


def cgroup_cpu_limit(cpu_max_path: Path | None = None, root: Path = CGROUP_ROOT) -> int | None:
    """The CPU quota as a whole number of CPUs, or None when there is none.

    `cpu_max_path` names one `cpu.max` file (tests pass a fake one); otherwise
    our own cgroup and each ancestor up to `root` are checked, because a limit
    set on a parent applies to us too, and the smallest one wins.
    """
    if cpu_max_path is not None:
        text = _read(cpu_max_path)
        return parse_cpu_max(text) if text is not None else None
    limits: list[int] = []
    directory = _own_cgroup_v2_dir(root)
    while True:
        text = _read(directory / "cpu.max")
        if text is not None and (limit := parse_cpu_max(text)) is not None:
            limits.append(limit)
        if directory == root or root not in directory.parents:
            break
        directory = directory.parent
    quota = _read(root / "cpu" / "cpu.cfs_quota_us")
    period = _read(root / "cpu" / "cpu.cfs_period_us")
    if quota is not None and period is not None:
        v1 = parse_cpu_max(f"{quota.strip()} {period.strip()}")
        if v1 is not None:
            limits.append(v1)
    return min(limits) if limits else None


def max_workers(cpu_max_path: Path | None = None) -> tuple[int, str]:
    cpus = affinity_cpus()
    limit = cgroup_cpu_limit(cpu_max_path)
    if limit is not None and limit < cpus:
        return limit, f"cgroup cpu quota allows {limit} of {cpus} usable CPUs"
    return cpus, f"{cpus} usable CPU{'s' if cpus != 1 else ''}"


@dataclass(frozen=True, slots=True)
class WorkerCount:
    """A `--workers` value, parsed once (config.py) and resolved on this machine.

    `fixed` workers, or (`fixed` None) the usable CPUs minus `fewer`, at least
    one: `max` is `fewer` 0, `-2` is `fewer` 2 (PM2's convention).  Compared
    by value, so a reload can tell whether the setting changed.
    """

    fixed: int | None
    fewer: int = 0

    @classmethod
    def parse(cls, value: Any) -> WorkerCount:
        text = str(value).strip().lower()
        if text == "max":
            return cls(None)
        if re.fullmatch(r"-?\d+", text) and int(text) != 0:
            number = int(text)
            return cls(number) if number > 0 else cls(None, -number)
        raise ValueError("expected a positive integer, 'max', or -N for max minus N")

    def __str__(self) -> str:
        """As written on the command line: `4`, `max`, `-2`."""
        if self.fixed is not None:
            return str(self.fixed)
        return f"-{self.fewer}" if self.fewer else "max"

    def resolve(self, cpu_max_path: Path | None = None) -> tuple[int, str]:
        """The number of workers, and how it was arrived at (for the log)."""
        if self.fixed is not None:
            return self.fixed, "configured"
        available, how = max_workers(cpu_max_path)
        if not self.fewer:
            return available, f"max: {how}"
        count = max(1, available - self.fewer)
        return count, f"max-{self.fewer}: {how}, minus {self.fewer}, at least 1"
