"""The --reload watcher's file filter and polling fallback, without processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from prefork.reloader import DEFAULT_EXCLUDES, DEFAULT_INCLUDES, FileFilter, poll_changes

KEEP = FileFilter(DEFAULT_INCLUDES, DEFAULT_EXCLUDES)


@pytest.mark.parametrize(
    ("relative", "wanted"),
    [
        ("app.py", True),
        ("pkg/views.py", True),
        ("app.pyc", False),
        ("__pycache__/app.cpython-311.py", False),
        (".venv/lib/site.py", False),
        ("pkg/.hidden.py", False),
        ("~backup.py", False),
        ("README.md", False),
    ],
)
def test_default_filter(relative: str, wanted: bool) -> None:
    root = Path("/srv/app")
    assert KEEP.wants(root / relative, root) is wanted


def test_path_patterns_match_the_relative_path() -> None:
    keep = FileFilter(("*.py", "templates/*.html"), ("build/*",))
    root = Path("/srv")
    assert keep.wants(root / "templates" / "index.html", root)
    assert not keep.wants(root / "static" / "index.html", root)
    assert not keep.wants(root / "build" / "gen.py", root)


def test_polling_sees_changes_additions_and_removals(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a = 1")
    (tmp_path / "b.py").write_text("b = 1")
    stop = threading.Event()
    changes = poll_changes([tmp_path], KEEP, stop)
    (tmp_path / "a.py").write_text("a = 22")
    (tmp_path / "b.py").unlink()
    (tmp_path / "c.py").write_text("c = 1")
    (tmp_path / "c.txt").write_text("ignored")
    seen: set[Path] = set()
    deadline = time.monotonic() + 10
    while seen != {tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"}:
        assert time.monotonic() < deadline, seen
        seen |= next(changes)
    stop.set()
