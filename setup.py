"""Builds the compiled hot path with mypyc; pyproject.toml holds everything else.

The modules in HOT_PATH are compiled into C extension modules that sit next
to their sources (docs/profile.md measures what it gains).
`PREFORK_PURE_PYTHON=1` at install time skips the build (no C compiler
needed); at run time it makes an existing build be ignored.  Where the C
compiler fails (none installed, no Python headers), the install goes on in
pure Python and the banner says why, as msgpack and markupsafe do with their
speedups: the sources are the same program, only slower.  Each build also
writes prefork/_compiled_sources.py, the CRC-32 of every compiled source, so
that a source edited after the build (an editable install) runs as Python
instead of as a stale extension (prefork/compiled.py).
"""

from __future__ import annotations

import os
import sys
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


def write_manifest(manifest: Path, failure: str = "") -> None:
    """Record what was compiled, or (`failure`) why nothing was."""
    digests = {} if failure else {path: zlib.crc32((ROOT / path).read_bytes()) for path in HOT_PATH}
    lines = "".join(
        f"    {path.removesuffix('.py').replace('/', '.')!r}: {digest},\n"
        for path, digest in digests.items()
    )
    manifest.write_text(
        '"""Written by setup.py: each compiled module, and the CRC-32 of its source."""\n\n'
        f"SOURCES = {{\n{lines}}}\nFAILURE = {failure!r}\n"
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
    if os.environ.get("PREFORK_PURE_PYTHON", "") not in ("", "0"):
        MANIFEST.unlink(missing_ok=True)
        return []
    if not BUILDING.intersection(sys.argv[1:]):
        return []
    from mypyc.build import mypycify

    write_manifest(MANIFEST)
    return mypycify(HOT_PATH, group_name="prefork", opt_level="3")  # -> prefork__mypyc


setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildExtOrFallBack})
