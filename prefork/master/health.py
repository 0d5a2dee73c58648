"""Health policies: respawn backoff, exit descriptions, memory sampling.

The numbers:
- A worker that dies within EARLY_DEATH seconds of being forked (or before
  it was ever ready) counts as a failure; consecutive failures back off
  exponentially from 0.5 s up to 30 s, so a broken deploy costs one fork
  every 30 s instead of a fork bomb.  The count resets once a worker
  forked after the last failure has stayed up for EARLY_DEATH seconds
  (becoming ready is not enough: an app may crash on its first request).
- --timeout: a silent ready worker gets SIGABRT (faulthandler dumps its
  stacks), then SIGKILL ABORT_GRACE seconds later.
- --max-memory: USS (memory unique to the process, so copy-on-write pages
  shared with the master and siblings are not counted against it) is
  sampled every MEMORY_INTERVAL; MEMORY_STRIKES samples in a row over the
  limit trigger a graceful replacement.
"""

from __future__ import annotations

import os
import signal
from typing import Final

import psutil

EARLY_DEATH: Final = 10.0
BACKOFF_FIRST: Final = 0.5
BACKOFF_MAX: Final = 30.0
ABORT_GRACE: Final = 2.0
MEMORY_INTERVAL: Final = 5.0
MEMORY_STRIKES: Final = 3
# Failures in a row after which `prefork status` calls the app errored.
ERRORED_AFTER: Final = 5


def respawn_delay(failures: int) -> float:
    """Seconds to wait before the next spawn after `failures` early deaths in a row."""
    if failures <= 1:
        return 0.0 if failures <= 0 else BACKOFF_FIRST
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1)))


def describe_exit(status: int) -> str:
    """A waitpid status as words: "exited with status 3", "was killed by SIGKILL"."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        text = f"was killed by {name}"
        if signum == signal.SIGKILL:
            text += ": out of memory?"
        return text
    code = os.waitstatus_to_exitcode(status)
    return f"exited with status {code}"


def exit_code(status: int) -> int | None:
    """The exit status, or None when the process died from a signal."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else None


def memory_usage(process: psutil.Process) -> int | None:
    """USS in bytes (RSS if USS is unavailable), or None if the process is gone."""
    try:
        return int(process.memory_full_info().uss)
    except psutil.AccessDenied:
        try:
            return int(process.memory_info().rss)
        except psutil.Error:
            return None
    except psutil.Error:
        return None
