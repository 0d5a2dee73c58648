"""The control socket's messages, as types: what a client asks, what the master answers.

The wire format (one JSON object per line each way) is described in
prefork/control/__init__.py and is a public interface: scripts talk to it.
These TypedDicts are that format, key for key; `parse_request` is the one
place a request is checked, so every command sees a well-formed request and
every malformed one gets the same kind of answer (`usage`: the client exits 2).

Requests (`"cmd"` names the command):

    {"cmd": "status"}
    {"cmd": "reload", "wait": bool}
    {"cmd": "scale", "workers": int, "relative": bool, "wait": bool}
    {"cmd": "stop", "wait": bool}
    {"cmd": "logs", "lines": int, "after": int, "worker": int}   (all but cmd optional)

Answers: `{"ok": true, "result": "one line"}`, `{"ok": false, "error": "one
line", "usage": true}` (usage only when the request itself was wrong), or for
`status` and `logs` the `Status` and `LogsAnswer` objects with `"ok": true`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NotRequired, TypedDict, TypeGuard


class StatusRequest(TypedDict):
    cmd: Literal["status"]


class ReloadRequest(TypedDict):
    cmd: Literal["reload"]
    wait: NotRequired[bool]  # answer with the outcome, not with what was started


class ScaleRequest(TypedDict):
    cmd: Literal["scale"]
    workers: int
    relative: NotRequired[bool]  # `workers` is a change (+N, -N), not a count
    wait: NotRequired[bool]


class StopRequest(TypedDict):
    cmd: Literal["stop"]
    wait: NotRequired[bool]


class LogsRequest(TypedDict):
    cmd: Literal["logs"]
    lines: NotRequired[int]  # the last N lines (0: all the ring holds)
    after: NotRequired[int]  # only lines with a higher sequence number (--follow)
    worker: NotRequired[int]  # only this slot's lines


Request = StatusRequest | ReloadRequest | ScaleRequest | StopRequest | LogsRequest


class Answer(TypedDict):
    """The answer to reload, scale and stop, and to any failed request."""

    ok: bool
    result: NotRequired[str]
    error: NotRequired[str]
    usage: NotRequired[bool]


class LastRestart(TypedDict):
    reason: str
    at: float  # wall clock


class SlotStatus(TypedDict):
    """A slot's restart history and crash-loop state (master/slots.py)."""

    restarts: int
    reasons: dict[str, int]
    last_restart: LastRestart | None
    failures: int
    errored: bool
    respawn_in: float


class WorkerStatus(SlotStatus):
    slot: int
    pid: int
    generation: int
    state: str  # "ready", "booting", "draining", with " (retiring)" while replaced
    age: float
    requests: int
    inflight: int
    connections: int
    websockets: int
    rss: int
    memory: int  # by `memory_metric`
    cpu: float


class IdleSlotStatus(SlotStatus):
    """A slot with no live worker: errored, or waiting out its crash backoff."""

    slot: int


class ReloadResult(TypedDict):
    ok: bool
    generation: int
    detail: str
    started: float  # wall clock
    finished: float


MasterState = Literal["starting", "running", "reloading", "errored", "stopping"]


class Status(TypedDict):
    ok: Literal[True]
    pid: int
    name: str | None
    app: str
    version: str
    uptime: float
    generation: int
    target: int
    scaled: bool  # the target was set at runtime (scale, TTIN/TTOU)
    state: MasterState
    listeners: list[str]
    balance: str
    reloading: bool
    last_reload: ReloadResult | None
    memory_metric: str
    max_memory: int
    workers: list[WorkerStatus]
    idle_slots: list[IdleSlotStatus]


# One line of the log ring: [seq, time, source, stream, text] (master/output.py).
LogEntry = tuple[int, float, str, str, str]


class LogsAnswer(TypedDict):
    ok: Literal[True]
    last: int  # the newest sequence number the ring has handed out
    entries: list[LogEntry]


Response = Answer | Status | LogsAnswer
# How the master answers one request: at once, or later (a waiting reload).
Reply = Callable[[Response], None]


class BadRequest(ValueError):
    """The request is malformed; the message is the answer's `error`."""


def parse_request(raw: dict[str, object]) -> Request:
    """Check a decoded request line; raises BadRequest with the reason."""
    command = raw.get("cmd")
    wait = raw.get("wait") is True  # anything else: answer at once (as always)
    if command == "status":
        return StatusRequest(cmd="status")
    if command == "reload":
        return ReloadRequest(cmd="reload", wait=wait)
    if command == "stop":
        return StopRequest(cmd="stop", wait=wait)
    if command == "scale":
        count = raw.get("workers")
        relative = bool(raw.get("relative", False))
        if not _is_int(count):
            raise BadRequest("scale needs a worker count")
        return ScaleRequest(cmd="scale", workers=count, relative=relative, wait=wait)
    if command == "logs":
        lines, after, worker = raw.get("lines", 0), raw.get("after", 0), raw.get("worker")
        if not (_is_int(lines) and _is_int(after)):
            raise BadRequest("logs: lines and after must be integers")
        request = LogsRequest(cmd="logs", lines=lines, after=after)
        if worker is not None:
            if not _is_int(worker):
                raise BadRequest("logs: worker must be a slot number")
            request["worker"] = worker
        return request
    raise BadRequest(f"unknown command {command!r}")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
