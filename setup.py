"""Builds the compiled hot path with mypyc; pyproject.toml holds everything else.

The modules in HOT_PATH are compiled into C extension modules that sit next
to their sources (docs/profile.md measures what it gains).
`PREFORK_PURE_PYTHON=1` at install time skips the build (no C compiler
needed); at run time it makes an existing build be ignored.  Where the C
compiler fails (none installed, no Python headers), the install goes on in
pure Python and the banner says why, as msgpack and markupsafe do with their
speedups: the sources are the same program, only slower.  Each build also
records in prefork/_compiled_sources.py, under this interpreter's extension
suffix, the CRC-32 of every compiled source (or why nothing was compiled), so
that a source edited after the build (an editable install) runs as Python
instead of as a stale extension (prefork/compiled.py).  Other interpreters'
entries are kept: an editable install holds each Python's extensions side by
side, each with its own build to answer for.
"""

from __future__ import annotations

import ast
import os
import sys
import sysconfig
import zlib
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError

ROOT = Path(__file__).resolve().parent
# What runs for every request: the connection and its parser callbacks,
# framing, the WSGI and ASGI exchanges and their environ and scope.
HOT_PATH = [
    "prefork/http/accept.py",
    "prefork/http/checks.py",
    "prefork/http/connection.py",
    "prefork/http/exchange.py",
    "prefork/http/response.py",
    "prefork/http/server.py",
    "prefork/wsgi/environ.py",
    "prefork/wsgi/exchange.py",
    "prefork/wsgi/inline.py",
    "prefork/wsgi/threaded.py",
    "prefork/asgi/http.py",
    "prefork/asgi/scope.py",
]
MANIFEST = ROOT / "prefork" / "_compiled_sources.py"
# setuptools runs this file for each build step; only these compile.
BUILDING = {"build_ext", "bdist_wheel", "editable_wheel", "build", "install", "develop"}


# The interpreter this build is for, as its extension modules' names say
# (prefork/compiled.py's BUILD is the same suffix, seen from run time).
BUILD = sysconfig.get_config_var("EXT_SUFFIX")


def read_manifest(manifest: Path) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """The builds and the skipped builds already recorded (none if unreadable)."""
    try:
        tree = ast.parse(manifest.read_text())
        values = {
            node.target.id: ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value
        }
        return dict(values["BUILDS"]), dict(values["SKIPPED"])
    except (OSError, SyntaxError, ValueError, KeyError):
        return {}, {}  # none yet, or a format from before builds were per interpreter


def write_manifest(manifest: Path, skipped: str = "") -> None:
    """Record what this interpreter's build compiled, or (`skipped`) why it compiled nothing."""
    modules = [path.removesuffix(".py").replace("/", ".") for path in HOT_PATH]
    builds, skips = read_manifest(manifest)
    builds.pop(BUILD, None)
    skips.pop(BUILD, None)
    if skipped:
        skips[BUILD] = skipped
    else:
        builds[BUILD] = {
            module: zlib.crc32((ROOT / path).read_bytes())
            for module, path in zip(modules, HOT_PATH, strict=True)
        }
    manifest.write_text(
        '"""Written by setup.py: the modules it compiles and, per interpreter (extension\n'
        'suffix), the CRC-32 of each compiled source, or why nothing was compiled."""\n\n'
        f"MODULES: list[str] = {modules!r}\n"
        f"BUILDS: dict[str, dict[str, int]] = {builds!r}\n"
        f"SKIPPED: dict[str, str] = {skips!r}\n"
    )


class BuildExtOrFallBack(build_ext):
    """build_ext, but a compiler failure leaves a pure-Python install that says why."""

    def run(self) -> None:
        try:
            super().run()
        except (CCompilerError, CompileError, ExecError, LinkError, PlatformError) as exc:
            compiler = getattr(self.compiler, "compiler_so", None) or ["the C compiler"]
            failure = f"{compiler[0]} failed ({type(exc).__name__}); `pip install -v` shows why"
            print(f"prefork: {failure}; installing the hot path as pure Python", file=sys.stderr)
            write_manifest(MANIFEST, failure)
            built = Path(self.build_lib) / "prefork" / MANIFEST.name
            if built.parent.is_dir():  # a wheel's copy, made before build_ext ran
                write_manifest(built, failure)


def ext_modules() -> list[Any]:
    if not BUILDING.intersection(sys.argv[1:]):
        return []
    if os.environ.get("PREFORK_PURE_PYTHON", "") not in ("", "0"):
        write_manifest(MANIFEST, "PREFORK_PURE_PYTHON was set")
        return []
    from mypyc.build import mypycify

    write_manifest(MANIFEST)
    return mypycify(HOT_PATH, group_name="prefork", opt_level="3")  # -> prefork__mypyc


if __name__ == "__main__":  # as setuptools runs it; tests load the helpers above
    setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildExtOrFallBack})
