"""The machine's ceiling: N uvloop processes answering a fixed response.

    python benchmarks/bare.py --port 8000 --workers 2 [--import benchmarks.apps]

No HTTP parsing beyond counting request terminators, no framework, no
application call: whatever a Python server on uvloop adds on top of this is
its cost.  Each worker owns an SO_REUSEPORT socket on the same port (the
kernel spreads connections).  `--import` makes each worker import the
benchmark app module too, so its idle RSS is the reference for "a bare uvloop
process that imported the same app".

Only GET-style requests without a body are understood; that is all the
benchmark sends it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import socket
import sys
from typing import Final, cast

RESPONSE: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
)
# wrk treats an HTTP/1.1 response without `Connection: close` as keep-alive and
# counts the server's close as a read error, so the closing answer must say so.
RESPONSE_CLOSE: Final = RESPONSE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
END: Final = b"\r\n\r\n"


class FixedResponse(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buffer = self.buffer + data if self.buffer else data
        count = buffer.count(END)
        if not count:
            self.buffer = buffer
            return
        if b"Connection: close" in buffer or b"connection: close" in buffer:
            self.transport.write(RESPONSE * (count - 1) + RESPONSE_CLOSE)
            self.transport.close()
            return
        self.transport.write(RESPONSE * count)
        self.buffer = buffer[buffer.rfind(END) + len(END) :]


def _listener(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _serve(host: str, port: int, module: str | None) -> None:
    import uvloop

    if module:
        importlib.import_module(module)
    sock = _listener(host, port)
    sock.listen(2048)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(FixedResponse, sock=sock)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        async with server:
            await stop.wait()

    uvloop.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--import", dest="module", metavar="MODULE")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    children: list[int] = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _serve(args.host, args.port, args.module)
            except BaseException as exc:
                print(f"bare: worker failed: {exc!r}", file=sys.stderr)
                code = 1
            os._exit(code)
        children.append(pid)

    def forward(signum: int, frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        _, code = os.waitpid(child, 0)
        status = status or os.waitstatus_to_exitcode(code)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
