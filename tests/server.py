"""Run the real `prefork` command for a test, and always clean it up.

Tests get servers from the fixtures in tests/conftest.py (`serve`,
`shared_server`), which are built on `run_server`:

    with run_server("tests.apps.proc_app:wsgi", "-w", "2") as server:
        httpx.get(server.url)

The master is started in its own session (process group), so cleanup can
kill it and every worker by group even if the master itself misbehaves.
Readiness is awaited from the master's log ("Ready: N workers serving"), never
by sleeping.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"Ready: \d+ workers? serving")
LISTENING = re.compile(r"Listening at: (?P<url>(?:https?://\S+)|(?:unix:\S+))")


@dataclass
class Server:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    _new_line: threading.Condition = field(default_factory=threading.Condition)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        """The first HTTP listener's base URL, e.g. http://127.0.0.1:41234."""
        return next(u for u in self.urls if u.startswith("http"))

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def worker_pids(self) -> set[int]:
        try:
            return {c.pid for c in psutil.Process(self.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def wait_for_log(
        self, pattern: str, timeout: float = 20.0, start: int = 0, *, past_exit: bool = False
    ) -> re.Match[str]:
        """Wait until a log line from index `start` on matches `pattern`.

        `past_exit` keeps waiting after this master exited: a master it
        upgraded to (USR2) writes to the same pipe.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = start
        with self._new_line:
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index])
                    index += 1
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                exited = not past_exit and self.proc.poll() is not None
                if remaining <= 0 or (exited and index >= len(self.lines)):
                    raise AssertionError(
                        f"no log line matched {pattern!r} within {timeout}s; log:\n{self.log}"
                    )
                self._new_line.wait(min(remaining, 0.2))

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._new_line:
                self.lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
        # EOF: every process holding the pipe has exited. Closing here (the only
        # reader) avoids a ResourceWarning, an error under filterwarnings=error.
        self.proc.stderr.close()
        with self._new_line:
            self._new_line.notify_all()


def prefork_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefork", *args]


def control(
    *args: str, env: dict[str, str] | None = None, cwd: Path | str = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real `prefork` command line to completion, free of the caller's PREFORK_* env."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFORK_") and k != "WEB_CONCURRENCY"
    }
    return subprocess.run(
        prefork_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        check=False,
    )


def runtime_env(tmp_path: Path) -> dict[str, str]:
    """An $XDG_RUNTIME_DIR of the test's own, so default control sockets stay in it."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    return {"XDG_RUNTIME_DIR": str(runtime)}


def start_server(
    app: str,
    *args: str,
    bind: Sequence[str] = ("127.0.0.1:0",),
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    ready_timeout: float = 30.0,
    command_prefix: Sequence[str] = (),
    pass_fds: Sequence[int] = (),
) -> Server:
    binds = [arg for b in bind for arg in ("-b", b)]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    full_env.pop("WEB_CONCURRENCY", None)
    full_env.update(env or {})
    proc = subprocess.Popen(
        [*command_prefix, *prefork_command(app, *binds, *args)],
        cwd=cwd or ROOT,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )
    server = Server(proc)
    threading.Thread(target=server._pump, daemon=True).start()
    if wait_ready:
        try:
            server.wait_for_log(READY.pattern, timeout=ready_timeout)
            server.urls = [m["url"] for line in server.lines if (m := LISTENING.search(line))]
        except BaseException:
            stop_server(server)
            raise
    return server


def stop_server(server: Server, timeout: float = 15.0) -> None:
    """Stop the master gracefully; kill the whole process group if it lingers."""
    pgid = server.pid
    if server.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(5)


@contextlib.contextmanager
def run_server(app: str, *args: str, **kwargs: object) -> Iterator[Server]:
    server = start_server(app, *args, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        stop_server(server)


class Serve:
    """Starts servers (run_server's arguments) that `stack` stops, most recent first."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack

    def __call__(self, app: str, *args: str, **kwargs: object) -> Server:
        return self._stack.enter_context(run_server(app, *args, **kwargs))


class SharedServers(Serve):
    """Like Serve, but one server per distinct (app, *args), reused until the module ends."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        super().__init__(stack)
        self._started: dict[tuple[str, ...], Server] = {}

    def __call__(self, app: str, *args: str, **kwargs: object) -> Server:
        if kwargs:
            raise TypeError("shared servers take command-line arguments only")
        key = (app, *args)
        if key not in self._started:
            self._started[key] = super().__call__(app, *args)
        return self._started[key]


def file_containing(path: Path, text: str, timeout: float = 15.0) -> str:
    """`path`'s content once it contains `text`, or whatever it holds after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text() if path.exists() else ""
        if text in content or time.monotonic() > deadline:
            return content
        time.sleep(0.05)
