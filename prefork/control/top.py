"""`prefork top`: the status table and the latest log lines, redrawn every --interval seconds.

On a terminal it behaves like top(1): the alternate screen, `q` (or Ctrl-C)
quits, and every line is cut to the terminal's width (read again for each
frame, so a resized window is followed) so nothing wraps and the frame
never scrolls.  Below the table, the rows left show the newest lines of the
master's ring (`prefork logs`): of every source, or of one worker after its
slot number is typed (`a` goes back to all), as `pm2 monit` shows the
selected process's output.  Piped, it writes the frames as they are (with
the last LOG_LINES_PIPED lines) until interrupted.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator
from typing import Final

from prefork.control.display import format_status
from prefork.control.logs import Fetch, format_entry, logs_request
from prefork.control.protocol import StatusRequest

# ANSI: cursor home, then clear to the end of the screen (no flicker, unlike a full clear).
REDRAW: Final = "\x1b[H\x1b[J"
# Alternate screen and hidden cursor while running, as top(1) and less(1) do.
ENTER: Final = "\x1b[?1049h\x1b[?25l"
LEAVE: Final = "\x1b[?25h\x1b[?1049l"
QUIT_KEYS: Final = frozenset(b"qQ")
LOG_LINES_PIPED: Final = 10


def fit(lines: list[str], size: os.terminal_size | None) -> list[str]:
    """Cut `lines` to the terminal: no line wider, no more lines than rows."""
    if size is None:
        return lines
    lines = [line[: size.columns] for line in lines]
    if len(lines) > size.lines - 1:  # the last row stays free: writing there would scroll
        hidden = len(lines) - (size.lines - 2)
        lines = [*lines[: size.lines - 2], f"... {hidden} more lines"[: size.columns]]
    return lines


def _terminal_size() -> os.terminal_size | None:
    try:
        return os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None  # not a terminal: no width to keep within


@contextlib.contextmanager
def _keys() -> Iterator[int | None]:
    """stdin in cbreak mode (keys arrive one by one, Ctrl-C still interrupts),
    restored on exit; yields its fd, or None when stdin is not a terminal."""
    fd = sys.stdin.fileno()
    if not os.isatty(fd):
        yield None
        return
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    sys.stdout.write(ENTER)
    try:
        yield fd
    finally:
        sys.stdout.write(LEAVE)
        sys.stdout.flush()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wait_for_keys(fd: int | None, interval: float) -> bytes:
    """Wait up to `interval` seconds, or until a key; returns the keys typed (b"" for none)."""
    if fd is None:
        time.sleep(interval)
        return b""
    ready, _, _ = select.select([fd], [], [], interval)
    return os.read(fd, 64) if ready else b""


def _log_pane(fetch: Fetch, worker: int | None, rows: int) -> list[str]:
    shown = "all sources" if worker is None else f"worker {worker}"
    title = f"--- log: {shown} (0-9: one worker, a: all) ---"
    if rows < 2:
        return []
    entries = fetch(logs_request(rows - 1, worker)).get("entries", [])
    return [title, *(format_entry(entry) for entry in entries)]


def top(fetch: Fetch, path: str, interval: float) -> int:
    """Redraw the status and the log every `interval` seconds until `q` or Ctrl-C.

    `fetch` sends one request to the master at `path` (client.request, bound).
    """
    worker: int | None = None
    try:
        with _keys() as fd:
            while True:
                status = fetch(StatusRequest(cmd="status"))
                stamp = time.strftime("%H:%M:%S")
                lines = [
                    f"prefork top - {stamp} - {path} - q quits",
                    "",
                    *format_status(status).splitlines(),
                    "",
                ]
                size = _terminal_size()
                rows = LOG_LINES_PIPED + 1 if size is None else size.lines - 1 - len(lines)
                lines += _log_pane(fetch, worker, rows)
                sys.stdout.write(REDRAW + "\n".join(fit(lines, size)) + "\n")
                sys.stdout.flush()
                keys = _wait_for_keys(fd, interval)
                if QUIT_KEYS.intersection(keys):
                    return 0
                for key in keys.decode("ascii", "ignore"):
                    if key.isdigit():
                        worker = int(key)
                    elif key in "aA":
                        worker = None
    except KeyboardInterrupt:
        return 0
