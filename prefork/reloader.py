"""`--reload`: watch the application's source tree and reload on a change.

Theory of operation
-------------------
The master stays single-threaded (fork must stay safe), so the watching runs
in a process of its own: `python -m prefork.reloader`, started by the master
with the settings as arguments.  It writes one line per batch of changes (the
changed paths, tab-separated) to a pipe the master's selector reads; the
master answers each line with the same readiness-gated rolling reload as
SIGHUP.  So a syntax or import error in the edited code fails that reload and
the old workers keep serving; the next change (the fix) reloads again.

The watcher uses `watchfiles` (inotify through Rust's notify, as uvicorn and
granian do) when it is installed, else it polls the tree's modification times
every `POLL_INTERVAL` seconds.  It exits when its standard input, a pipe from
the master, reaches end of file: the master stopped, or died.

Which files count: a file whose name matches an `--reload-include` pattern
and neither it nor any directory above it (below the watched root) matches an
`--reload-exclude` pattern.  Patterns are shell globs (fnmatch) matched
against a single path component, or against the relative path when they
contain a `/`.  The user's patterns add to the defaults below (uvicorn's,
plus __pycache__), so `--reload-include '*.html'` still watches `*.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

log = logging.getLogger("prefork")

DEFAULT_INCLUDES: Final = ("*.py",)
DEFAULT_EXCLUDES: Final = (".*", "*.py[cod]", ".sw.*", "~*", "__pycache__")
# Polling fallback: fast enough that an edit is served within ~1 s on a
# small tree, slow enough that walking it costs nothing noticeable.
POLL_INTERVAL: Final = 0.5
BACKEND_PREFIX: Final = "# backend: "


@dataclass(frozen=True, slots=True)
class FileFilter:
    includes: tuple[str, ...]
    excludes: tuple[str, ...]

    def _matches(self, patterns: Iterable[str], name: str, relative: str) -> bool:
        return any(fnmatch.fnmatch(relative if "/" in p else name, p) for p in patterns)

    def wants(self, path: Path, root: Path) -> bool:
        """Whether a change to `path` (a file below `root`) should reload."""
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            parts = path.parts
        relative = "/".join(parts)
        for depth, part in enumerate(parts):
            if self._matches(self.excludes, part, "/".join(parts[: depth + 1])):
                return False
        return self._matches(self.includes, parts[-1] if parts else "", relative)

    def wants_dir(self, name: str, relative: str) -> bool:
        return not self._matches(self.excludes, name, relative)


# -- the master's side ---------------------------------------------------------


class Watcher:
    """The master's handle on the watcher process."""

    def __init__(self, proc: subprocess.Popen[bytes], roots: Sequence[Path]) -> None:
        self.proc = proc
        self.roots = tuple(roots)
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self._partial = b""

    @classmethod
    def start(
        cls, dirs: Sequence[str], includes: Sequence[str], excludes: Sequence[str]
    ) -> Watcher:
        roots = [Path(d).resolve() for d in dirs]
        argv = [sys.executable, "-m", "prefork.reloader"]
        for root in roots:
            argv += ["--dir", str(root)]
        for pattern in (*DEFAULT_INCLUDES, *includes):
            argv += ["--include", pattern]
        for pattern in (*DEFAULT_EXCLUDES, *excludes):
            argv += ["--exclude", pattern]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        return cls(proc, roots)

    def describe(self, path: str) -> str:
        """`path` relative to the watched directory holding it, for the log."""
        candidate = Path(path)
        for root in self.roots:
            if candidate.is_relative_to(root):
                return str(candidate.relative_to(root))
        return path

    def read_lines(self) -> list[str] | None:
        """The lines written since the last call; None once the watcher died.

        A line is the backend's name (BACKEND_PREFIX) or a batch of changed
        paths, tab-separated.
        """
        chunks = [self._partial]
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not data:
                return None
            chunks.append(data)
        *lines, self._partial = b"".join(chunks).split(b"\n")
        return [line.decode(errors="replace") for line in lines]

    def close_inherited(self) -> None:
        """In a new worker: close the copies of the pipes (the master keeps the watcher)."""
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    os.close(stream.fileno())

    def stop(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the watcher process -------------------------------------------------------


def _poll_snapshot(roots: Sequence[Path], keep: FileFilter) -> dict[Path, tuple[int, int]]:
    snapshot: dict[Path, tuple[int, int]] = {}
    for root in roots:
        for directory, dirnames, filenames in os.walk(root):
            base = Path(directory)
            rel_base = base.relative_to(root).as_posix() if base != root else ""
            dirnames[:] = [d for d in dirnames if keep.wants_dir(d, f"{rel_base}/{d}".lstrip("/"))]
            for name in filenames:
                path = base / name
                if keep.wants(path, root):
                    with contextlib.suppress(OSError):
                        st = path.stat()
                        snapshot[path] = (st.st_mtime_ns, st.st_size)
    return snapshot


def poll_changes(
    roots: Sequence[Path], keep: FileFilter, stop: threading.Event
) -> Iterator[set[Path]]:
    """Changed, added or removed files, by walking the trees every POLL_INTERVAL.

    The first snapshot is taken now, not at the first `next()`, so a change
    made in between is seen.
    """
    return _poll_loop(roots, keep, stop, _poll_snapshot(roots, keep))


def _poll_loop(
    roots: Sequence[Path],
    keep: FileFilter,
    stop: threading.Event,
    before: dict[Path, tuple[int, int]],
) -> Iterator[set[Path]]:
    yield set()  # the first snapshot is taken: watching has started
    while not stop.wait(POLL_INTERVAL):
        after = _poll_snapshot(roots, keep)
        changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        before = after
        if changed:
            yield changed


def _watchfiles_changes(
    roots: Sequence[Path], keep: FileFilter, stop: threading.Event
) -> Iterator[set[Path]]:
    import watchfiles

    def accept(_change: object, path: str) -> bool:
        candidate = Path(path)
        return any(keep.wants(candidate, root) for root in roots if candidate.is_relative_to(root))

    # yield_on_timeout: an empty batch once the watches are in place (the
    # Rust side registers them before its first wait), which _watch reports
    # as the start; then one every rust_timeout while nothing changes.
    for batch in watchfiles.watch(
        *roots, watch_filter=accept, stop_event=stop, yield_on_timeout=True, rust_timeout=1000
    ):
        yield {Path(path) for _, path in batch}


def _watch(roots: Sequence[Path], keep: FileFilter, out: TextIO) -> None:
    stop = threading.Event()

    def wait_for_master() -> None:
        # The master holds the other end of stdin: EOF means it is gone.
        while sys.stdin.buffer.read(4096):
            pass
        stop.set()

    threading.Thread(target=wait_for_master, daemon=True).start()
    try:
        import watchfiles  # noqa: F401 - only to learn whether it is there
    except ImportError:
        changes = poll_changes(roots, keep, stop)
        backend = f"polling every {POLL_INTERVAL}s; install watchfiles for inotify"
    else:
        changes = _watchfiles_changes(roots, keep, stop)
        backend = "watchfiles"
    started = False
    for batch in changes:
        if not started:
            # The first line names the backend, once changes are seen: the
            # master logs it, and tests wait for it before editing files.
            out.write(f"{BACKEND_PREFIX}{backend}\n")
            out.flush()
            started = True
        if batch:
            out.write("\t".join(sorted(str(p) for p in batch)) + "\n")
            out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefork.reloader")
    parser.add_argument("--dir", action="append", default=[])
    parser.add_argument("--include", action="append", default=[])
    parser.add_argument("--exclude", action="append", default=[])
    args = parser.parse_args(argv)
    roots = [Path(d).resolve() for d in args.dir]
    keep = FileFilter(tuple(args.include), tuple(args.exclude))
    try:
        _watch(roots, keep, sys.stdout)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
