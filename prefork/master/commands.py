"""Control commands: what each one does to the master, and when its outcome is known.

Each request is checked by control/protocol.py's `parse_request` first.
`status` and `logs` are answered at once.  `reload`, `scale` and `stop` are
answered at once with what was started, unless the client asked to wait
(`"wait": true`, what `prefork reload|scale|stop` send by default); then the
answer is the outcome, sent when it is known:

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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prefork.control.protocol import (
    Answer,
    BadRequest,
    LogsAnswer,
    LogsRequest,
    ReloadResult,
    Reply,
    ScaleRequest,
    parse_request,
)
from prefork.master import status
from prefork.master.workers import WorkerState

if TYPE_CHECKING:
    from prefork.master.arbiter import Arbiter


@dataclass(slots=True)
class _ReloadWait:
    attempt: int  # answered by the outcome of this reload attempt (or a later one)
    reply: Reply


@dataclass(slots=True)
class _ScaleWait:
    count: int
    reply: Reply


def failed(error: str, *, usage: bool = False) -> Answer:
    """A failure answer; `usage`: the request itself was wrong."""
    answer = Answer(ok=False, error=error)
    if usage:
        answer["usage"] = True
    return answer


def done(result: str) -> Answer:
    """A success answer: one line saying what was started or what came of it."""
    return Answer(ok=True, result=result)


class Commands:
    """The control socket's handler, with access to the arbiter's state.

    Answers each request at once or keeps its `Reply` until the outcome is
    known; the arbiter reports outcomes through the methods at the end.
    """

    def __init__(self, arbiter: Arbiter) -> None:
        self.arbiter = arbiter
        self.reload_waits: list[_ReloadWait] = []
        self.scale_waits: list[_ScaleWait] = []
        self.stop_waits: list[Reply] = []

    def handle(self, raw: dict[str, object], reply: Reply) -> None:
        try:
            request = parse_request(raw)
        except BadRequest as exc:
            reply(failed(str(exc), usage=True))
            return
        arbiter = self.arbiter
        wait = request.get("wait", False)
        if request["cmd"] == "status":
            reply(status.status(arbiter))
        elif request["cmd"] == "reload":
            reloads = arbiter.reloads
            attempt = reloads.attempts + 1
            started = reloads.request("control socket")
            if not wait:
                reply(done(started))
            elif reloads.last is not None and reloads.last_recorded >= attempt:
                reply(self._reload_outcome(reloads.last))  # failed before starting
            elif arbiter.stop_mode:
                reply(failed("the master is stopping; reload ignored"))
            else:
                self.reload_waits.append(_ReloadWait(attempt, reply))
        elif request["cmd"] == "logs":
            reply(self._logs(request))
        elif request["cmd"] == "stop":
            # Through the signal queue: the master stops after this wake-up's
            # callbacks, not in the middle of the control socket's own.
            arbiter.signals.append(signal.SIGTERM)
            if wait:
                self.stop_waits.append(reply)
            else:
                reply(done("stopping"))
        else:
            self._scale(request, reply)

    def _scale(self, request: ScaleRequest, reply: Reply) -> None:
        arbiter = self.arbiter
        count = request["workers"]
        new = arbiter.target + count if request.get("relative", False) else count
        if new < 1:
            reply(failed("the worker count must stay >= 1", usage=True))
            return
        if arbiter.stop_mode:
            reply(failed("the master is stopping; scale ignored"))
            return
        arbiter.scale(new)
        if request.get("wait", False):
            self.scale_waits.append(_ScaleWait(new, reply))
        else:
            reply(done(f"scaling to {new} workers"))

    def _logs(self, request: LogsRequest) -> LogsAnswer:
        worker = request.get("worker")
        source = None if worker is None else f"worker {worker}"
        ring = self.arbiter.ring
        entries = ring.tail(request.get("lines", 0), request.get("after", 0), source)
        return LogsAnswer(
            ok=True,
            last=ring.next_seq - 1,
            entries=[(e.seq, e.time, e.source, e.stream, e.text) for e in entries],
        )

    # -- outcomes, reported by the arbiter ---------------------------------------

    def reload_finished(self, attempt: int, result: ReloadResult) -> None:
        waiting = [w for w in self.reload_waits if w.attempt <= attempt]
        self.reload_waits = [w for w in self.reload_waits if w.attempt > attempt]
        for wait in waiting:
            wait.reply(self._reload_outcome(result))

    @staticmethod
    def _reload_outcome(result: ReloadResult) -> Answer:
        if result["ok"]:
            return done(f"reloaded: {result['detail']}")
        return failed(f"reload failed: {result['detail']}")

    def worker_failed(self, reason: str) -> None:
        """A worker died before it was ever ready: a scale waiting for it failed."""
        waits, self.scale_waits = self.scale_waits, []
        for wait in waits:
            wait.reply(failed(f"scaling to {wait.count} workers failed: {reason}"))

    def tick(self) -> None:
        """Answer the scale requests whose outcome is now known."""
        if not self.scale_waits:
            return
        arbiter = self.arbiter
        live = list(arbiter.workers.values())
        settled = arbiter.reloads.run is None and all(
            w.state is WorkerState.READY and not w.retiring for w in live
        )
        pending: list[_ScaleWait] = []
        for wait in self.scale_waits:
            if arbiter.target != wait.count:
                wait.reply(
                    failed(
                        f"superseded: the target is now {arbiter.target} workers, not {wait.count}"
                    )
                )
            elif settled and len(live) == wait.count:
                noun = "worker" if wait.count == 1 else "workers"
                wait.reply(done(f"scaled to {wait.count} {noun}, all ready"))
            else:
                pending.append(wait)
        self.scale_waits = pending

    def stopping(self) -> None:
        """The master began to stop: only `stop` waits can still succeed."""
        upgrade = self.arbiter.upgrade.pid
        for reload_wait in self.reload_waits:
            if upgrade is not None:
                reload_wait.reply(done(f"upgraded: new master (pid {upgrade})"))
            else:
                reload_wait.reply(failed("the master is stopping; the reload did not finish"))
        self.reload_waits = []
        for scale_wait in self.scale_waits:
            scale_wait.reply(failed("the master is stopping; scale abandoned"))
        self.scale_waits = []

    def stopped(self, exit_status: int) -> None:
        for reply in self.stop_waits:
            if exit_status == 0:
                reply(done("stopped"))
            else:
                reply(failed(f"stopped with exit status {exit_status}"))
        self.stop_waits = []
