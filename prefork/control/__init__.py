"""The control socket: `prefork status|reload|scale|stop` talking to a running master.

Protocol: the client connects to a unix stream socket (mode 0600; the master
also checks the peer's uid), sends one JSON object on one line, e.g.
`{"cmd": "scale", "workers": 4}`, and reads one JSON object line back:
`{"ok": true, ...}` or `{"ok": false, "error": "one line"}`.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_path(name: str | None, environ: dict[str, str] | None = None) -> str:
    """$XDG_RUNTIME_DIR/prefork/NAME.sock, else /tmp/prefork-UID/NAME.sock."""
    env = dict(os.environ) if environ is None else environ
    filename = f"{name or 'default'}.sock"
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return str(Path(runtime) / "prefork" / filename)
    return str(Path("/tmp") / f"prefork-{os.getuid()}" / filename)
