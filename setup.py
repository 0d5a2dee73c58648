"""Builds the compiled hot path with mypyc; pyproject.toml holds everything else.

The modules in HOT_PATH are compiled into C extension modules that sit next
to their sources (docs/profile.md measures what it gains).
`PREFORK_PURE_PYTHON=1` at install time skips the build (no C compiler
needed); at run time it makes an existing build be ignored.  Each build also
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


def write_manifest() -> None:
    digests = {path: zlib.crc32((ROOT / path).read_bytes()) for path in HOT_PATH}
    lines = "".join(
        f"    {path.removesuffix('.py').replace('/', '.')!r}: {digest},\n"
        for path, digest in digests.items()
    )
    MANIFEST.write_text(
        '"""Written by setup.py: each compiled module, and the CRC-32 of its source."""\n\n'
        f"SOURCES = {{\n{lines}}}\n"
    )


def ext_modules() -> list[Any]:
    if os.environ.get("PREFORK_PURE_PYTHON", "") not in ("", "0"):
        MANIFEST.unlink(missing_ok=True)
        return []
    if not BUILDING.intersection(sys.argv[1:]):
        return []
    from mypyc.build import mypycify

    write_manifest()
    return mypycify(HOT_PATH, group_name="prefork", opt_level="3")  # -> prefork__mypyc


setup(ext_modules=ext_modules())
