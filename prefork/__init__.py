"""prefork: a pre-fork WSGI/ASGI application server."""

from __future__ import annotations

__version__ = "0.1.0"

# Before any hot-path module is imported: it decides whether they load compiled.
from prefork import compiled as compiled
