"""`prefork top`: the status table, redrawn every --interval seconds.

On a terminal it behaves like top(1): the alternate screen, `q` (or Ctrl-C)
quits, and every line is cut to the terminal's width (read again for each
frame, so a resized window is followed) so nothing wraps and the frame
never scrolls.  Piped, it writes the frames as they are until interrupted.
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

from prefork.control.client import format_status, request

# ANSI: cursor home, then clear to the end of the screen (no flicker, unlike a full clear).
REDRAW: Final = "\x1b[H\x1b[J"
# Alternate screen and hidden cursor while running, as top(1) and less(1) do.
ENTER: Final = "\x1b[?1049h\x1b[?25l"
LEAVE: Final = "\x1b[?25h\x1b[?1049l"
QUIT_KEYS: Final = frozenset(b"qQ")


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


def _wait_for_quit(fd: int | None, interval: float) -> bool:
    """Wait up to `interval` seconds; True if `q` was pressed meanwhile."""
    deadline = time.monotonic() + interval
    while (remaining := deadline - time.monotonic()) > 0:
        if fd is None:
            time.sleep(remaining)
            return False
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready and QUIT_KEYS.intersection(os.read(fd, 64)):
            return True
    return False


def top(path: str, interval: float, *, private: bool) -> int:
    """Redraw the status every `interval` seconds until `q` or Ctrl-C."""
    try:
        with _keys() as fd:
            while True:
                status = request(path, {"cmd": "status"}, private=private)
                stamp = time.strftime("%H:%M:%S")
                lines = [
                    f"prefork top - {stamp} - {path} - q quits",
                    "",
                    *format_status(status).splitlines(),
                ]
                sys.stdout.write(REDRAW + "\n".join(fit(lines, _terminal_size())) + "\n")
                sys.stdout.flush()
                if _wait_for_quit(fd, interval):
                    return 0
    except KeyboardInterrupt:
        return 0
