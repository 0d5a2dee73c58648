"""Whether this process runs the compiled hot path, and the switch that forces pure Python.

setup.py compiles the per-request modules (the connection, framing, the
WSGI and ASGI exchanges) with mypyc into extension modules that sit next to
their sources, and records what each was built from in
prefork/_compiled_sources.py.  Python's import system prefers an extension
module to a source file of the same name, so nothing else chooses: this
module only steps in, once per process and before any of those modules is
imported (prefork/__init__.py calls `select`), to make the import system
load the sources instead when

- `PREFORK_PURE_PYTHON` is set to anything but `0` (to compare, or to rule
  the compiled code out when chasing a bug), or
- a source no longer matches what was compiled (an editable install whose
  source was edited after the build: running the old extension would
  silently ignore the edit), or
- an extension is missing for this interpreter (a build for another Python
  version, or a half-removed build).

In each case all of them run as Python: the compiled modules call each other
directly, so a mix would still run stale code.  `MODE` says which, for the
banner and `prefork --version`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Final, TypeVar

_Class = TypeVar("_Class", bound=type)

try:
    # Re-exported (mypy --strict wants the alias) for the hot path's compiled classes.
    from mypy_extensions import mypyc_attr as mypyc_attr  # noqa: PLC0414
except ImportError:  # not installed at run time: mypyc applied the decorator when it compiled

    def mypyc_attr(*_: str, **__: object) -> Callable[[_Class], _Class]:  # type: ignore[misc]
        """`@mypyc_attr(allow_interpreted_subclasses=True)`: Python may subclass this class."""
        return lambda cls: cls


PURE_PYTHON_VARIABLE: Final = "PREFORK_PURE_PYTHON"
COMPILED: Final = "compiled (mypyc)"
# The library the compiled modules share (setup.py's group_name + "__mypyc").
GROUP: Final = "prefork__mypyc"
_ROOT: Final = Path(__file__).resolve().parent.parent


class _SourcesFirst:
    """Finds the named modules' .py files, ahead of the extension modules beside them.

    A meta path finder is anything with `find_spec`: subclassing
    importlib.abc.MetaPathFinder would import importlib.resources, tempfile
    and random into every process, workers included (about 1 MiB of RSS each,
    docs/profile.md "Idle memory").
    """

    def __init__(self, modules: frozenset[str]) -> None:
        self.modules = modules

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules or path is None:
            return None
        name = fullname.rpartition(".")[2]
        for directory in path:
            source = os.path.join(directory, name + ".py")
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def why_pure(sources: dict[str, int], root: Path) -> str | None:
    """Why the compiled build of `sources` under `root` must not run here, or None if it may."""
    if os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0"):
        return f"{PURE_PYTHON_VARIABLE} is set"
    for module, digest in sources.items():
        base = root.joinpath(*module.split("."))
        if not any(
            base.with_name(base.name + suffix).is_file()
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
        ):
            return f"not built for Python {sys.version_info[0]}.{sys.version_info[1]}"
        try:
            source = base.with_suffix(".py").read_bytes()
        except OSError:
            continue  # installed without sources: nothing to be stale against
        if zlib.crc32(source) != digest:  # setup.py records the same
            return f"{module} changed since the build: reinstall to compile it"
    return None


def select() -> str:
    """Decide once per process which hot path runs, and say which."""
    try:
        manifest = importlib.import_module("prefork._compiled_sources")
    except ImportError:
        return "pure Python (not compiled at install)"
    failure: str = getattr(manifest, "FAILURE", "")
    if failure:  # the C compiler failed and setup.py went on without it
        return f"pure Python (the install could not compile it: {failure})"
    sources: dict[str, int] = manifest.SOURCES
    why = why_pure(sources, _ROOT)
    if why is None and importlib.util.find_spec(GROUP) is None:
        why = f"its shared library {GROUP} is not importable"
    if why is None:
        return COMPILED
    sys.meta_path.insert(0, _SourcesFirst(frozenset(sources)))
    return f"pure Python ({why})"


MODE: Final = select()
