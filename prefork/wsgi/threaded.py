"""WSGI on a pool of threads per worker (`--threads N`, N > 1).

The event loop thread keeps parsing and writing; the app runs on a pool
thread.  The request body streams to the app through `ThreadedInput`
(bounded: reading from the socket pauses past the high-water mark), and
`Expect: 100-continue` is answered only when the app first reads.  Every
write goes through the loop thread and waits until the socket has drained,
so a slow client slows the app instead of filling memory.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from prefork.http.exchange import BODY_HIGH_WATER
from prefork.http.response import CHUNKED, CHUNKED_END, CONTINUE_100
from prefork.wsgi.exchange import WSGIAdapter, WSGIExchange, close_iterable

if TYPE_CHECKING:
    from prefork.http.connection import HttpConnection


def start_pool(threads: int) -> ThreadPoolExecutor:
    """The threads the apps of this worker run on (`WSGIAdapter.pool`)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="prefork-wsgi")


class ThreadedInput:
    """wsgi.input fed by the loop thread, read by the app's thread."""

    def __init__(self, exchange: ThreadedWSGIExchange) -> None:
        self.exchange = exchange
        self.buffer = bytearray()
        self.complete = False
        self.closed = False
        # Bytes the app is blocked waiting for: reading from the socket must not
        # pause below this, or the app would wait forever.
        self.wanted = 0
        self.cond = threading.Condition()
        self.asked_continue = False

    # -- loop thread ---------------------------------------------------------
    def feed(self, data: bytes) -> int:
        with self.cond:
            self.buffer += data
            self.cond.notify_all()
            return len(self.buffer)

    def finish(self, closed: bool = False) -> None:
        with self.cond:
            self.complete = True
            self.closed = self.closed or closed
            self.cond.notify_all()

    # -- app thread ----------------------------------------------------------
    def _fill(self, wanted: int) -> None:
        """Block until `wanted` bytes are buffered (-1: all of them) or the body ended."""
        exchange = self.exchange
        if not self.asked_continue and exchange.expect_continue:
            self.asked_continue = True
            exchange.call_soon(exchange.conn.transport.write, CONTINUE_100)
        with self.cond:
            if self.complete or 0 <= wanted <= len(self.buffer):
                return
            self.wanted = sys.maxsize if wanted < 0 else wanted
            exchange.call_soon(exchange.conn.resume_body)
            while not self.complete and (wanted < 0 or len(self.buffer) < wanted):
                self.cond.wait()
            self.wanted = 0

    def _take(self, size: int) -> bytes:
        with self.cond:
            if size < 0 or size >= len(self.buffer):
                data = bytes(self.buffer)
                self.buffer.clear()
            else:
                data = bytes(self.buffer[:size])
                del self.buffer[:size]
            left = len(self.buffer)
        if left < BODY_HIGH_WATER:
            # Resume only once the app has caught up: resuming after every read
            # would let each socket read (up to 256 KiB) outpace a 64 KiB read(n).
            self.exchange.call_soon(self.exchange.conn.resume_body)
        return data

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        self._fill(size)
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        while True:
            with self.cond:
                end = self._line_end(size)
            if end >= 0:
                return self._take(end)
            self._fill(len(self.buffer) + 1)

    def _line_end(self, size: int) -> int:
        """Where the next line (at most `size` bytes) ends in the buffer, or -1 if not in yet."""
        newline = self.buffer.find(b"\n")
        if newline < 0 and not self.complete and not 0 <= size <= len(self.buffer):
            return -1
        end = newline + 1 if newline >= 0 else len(self.buffer)
        return min(end, size) if size >= 0 else end

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> ThreadedInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class ThreadedWSGIExchange(WSGIExchange):
    """A WSGI request whose app runs on a pool thread while the body streams to it."""

    def __init__(
        self,
        conn: HttpConnection,
        method: bytes,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
    ) -> None:
        # Spelled out: mypyc passes `*args` through super().__init__ as one tuple.
        super().__init__(conn, method, target, version, headers, keep_alive)
        self.input = ThreadedInput(self)

    def call_soon(self, callback: Any, *args: Any) -> None:
        self.conn.state.loop.call_soon_threadsafe(callback, *args)

    # -- loop thread ---------------------------------------------------------
    def start(self) -> None:
        adapter: WSGIAdapter = self.conn.state.adapter
        if adapter.access_log.enabled:
            self.start_time = time.time()
        if self.body_complete:
            self.input.finish()
        assert adapter.pool is not None, "the worker starts the pool with the server"
        adapter.pool.submit(self._run)

    def time_out(self, age: float) -> None:
        # A thread cannot be interrupted: it runs on, and what it still sends
        # is dropped (`closed`); its pool thread stays busy until it returns.
        # A head built on the app thread but not yet written counts as begun.
        self.answered_504 = self.answer_timeout(age, response_begun=self.head_sent)
        self.disconnected()

    def feed_body(self, data: bytes) -> None:
        buffered = self.input.feed(data)
        if buffered >= self.input.wanted:
            self.conn.pause_body(buffered)

    def body_done(self) -> None:
        self.input.finish()

    def disconnected(self) -> None:
        self.closed = True
        self.input.finish(closed=True)

    async def _write(self, data: bytes) -> None:
        if data and not self.closed:
            self.conn.transport.write(data)
            await self.conn.drain()

    def _done(self, failure: bytes | None, broken: bool) -> None:
        """Back on the loop thread: the app is finished with this request."""
        if failure is not None and not self.closed:
            self.conn.transport.write(failure)
        elif broken:
            self.conn.close()  # the response was under way: its framing is lost
        if self.answered_504:
            self.status = 504  # not what the late app thread chose
        access_log = self.conn.state.adapter.access_log
        if access_log.enabled:
            self.log_access(access_log)
        self.conn.exchange_done(self)

    # -- app thread ----------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self.closed:
            return
        future = asyncio.run_coroutine_threadsafe(self._write(data), self.conn.state.loop)
        future.result()

    def write(self, data: bytes) -> None:
        if not self.head_sent:
            self._send(self.head(-1))
        if data:
            wire = self.body_bytes(data)
            if wire:
                self._send(wire)

    def _run(self) -> None:
        result: Iterable[bytes] | None = None
        failure: bytes | None = None
        broken = False
        try:
            result = self.conn.state.adapter.app(self.environ(self.input), self.start_response)
            if type(result) is list and not self.head_sent:
                body = b"".join(result)
                head = self.head(len(body))
                self._send(head + self.body_bytes(body))
            else:
                for data in result:
                    if self.closed:
                        break
                    self.write(data)
                if not self.head_sent:
                    self._send(self.head(0))
                elif self.framing is CHUNKED:
                    self._send(CHUNKED_END)
        except Exception as exc:
            failure = self.failed(exc)
            broken = failure is None
        finally:
            close_iterable(result)
            self.call_soon(self._done, failure, broken)
