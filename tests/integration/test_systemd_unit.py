"""`prefork systemd-unit`: the units pass systemd-analyze verify and really serve.

Nothing is ever enabled or started on this machine: --install is only run
with --root, which writes under a temporary directory.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from prefork import config
from tests.server import ROOT, prefork_command, start_server, stop_server

APP = "tests.apps.proc_app:wsgi"


def generate(*args: str, cwd: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """Run `prefork systemd-unit ... --install --root DIR`; the units written, by file name."""
    root = cwd / "root"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(config.ENV_PREFIX)}
    result = subprocess.run(
        prefork_command("systemd-unit", *args, "--install", "--root", str(root)),
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    unit_dir = root / "etc/systemd/system"
    assert all(f"wrote {unit_dir}/" in line for line in result.stdout.splitlines())
    return {path.name: path.read_text() for path in unit_dir.iterdir()}


def directive(unit: str, key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", unit, re.MULTILINE)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_generated_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    (tmp_path / "prefork.toml").write_text("graceful_timeout = 12.5\n")
    units = generate(
        APP, "-w", "2", "--host", "127.0.0.1", "--port", "8123", "--name", "shop",
        "--access-logfile", "logs/access.log", "--socket",
        cwd=tmp_path, env={"PREFORK_MAX_REQUESTS": "1000", "PREFORK_KEYFILE_PASSWORD": "s",
                           "PREFORK_CERTFILE": "c.pem", "PREFORK_KEYFILE": "k.pem"},
    )  # fmt: skip
    assert set(units) == {"shop.service", "shop.socket"}
    paths = [str(tmp_path / "root/etc/systemd/system" / name) for name in sorted(units)]
    result = subprocess.run(
        ["systemd-analyze", "verify", *paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr and "Invalid" not in result.stderr, result.stderr

    service = units["shop.service"]
    assert directive(service, "Type") == ["notify"]
    assert directive(service, "KillMode") == ["mixed"]
    assert directive(service, "TimeoutStopSec") == ["18"]  # 12.5 from the file, rounded up, + 5
    assert directive(service, "Restart") == ["on-failure"]
    assert directive(service, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert directive(service, "WorkingDirectory") == [str(tmp_path)]
    assert directive(service, "Requires") == ["shop.socket"]
    assert directive(service, "Environment") == [  # no password
        "PREFORK_CERTFILE=c.pem", "PREFORK_KEYFILE=k.pem", "PREFORK_MAX_REQUESTS=1000",
        f"PYTHONPATH={ROOT}",
    ]  # fmt: skip
    assert "NoNewPrivileges=yes" in service
    (exec_start,) = directive(service, "ExecStart")
    assert shlex.split(exec_start) == [
        *prefork_command(APP), "--workers", "2", "--access-logfile",
        str(tmp_path / "logs/access.log"), "--name", "shop",
        "--control-socket", "/run/shop/control.sock",
    ]  # fmt: skip
    assert directive(units["shop.socket"], "ListenStream") == ["127.0.0.1:8123"]


def test_the_generated_units_serve_through_socket_activation(tmp_path: Path) -> None:
    if shutil.which("systemd-socket-activate") is None:
        pytest.skip("needs systemd-socket-activate")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    control = tmp_path / "control.sock"
    units = generate(
        APP, "-w", "2", "-b", f"127.0.0.1:{port}", "--control-socket", str(control),
        "--socket", cwd=tmp_path,
    )  # fmt: skip
    (listen,) = directive(units["prefork.socket"], "ListenStream")
    (exec_start,) = directive(units["prefork.service"], "ExecStart")
    activate = ["systemd-socket-activate", "-l", listen]
    server = start_server(*shlex.split(exec_start)[3:], bind=(), command_prefix=activate,
                          wait_ready=False)  # fmt: skip
    try:
        response = httpx.get(f"http://{listen}/", timeout=30)
        assert response.text.startswith("pid=")
        server.wait_for_log(rf"Listening at: http://{re.escape(listen)} \(from systemd\)")
        server.wait_for_log(r"Ready: 2 workers serving")
    finally:
        stop_server(server)


def test_port_zero_cannot_be_socket_activated(tmp_path: Path) -> None:
    result = subprocess.run(
        prefork_command("systemd-unit", APP, "-b", "127.0.0.1:0", "--socket"),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "prefork: error: --socket: 127.0.0.1:0: systemd needs a fixed port, not 0"
    )
