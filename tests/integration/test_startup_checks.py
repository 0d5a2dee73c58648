"""Bad configuration is found before anything starts: one line, exit status 2.

What can be checked without side effects (address syntax and port range,
that a host is one of this machine's, that the user and group exist, that
the directories files go in exist) is checked by `--check-config` and by a
normal start alike, and again on reload.  Before, these passed
`--check-config` and then failed at run time with exit status 1 or 3.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from prefork.errors import EXIT_USAGE
from tests.integration.test_cli import run
from tests.server import run_server

APP = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return []\n"

CASES = [
    (("-b", "nonsense"), "--bind: 'nonsense': expected HOST:PORT"),
    (("-b", "127.0.0.1:99999"), "port must be a number from 0 to 65535"),
    (("-b", "no-such-host.invalid:8000"), "cannot resolve 'no-such-host.invalid'"),
    # TEST-NET-1 (RFC 5737): never an address of this host.
    (("-b", "192.0.2.1:8000"), "--bind 192.0.2.1:8000: Cannot assign requested address"),
    (("-b", "unix:/no/such/dir/app.sock"), "directory '/no/such/dir' does not exist"),
    (("-b", "unix:/tmp/" + "x" * 120), "at most 107 bytes"),
    (("-b", "fd://987"), "file descriptor 987 is not open"),
    (("--user", "no-such-user-here"), "--user 'no-such-user-here': no such user"),
    (("--group", "no-such-group-here"), "--group 'no-such-group-here': no such group"),
    (("--pid", "/no/such/dir/prefork.pid"), "--pid '/no/such/dir/prefork.pid': directory"),
    (("--error-logfile", "/no/such/dir/error.log"), "--error-logfile"),
    (("--access-logfile", "/no/such/dir/access.log"), "--access-logfile"),
    (("--chdir", "/no/such/dir"), "--chdir '/no/such/dir': no such directory"),
    (("--app-dir", "no-such-subdir"), "--app-dir 'no-such-subdir': no such directory"),
    (("-c", "/"), "config file '/' is not a regular file"),
    (("--metrics-bind", "192.0.2.1:9100"), "--metrics-bind 192.0.2.1:9100: Cannot assign"),
    (("--reload", "--reload-dir", "/no/such/dir"), "--reload-dir '/no/such/dir': no such"),
]


def prefork(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run("app:application", *args, cwd=tmp_path)


@pytest.mark.parametrize("check_config", [True, False], ids=["check-config", "start"])
@pytest.mark.parametrize(("args", "fragment"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_setting_is_one_line_and_status_2(
    tmp_path: Path, args: tuple[str, ...], fragment: str, check_config: bool
) -> None:
    (tmp_path / "app.py").write_text(APP)
    result = prefork(tmp_path, *args, *(["--check-config"] if check_config else []))
    assert result.returncode == EXIT_USAGE, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # nothing was started: no banner, no worker
    assert lines[0].startswith("prefork: error: ")
    assert fragment in lines[0]


def test_the_same_settings_pass_when_they_can_work(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "logs").mkdir()
    result = prefork(
        tmp_path,
        "-b",
        "localhost:0",
        "-b",
        f"unix:{tmp_path / 'app.sock'}",
        "--user",
        "0",
        "--group",
        "root",
        "--pid",
        "logs/prefork.pid",
        "--access-logfile",
        "logs/access.log",
        "--app-dir",
        ".",
        "--check-config",
    )
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout


def test_a_reload_into_a_bad_setting_fails_and_keeps_serving(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    config = tmp_path / "prefork.toml"
    config.write_text("workers = 1\n")
    with run_server("app:application", "-c", str(config), "--app-dir", str(tmp_path)) as server:
        (worker,) = server.worker_pids()
        config.write_text('workers = 1\nuser = "no-such-user-here"\n')
        start = len(server.lines)
        server.signal(signal.SIGHUP)
        server.wait_for_log(
            r"Reload failed: config: --user 'no-such-user-here': no such user", start=start
        )
        assert server.worker_pids() == {worker}
