"""Whether this process runs the compiled hot path, and the switch that forces pure Python.

setup.py compiles the per-request modules (the connection, framing, the
WSGI and ASGI exchanges) with mypyc into extension modules that sit next to
their sources, and records in prefork/_compiled_sources.py, for each
interpreter it built for (keyed by the extension suffix, e.g.
".cpython-311-x86_64-linux-gnu.so"), the CRC-32 of each source it compiled,
or why it compiled nothing.  Python's import system prefers an extension
module to a source file of the same name, so nothing else chooses: this
module only steps in, once per process and before any of those modules is
imported (prefork/__init__.py calls `select`), to make the import system
load the sources instead when

- `PREFORK_PURE_PYTHON` is set to anything but `0` (to compare, or to rule
  the compiled code out when chasing a bug), or
- this interpreter's build is missing, was skipped or failed at install, or
  is incomplete (a half-removed build), or
- a source no longer matches what this interpreter's build compiled (an
  editable install whose source was edited after the build: running the old
  extension would silently ignore the edit).

Builds are recorded per interpreter because an editable install keeps every
Python's extensions side by side in the source tree: a rebuild for 3.11
must not vouch for the 3.13 extensions an older build left there.

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
# This interpreter's extension suffix: what setup.py keys its build by
# (sysconfig's EXT_SUFFIX, which the import system tries first).
BUILD: Final = importlib.machinery.EXTENSION_SUFFIXES[0]

Builds = dict[str, dict[str, int]]


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


def why_pure(builds: Builds, root: Path) -> str | None:
    """Why this interpreter's extension modules under `root` must not run, or None if they may.

    `builds` maps each build setup.py made to the CRC-32 of every source it compiled.
    """
    if os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0"):
        return f"{PURE_PYTHON_VARIABLE} is set"
    sources = builds.get(BUILD)
    if not sources:
        return f"not built for Python {sys.version_info[0]}.{sys.version_info[1]}"
    for module, digest in sources.items():
        base = root.joinpath(*module.split("."))
        if not base.with_name(base.name + BUILD).is_file():
            return f"{module} is missing from the build: reinstall to compile it"
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
    builds: Builds = manifest.BUILDS
    skipped: dict[str, str] = manifest.SKIPPED
    if BUILD in skipped:  # the C compiler failed, or pure Python was asked for
        why: str | None = f"not compiled at install: {skipped[BUILD]}"
    else:
        why = why_pure(builds, _ROOT)
    if why is None and importlib.util.find_spec(GROUP) is None:
        why = f"its shared library {GROUP} is not importable"
    if why is None:
        return COMPILED
    # This interpreter's extensions, if any are left, are stale or unwanted.
    sys.meta_path.insert(0, _SourcesFirst(frozenset(manifest.MODULES)))
    return f"pure Python ({why})"


MODE: Final = select()
