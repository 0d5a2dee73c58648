"""Keep-alive load for the tests that replace workers under traffic (reload, rebalancing).

`KeepAliveLoad` runs client threads, each on its own keep-alive connection
(httpx reconnects by itself after a `Connection: close`), sending requests
until stopped.  Every failure is kept as one line, so a test can assert
there was none: a transport error, or whatever `accept` refuses.  A
subclass overrides `accept` to check (and record) each response.

Transport errors on a connection's first request are also listed apart
(`new_connection_failures`): they are what `--reuse-port` may lose when a
retiring worker closes its own socket with connections still queued on it
(docs/operations.md), while an error on a kept-alive connection never is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Self

import httpx

# How one client sends one request on its connection.
Send = Callable[[httpx.Client], httpx.Response]


class KeepAliveLoad:
    def __init__(
        self, url: str, clients: int, send: Send | None = None, *, pace: float = 0.0
    ) -> None:
        self.url = url
        self.send = send or (lambda client: client.get(url + "/"))
        self.pace = pace  # seconds each client waits between requests
        self.ok = 0
        self.reconnects = 0  # responses with `Connection: close`
        self.failures: list[str] = []
        self.new_connection_failures: list[str] = []  # a subset of failures
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def accept(self, sent: float, response: httpx.Response) -> str | None:
        """Check one response (under `lock`); a failure's description, or None."""
        return None if response.status_code == 200 else f"status {response.status_code}"

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            new_connection = True  # httpx connects for the first request and after a close
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    response = self.send(client)
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                        if new_connection:
                            self.new_connection_failures.append(self.failures[-1])
                    new_connection = True
                    continue
                closed = response.headers.get("connection", "").lower() == "close"
                new_connection = closed
                with self.lock:
                    failure = self.accept(sent, response)
                    if failure is not None:
                        self.failures.append(failure)
                        continue
                    self.ok += 1
                    self.reconnects += closed
                if self.pace:
                    self.stop.wait(self.pace)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` more requests succeeded."""
        deadline = time.monotonic() + timeout
        target = self.ok + count
        while self.ok < target:
            assert time.monotonic() < deadline, f"load stalled; failures: {self.failures[:5]}"
            time.sleep(0.02)

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
