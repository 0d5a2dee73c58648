"""WSGI on the worker's event loop thread (`--threads 1`, the default).

The app is called directly from the connection's callback once the whole
request body has arrived: no thread hand-off, no task, which is what makes
this the fastest mode (see docs/benchmarks.md).  The price, as with
gunicorn's sync worker, is that one slow request delays the worker's other
connections; `--threads N` moves the app to a thread pool instead.

The body is collected before the app runs, in memory up to SPOOL_SIZE and in
a temporary file beyond (so a large upload costs disk, not RAM), bounded by
--limit-request-body.  `Expect: 100-continue` is therefore answered by the
connection as soon as the headers are accepted (Exchange.streams_body).

If the client reads slower than the app produces, the rest of the iterable is
consumed by a task that waits for the socket to drain between chunks, so a
large or endless response never piles up in memory.  The same task takes
over when streaming has held the loop for STREAM_SLICE, and gives the loop
a turn between chunks from then on.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import Iterable, Iterator
from typing import IO, Final

from prefork.http.response import CHUNKED, CHUNKED_END, IDENTITY
from prefork.wsgi.exchange import WSGIAdapter, WSGIExchange, close_iterable
from prefork.wsgi.file_wrapper import FileWrapper

# Bodies up to this size stay in memory (werkzeug's form parser spools at 500 KiB).
SPOOL_SIZE: Final = 1024 * 1024
# A streamed response gives the event loop a turn after this long, so an app
# that makes progress (yields a chunk) keeps the heartbeat going: --timeout
# only catches a single call into the app that blocks (see docs/operations.md).
STREAM_SLICE: Final = 0.1


class InlineWSGIExchange(WSGIExchange):
    """A WSGI request whose app runs on the loop thread, once the whole body is in."""

    streams_body = False

    body: list[bytes] | None = None
    body_len = 0
    spool: IO[bytes] | None = None

    def feed_body(self, data: bytes) -> None:
        spool = self.spool
        if spool is not None:
            spool.write(data)
            return
        if self.body is None:
            self.body = []
        self.body.append(data)
        self.body_len += len(data)
        if self.body_len > SPOOL_SIZE:
            # Imported here: tempfile brings shutil, bz2 and lzma (0.4 MiB
            # of an idle worker's RSS), and most apps never see such a body.
            import tempfile

            spool = self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _finish
            spool.writelines(self.body)
            self.body = []

    def body_done(self) -> None:
        pass

    def disconnected(self) -> None:
        self.closed = True

    def time_out(self, age: float) -> None:
        # The sweep only runs while the app is not being called: either the
        # body is still arriving, or a task is streaming the response
        # between calls to the iterable.  A call that blocks the loop is
        # --timeout's to catch (the watchdog), not this.
        self.answer_timeout(age, response_begun=self.head_sent)
        self.closed = True

    def _input(self) -> IO[bytes]:
        spool = self.spool
        if spool is not None:
            spool.seek(0)
            return spool
        body = self.body
        if body is None:
            return io.BytesIO()
        return io.BytesIO(body[0] if len(body) == 1 else b"".join(body))

    def start(self) -> None:
        adapter: WSGIAdapter = self.conn.state.adapter
        if adapter.access_log.enabled:
            self.start_time = time.time()
        result: Iterable[bytes] | None = None
        try:
            result = adapter.app(self.environ(self._input()), self.start_response)
            if type(result) is list and not self.head_sent:
                # What most frameworks return: one write, with a Content-Length.
                self._send_whole(result[0] if len(result) == 1 else b"".join(result))
            elif not self._respond(result):
                return  # a task carries on writing, and finishes the exchange
        except Exception as exc:
            data = self.failed(exc)
            if data is None:
                self.conn.close()
            else:
                self.conn.transport.write(data)
        self._finish(result)

    def _finish(self, result: Iterable[bytes] | None) -> None:
        if type(result) is not list:
            close_iterable(result)
        if self.spool is not None:
            self.spool.close()
        access_log = self.conn.state.adapter.access_log
        if access_log.enabled:
            self.log_access(access_log)
        self.conn.exchange_done(self)

    def write(self, data: bytes) -> None:
        """PEP 3333's write() callable: data goes out at once, before the iterable."""
        if not self.head_sent:
            self.conn.transport.write(self.head(-1))
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        if data and not self.closed:
            wire = self.body_bytes(data)
            if wire:
                self.conn.transport.write(wire)

    def _send_whole(self, body: bytes) -> None:
        head = self.head(len(body))
        if self.framing is IDENTITY:  # the common case, without a call
            self.body_sent = len(body)
            self.conn.transport.write(head + body)
        else:
            self.conn.transport.write(head + self.body_bytes(body))

    def _end(self) -> None:
        if self.framing is CHUNKED and not self.closed:
            self.conn.transport.write(CHUNKED_END)

    def _respond(self, result: Iterable[bytes]) -> bool:
        """Send the response; False if a task was left to finish it."""
        if not self.head_sent:
            if isinstance(result, FileWrapper):
                done = self._sendfile(result)
                if done is not None:
                    return done
            iterator = iter(result)
            first = next(iterator, None)
            if first is None:
                self._send_whole(b"")
                return True
            self.committed = bool(first)
            second = next(iterator, None)
            if second is None:
                self._send_whole(first)
                return True
            self.conn.transport.write(self.head(-1))
            self._emit(first)
            self._emit(second)
        else:
            iterator = iter(result)
        return self._stream(iterator, result)

    def _stream(self, iterator: Iterator[bytes], result: Iterable[bytes]) -> bool:
        conn = self.conn
        yield_at = time.monotonic() + STREAM_SLICE
        for data in iterator:
            self._emit(data)
            if conn.write_paused or time.monotonic() > yield_at:
                conn.state.loop.create_task(self._stream_later(iterator, result))
                return False
        self._end()
        return True

    async def _stream_later(self, iterator: Iterator[bytes], result: Iterable[bytes]) -> None:
        conn = self.conn
        try:
            await conn.drain()
            yield_at = time.monotonic() + STREAM_SLICE
            for data in iterator:
                if self.closed:
                    break
                self._emit(data)
                if conn.write_paused:
                    await conn.drain()
                    yield_at = time.monotonic() + STREAM_SLICE
                elif time.monotonic() > yield_at:
                    await asyncio.sleep(0)
                    yield_at = time.monotonic() + STREAM_SLICE
            else:
                self._end()
        except Exception as exc:
            self.failed(exc)
            conn.close()
        finally:
            self._finish(result)

    def _sendfile(self, wrapper: FileWrapper) -> bool | None:
        """Send a plain file with sendfile(2) while the socket takes it.

        None: not a plain file, iterate it instead; otherwise as `_respond`.
        """
        fd = wrapper.fileno()
        sock = self.conn.transport.get_extra_info("socket")
        if fd is None or sock is None or self.conn.state.adapter.secure:
            return None
        try:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            size = os.fstat(fd).st_size - offset
        except OSError:
            return None
        if size <= 0:
            return None
        self.conn.transport.write(self.head(size))
        if self.framing is not IDENTITY:
            return True  # HEAD, or a status without a body
        transport = self.conn.transport
        out = sock.fileno()
        sent = 0
        # Only while nothing is queued in the transport may we write to the
        # socket directly; otherwise bytes would leave out of order.
        while sent < size and transport.get_write_buffer_size() == 0:
            try:
                n = os.sendfile(out, fd, offset + sent, size - sent)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.conn.close()
                return True
            if n == 0:
                break
            sent += n
        self.body_sent = sent
        if sent < size:
            os.lseek(fd, offset + sent, os.SEEK_SET)
            return self._stream(iter(wrapper), wrapper)
        return True
