"""Where `prefork status|reload|scale|stop` looks for the control socket by default."""

from __future__ import annotations

import os

from prefork.control import default_path


def test_default_path() -> None:
    assert default_path("api", {"XDG_RUNTIME_DIR": "/run/user/1000"}) == (
        "/run/user/1000/prefork/api.sock"
    )
    assert default_path(None, {}) == f"/tmp/prefork-{os.getuid()}/default.sock"
