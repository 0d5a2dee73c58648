"""Control commands: what each one does to the master, and when its outcome is known.

`status` and `logs` are answered at once.  `reload`, `scale` and `stop` are answered at
once with what was started, unless the client asked to wait (`"wait": true`,
what `prefork reload|scale|stop` send by default); then the answer is the
outcome, sent when it is known:

reload   the reload run the request started (or, while one was running, the
         run queued after it) completed or failed; an upgrade (USR2, HUP with
         --preload) succeeded when the new master took over, which this master
         learns by being told to stop while the new one is alive
scale    the master has exactly the requested number of workers and every one
         is ready (for a scale-down: the retired workers have exited); a
         worker that dies before it was ever ready fails the wait, and so does
         another scale or a reload that changes the count
stop     the master is about to exit, every worker gone

Failures carry `"usage": true` when the request itself was wrong (the client
exits 2 for those, 1 for other failures).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefork.master.workers import WorkerState

if TYPE_CHECKING:
    from prefork.master.arbiter import Arbiter

Reply = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class _ReloadWait:
    attempt: int  # answered by the outcome of this reload attempt (or a later one)
    reply: Reply


@dataclass(slots=True)
class _ScaleWait:
    count: int
    reply: Reply


def _failed(error: str, *, usage: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"ok": False, "error": error}
    if usage:
        response["usage"] = True
    return response


class Commands:
    """The control socket's handler, with access to the arbiter's state."""

    def __init__(self, arbiter: Arbiter) -> None:
        self.arbiter = arbiter
        self.reload_waits: list[_ReloadWait] = []
        self.scale_waits: list[_ScaleWait] = []
        self.stop_waits: list[Reply] = []

    def handle(self, request: dict[str, Any], reply: Reply) -> None:
        arbiter = self.arbiter
        command = request.get("cmd")
        wait = request.get("wait") is True
        if command == "status":
            reply({"ok": True, **arbiter.status()})
        elif command == "reload":
            attempt = arbiter.reload_attempts + 1
            started = arbiter.request_reload("control socket")
            if not wait:
                reply({"ok": True, "result": started})
            elif arbiter.last_reload is not None and arbiter.last_reload_attempt >= attempt:
                reply(self._reload_outcome(arbiter.last_reload))  # failed before starting
            elif arbiter.stop_mode:
                reply(_failed("the master is stopping; reload ignored"))
            else:
                self.reload_waits.append(_ReloadWait(attempt, reply))
        elif command == "upgrade":
            reply({"ok": True, "result": arbiter.upgrade("control socket")})
        elif command == "logs":
            reply(self._logs(request))
        elif command == "stop":
            # Through the signal queue: the master stops after this wake-up's
            # callbacks, not in the middle of the control socket's own.
            arbiter.signals.append(signal.SIGTERM)
            if wait:
                self.stop_waits.append(reply)
            else:
                reply({"ok": True, "result": "stopping"})
        elif command == "scale":
            self._scale(request, reply, wait)
        else:
            reply(_failed(f"unknown command {command!r}", usage=True))

    def _scale(self, request: dict[str, Any], reply: Reply, wait: bool) -> None:
        arbiter = self.arbiter
        count = request.get("workers")
        if isinstance(count, bool) or not isinstance(count, int):
            reply(_failed("scale needs a worker count", usage=True))
            return
        new = arbiter.target + count if request.get("relative", False) else count
        if new < 1:
            reply(_failed("the worker count must stay >= 1", usage=True))
            return
        if arbiter.stop_mode:
            reply(_failed("the master is stopping; scale ignored"))
            return
        arbiter.scale(new)
        if wait:
            self.scale_waits.append(_ScaleWait(new, reply))
        else:
            reply({"ok": True, "result": f"scaling to {new} workers"})

    def _logs(self, request: dict[str, Any]) -> dict[str, Any]:
        lines, after, worker = (request.get(k, 0) for k in ("lines", "after", "worker"))
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lines, after)):
            return _failed("logs: lines and after must be integers", usage=True)
        source = f"worker {worker}" if "worker" in request else None
        ring = self.arbiter.ring
        entries = ring.tail(lines, after, source)
        return {
            "ok": True,
            "last": ring.next_seq - 1,
            "entries": [[e.seq, e.time, e.source, e.stream, e.text] for e in entries],
        }

    # -- outcomes, reported by the arbiter ---------------------------------------

    def reload_finished(self, attempt: int, result: dict[str, Any]) -> None:
        waiting = [w for w in self.reload_waits if w.attempt <= attempt]
        self.reload_waits = [w for w in self.reload_waits if w.attempt > attempt]
        for wait in waiting:
            wait.reply(self._reload_outcome(result))

    @staticmethod
    def _reload_outcome(result: dict[str, Any]) -> dict[str, Any]:
        if result["ok"]:
            return {"ok": True, "result": f"reloaded: {result['detail']}"}
        return _failed(f"reload failed: {result['detail']}")

    def worker_failed(self, reason: str) -> None:
        """A worker died before it was ever ready: a scale waiting for it failed."""
        waits, self.scale_waits = self.scale_waits, []
        for wait in waits:
            wait.reply(_failed(f"scaling to {wait.count} workers failed: {reason}"))

    def tick(self) -> None:
        """Answer the scale requests whose outcome is now known."""
        if not self.scale_waits:
            return
        arbiter = self.arbiter
        live = list(arbiter.workers.values())
        settled = arbiter.reload is None and all(
            w.state is WorkerState.READY and not w.retiring for w in live
        )
        pending: list[_ScaleWait] = []
        for wait in self.scale_waits:
            if arbiter.target != wait.count:
                wait.reply(
                    _failed(
                        f"superseded: the target is now {arbiter.target} workers, not {wait.count}"
                    )
                )
            elif settled and len(live) == wait.count:
                noun = "worker" if wait.count == 1 else "workers"
                wait.reply({"ok": True, "result": f"scaled to {wait.count} {noun}, all ready"})
            else:
                pending.append(wait)
        self.scale_waits = pending

    def stopping(self) -> None:
        """The master began to stop: only `stop` waits can still succeed."""
        upgrade = self.arbiter.upgrade_pid
        for reload_wait in self.reload_waits:
            if upgrade is not None:
                reload_wait.reply({"ok": True, "result": f"upgraded: new master (pid {upgrade})"})
            else:
                reload_wait.reply(_failed("the master is stopping; the reload did not finish"))
        self.reload_waits = []
        for scale_wait in self.scale_waits:
            scale_wait.reply(_failed("the master is stopping; scale abandoned"))
        self.scale_waits = []

    def stopped(self, exit_status: int) -> None:
        for reply in self.stop_waits:
            if exit_status == 0:
                reply({"ok": True, "result": "stopped"})
            else:
                reply(_failed(f"stopped with exit status {exit_status}"))
        self.stop_waits = []
