"""`--env-file`: dotenv parsing, precedence, re-reading on reload, one-line errors."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from prefork.envfile import EnvFile, parse
from prefork.errors import ConfigError
from tests.server import prefork_command, run_server

APP = "tests.apps.env_app:app"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1", {"A": "1"}),
        ("export A=1\n# comment\n\nB = two words ", {"A": "1", "B": "two words"}),
        ("A=value # a comment", {"A": "value"}),
        ("A=val#ue", {"A": "val#ue"}),
        ("A='single $HOME \\n kept'", {"A": "single $HOME \\n kept"}),
        ('A="tab\\tnewline\\nquote\\" back\\\\"', {"A": 'tab\tnewline\nquote" back\\'}),
        ('A="first\nsecond"\nB=3', {"A": "first\nsecond", "B": "3"}),
        ("A=1\nB=${A}-${MISSING:-dflt}-${MISSING}", {"A": "1", "B": "1-dflt-"}),
        ('A="${FROM_ENV}"', {"A": "env"}),
        ("A=", {"A": ""}),
        ("A.B_C=1", {"A.B_C": "1"}),
    ],
)
def test_parse(text: str, expected: dict[str, str]) -> None:
    assert parse(text, ".env", {"FROM_ENV": "env"}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("JUSTAWORD", ".env:1: expected KEY=VALUE"),
        ("A=1\n1A=2", ".env:2: '1A' is not a variable name"),
        ("A='open", ".env:1: unterminated 'quoted value"),
        ('A="x" trailing', ".env:1: unexpected text after the closing quote"),
    ],
)
def test_parse_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("'", ".")):
        parse(text, ".env", {})


def test_the_real_environment_wins_and_a_reload_takes_back_what_the_file_set(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".env"
    path.write_text("FROM_FILE=1\nSET_OUTSIDE=file\nDROPPED=x\n")
    environ = {"SET_OUTSIDE": "operator"}
    env = EnvFile(environ)
    env.load(str(path))
    assert environ == {"SET_OUTSIDE": "operator", "FROM_FILE": "1", "DROPPED": "x"}
    path.write_text("FROM_FILE=2\n")
    env.load(str(path))
    assert environ == {"SET_OUTSIDE": "operator", "FROM_FILE": "2"}
    path.write_text("BROKEN")
    with pytest.raises(ConfigError):
        env.load(str(path))
    assert environ == {"SET_OUTSIDE": "operator", "FROM_FILE": "2"}  # unchanged


def test_served_app_sees_the_file_and_a_reload_reads_it_again(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_text('ENV_APP_REQUIRED=yes\nGREETING="hello from the file"\nGONE=here\n')
    with run_server(APP, "-w", "2", "--env-file", str(path)) as server:
        assert httpx.get(server.url, timeout=10).text == "hello from the file|here"
        path.write_text("ENV_APP_REQUIRED=yes\nGREETING=changed\n")
        mark = len(server.lines)
        server.signal(signal.SIGHUP)
        server.wait_for_log("Reload complete", start=mark)
        assert httpx.get(server.url, timeout=10).text == "changed|-"


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_text("ENV_APP_REQUIRED=yes\nGREETING=file\n")
    env = {"GREETING": "operator"}
    with run_server(APP, "--env-file", str(path), env=env) as server:
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
