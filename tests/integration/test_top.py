"""`prefork top` on a real pseudo-terminal: `q` and Ctrl-C quit, nothing wraps."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.server import ROOT, run_server

WSGI = "tests.apps.proc_app:wsgi"
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
REDRAW = "\x1b[H\x1b[J"


class Terminal:
    """`prefork top` running on a pty of the given size; reads what it draws."""

    def __init__(self, args: list[str], columns: int, rows: int) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal
            try:
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                os.execve(sys.executable, [sys.executable, "-m", "prefork", *args], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.output = ""

    def _read(self, timeout: float) -> bool:
        """Read what comes within `timeout`; False if nothing did, or the terminal closed."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child exited and the terminal is closed
            return False
        self.output += data.decode(errors="replace")
        return True

    def read_until(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.output):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the screen never got there: {self.output[-2000:]!r}"
            self._read(remaining)

    def frames(self) -> list[list[str]]:
        """Complete frames, each as the lines it shows (escape sequences removed)."""
        parts = self.output.split(REDRAW)[1:-1]  # the last one may be half-written
        return [ESCAPE.sub("", part).split("\r\n")[:-1] for part in parts]

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def exit_status(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(5.0):  # what it wrote last, until the terminal closes
                    pass
                return os.waitstatus_to_exitcode(status)
            assert time.monotonic() < deadline, "prefork top did not quit"
            self._read(0.05)

    def close(self) -> None:
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if not pid:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.fd)


@pytest.mark.parametrize(("key", "columns"), [(b"q", 100), (b"\x03", 60)], ids=["q", "ctrl-c"])
def test_top_quits_on_a_key_and_never_wraps(tmp_path: Path, key: bytes, columns: int) -> None:
    sock = tmp_path / "ctl.sock"  # the title line, with this path, is over 100 columns
    with run_server(WSGI, "-w", "3", "--name", "web", "--control-socket", str(sock)):
        terminal = Terminal(["top", "--socket", str(sock), "--interval", "0.2"], columns, 40)
        try:
            terminal.read_until(lambda out: out.count(REDRAW) >= 3)
            frames = terminal.frames()
            assert frames
            for lines in frames:
                assert lines[0].startswith("prefork top - ")
                assert any(line.startswith("SLOT") for line in lines)
                assert max(len(line) for line in lines) <= columns, lines
            assert max(len(line) for line in frames[-1]) == columns  # the title was cut
            terminal.type(key)
            assert terminal.exit_status() == 0
            assert terminal.output.endswith("\x1b[?25h\x1b[?1049l")  # the screen is given back
        finally:
            terminal.close()


def test_top_shows_the_log_of_every_source_or_of_the_worker_typed(tmp_path: Path) -> None:
    sock = tmp_path / "ctl.sock"
    with run_server("tests.apps.printing:app", "-w", "2", "--control-socket", str(sock)) as server:
        for _ in range(4):
            assert httpx.get(server.url + "/hello", timeout=10).status_code == 200
        server.wait_for_log("err: /hello")
        terminal = Terminal(["top", "--socket", str(sock), "--interval", "0.2"], 120, 40)
        try:
            terminal.read_until(lambda out: "--- log: all sources" in out)
            terminal.read_until(lambda out: out.count(REDRAW) >= 2)
            every = _log_lines(terminal.frames()[-1])
            assert any(line.startswith("   master | ") for line in every), every
            assert any("err: /hello" in line for line in every), every

            terminal.type(b"0")
            terminal.read_until(lambda out: "--- log: worker 0" in out.rsplit(REDRAW, 2)[-2])
            one = _log_lines(terminal.frames()[-1])
            assert one and all(line.startswith(" worker 0 | ") for line in one), one

            terminal.type(b"a")
            terminal.read_until(lambda out: "--- log: all sources" in out.rsplit(REDRAW, 2)[-2])
            terminal.type(b"q")
            assert terminal.exit_status() == 0
        finally:
            terminal.close()


def _log_lines(frame: list[str]) -> list[str]:
    """The lines under the log pane's title in one frame."""
    start = next(i for i, line in enumerate(frame) if line.startswith("--- log: "))
    return frame[start + 1 :]
