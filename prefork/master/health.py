"""Health policies the master applies to live workers: the watchdog, exit descriptions.

The numbers:
- --timeout: a silent ready worker gets SIGABRT (faulthandler dumps its
  stacks) and SIGCONT (a stopped worker could not dump them otherwise),
  then SIGKILL ABORT_GRACE seconds later.
- Crash backoff and the `errored` state are per slot: see slots.py.
- --max-memory is enforced by each worker on itself: see worker/memory.py.
"""

from __future__ import annotations

import os
import signal
from typing import Final

import psutil

ABORT_GRACE: Final = 2.0


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


def memory_usage(process: psutil.Process, metric: str) -> int | None:
    """A worker's memory by `metric` (rss, uss, pss), for `prefork status`; None if gone."""
    try:
        if metric == "rss":
            return int(process.memory_info().rss)
        return int(getattr(process.memory_full_info(), metric))
    except psutil.Error:
        return None
