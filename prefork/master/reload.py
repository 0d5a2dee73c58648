"""Rolling reload bookkeeping (the policy itself runs in the arbiter's loop).

A reload is a run over the old workers, oldest first, keeping at most
--reload-batch replacements booting at once.  For each old worker the
arbiter forks a replacement of the new generation; only when that one says
`ready` is the old one told to drain, so serving capacity never drops below
the target.  The first replacement that fails (exits, or is not ready
within --boot-timeout) ends the run: booting replacements are killed, the
old workers not yet replaced keep serving, and the previous config and
generation are restored.  Replacements already ready stay (they passed).

Reload requests that arrive while a run is in progress are coalesced into a
single follow-up run, started when the current one ends: whatever the
number of HUPs, the last edit on disk is always picked up, and at most two
runs ever exist.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefork.config import Config
from prefork.master.workers import WorkerHandle, WorkerState

if TYPE_CHECKING:
    import ssl


@dataclass(slots=True)
class ReloadRun:
    generation: int
    reason: str  # what asked for it: "SIGHUP", "control socket"
    old_config: Config
    old_tls: ssl.SSLContext | None
    old_generation: int
    old_target: int
    queue: deque[WorkerHandle]  # old workers still to replace, oldest first
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    replaced: int = 0


def replacement_queue(workers: Iterable[WorkerHandle], generation: int) -> deque[WorkerHandle]:
    """Ready workers older than `generation`, oldest first (gunicorn's order)."""
    old = [
        w
        for w in workers
        if w.state is WorkerState.READY and w.generation < generation and not w.retiring
    ]
    return deque(sorted(old, key=lambda w: w.started))


def result(ok: bool, generation: int, detail: str, started: float) -> dict[str, Any]:
    """What `prefork status` shows as the last reload's outcome."""
    return {
        "ok": ok,
        "generation": generation,
        "detail": detail,
        "started": started,
        "finished": time.time(),
    }
