"""Worker output through the master: whole lines to the right sink, and a ring for `prefork logs`.

Theory of operation
-------------------
Each worker's standard output and standard error are pipes whose read ends
the master's selector watches (`OutputPipe`).  The master writes every
complete line on: a worker's stderr (its error log, tracebacks, faulthandler
dumps) to the error log sink, its stdout (what the app prints) to the
master's stdout, or to the error log with `--capture-output`.  So the master
owns the sinks: a worker's lines reach `--error-logfile` even though only the
master holds it open, lines from several workers interleave whole, and
every line, with the master's own, also lands in a `LogRing`, the bounded
memory that `prefork logs` and `prefork top` read.

The access log is not captured: `--access-logfile -` keeps writing to the
original stdout from the worker (a copy of it is inherited as
`WorkerOutput.in_child`), so the busiest log never crosses a process.

A line longer than `MAX_LINE` is written in pieces; a worker that writes
faster than the master forwards blocks on its pipe (64 KiB of buffer), as it
would on a slow terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

RING_LINES: Final = 2000  # PM2 keeps files; 2,000 lines is about 200 KiB of memory
MAX_LINE: Final = 65536


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of the master's or a worker's output, as `prefork logs` shows it."""

    seq: int  # increases by one per line, for `prefork logs --follow`
    time: float
    source: str  # "master", "worker 0"
    stream: str  # "log", "stdout", "stderr"
    text: str


@dataclass
class LogRing:
    """The last RING_LINES lines of every source, numbered for `prefork logs --follow`."""

    lines: deque[LogLine] = field(default_factory=lambda: deque(maxlen=RING_LINES))
    next_seq: int = 1

    def add(self, source: str, stream: str, text: str) -> None:
        self.lines.append(LogLine(self.next_seq, time.time(), source, stream, text))
        self.next_seq += 1

    def tail(self, count: int, after: int = 0, source: str | None = None) -> list[LogLine]:
        """The last `count` lines with a seq above `after`, of `source` if given."""
        picked = [
            line
            for line in self.lines
            if line.seq > after and (source is None or line.source == source)
        ]
        return picked[-count:] if count > 0 else picked


class RingHandler(logging.Handler):
    """Copies the master's own log records into the ring, formatted like the sink's."""

    def __init__(self, ring: LogRing, formatter: logging.Formatter | None) -> None:
        super().__init__()
        self.ring = ring
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.ring.add("master", "log", self.format(record))


class OutputPipe:
    """The read end of one worker stream; `on_readable` forwards what arrived."""

    def __init__(
        self, fd: int, source: str, stream: str, ring: LogRing, sink: Callable[[], int]
    ) -> None:
        self.fd = fd
        self.source = source
        self.stream = stream
        self.ring = ring
        self.sink = sink  # the descriptor to write to, asked per write (USR1 reopens)
        self.partial = b""
        os.set_blocking(fd, False)

    def on_readable(self) -> bool:
        """Forward complete lines; False once the worker's end is closed (EOF)."""
        chunks = [self.partial]
        eof = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                eof = True
                break
            if not data:
                eof = True
                break
            chunks.append(data)
        buffered = b"".join(chunks)
        cut = buffered.rfind(b"\n") + 1
        if eof or (cut == 0 and len(buffered) >= MAX_LINE):
            cut = len(buffered)
        complete, self.partial = buffered[:cut], buffered[cut:]
        if complete:
            self._forward(complete if complete.endswith(b"\n") else complete + b"\n")
        return not eof

    def _forward(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # a closed stdout must not stop the master
            fd = self.sink()
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        for line in data.decode("utf-8", "replace").splitlines():
            self.ring.add(self.source, self.stream, line)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass
class WorkerOutput:
    """The pipes of one worker being spawned: the child's ends and the master's."""

    stdout_r: int
    stdout_w: int
    stderr_r: int
    stderr_w: int

    @classmethod
    def create(cls) -> WorkerOutput:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        return cls(out_r, out_w, err_r, err_w)

    def in_child(self) -> int:
        """Point fds 1 and 2 at the pipes; returns a descriptor of the original stdout."""
        os.close(self.stdout_r)
        os.close(self.stderr_r)
        original = os.dup(1)
        os.set_inheritable(original, False)
        os.dup2(self.stdout_w, 1)
        os.dup2(self.stderr_w, 2)
        os.close(self.stdout_w)
        os.close(self.stderr_w)
        return original

    def in_master(self) -> None:
        os.close(self.stdout_w)
        os.close(self.stderr_w)
