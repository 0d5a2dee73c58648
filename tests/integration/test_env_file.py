"""`--env-file`: dotenv parsing, precedence, re-reading on reload, one-line errors."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.server import Serve, prefork_command

APP = "tests.apps.env_app:app"


def test_served_app_sees_the_file_and_a_reload_reads_it_again(tmp_path: Path, serve: Serve) -> None:
    path = tmp_path / "app.env"
    path.write_text('ENV_APP_REQUIRED=yes\nGREETING="hello from the file"\nGONE=here\n')
    server = serve(APP, "-w", "2", "--env-file", str(path))
    assert httpx.get(server.url, timeout=10).text == "hello from the file|here"
    path.write_text("ENV_APP_REQUIRED=yes\nGREETING=changed\n")
    mark = len(server.lines)
    server.signal(signal.SIGHUP)
    server.wait_for_log("Reload complete", start=mark)
    assert httpx.get(server.url, timeout=10).text == "changed|-"


def test_environment_wins_over_the_file(tmp_path: Path, serve: Serve) -> None:
    path = tmp_path / "app.env"
    path.write_text("ENV_APP_REQUIRED=yes\nGREETING=file\n")
    env = {"GREETING": "operator"}
    server = serve(APP, "--env-file", str(path), env=env)
    assert httpx.get(server.url, timeout=10).text == "operator|-"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(None, "no such file"), ("ENV_APP_REQUIRED=yes\nnot a line", ":2: expected KEY=VALUE")],
)
def test_bad_file_is_one_line_and_exit_2(
    tmp_path: Path, content: str | None, fragment: str
) -> None:
    path = tmp_path / "app.env"
    if content is not None:
        path.write_text(content)
    for extra in ((), ("--check-config",)):
        result = subprocess.run(
            prefork_command(APP, "--env-file", str(path), "-b", "127.0.0.1:0", *extra),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert fragment in result.stderr and result.stderr.count("\n") == 1


def test_check_config_applies_the_file_before_importing(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_text("ENV_APP_REQUIRED=yes\n")
    result = subprocess.run(
        prefork_command(APP, "--env-file", str(path), "--check-config"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
