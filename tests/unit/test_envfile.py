"""--env-file: the dotenv parser and how a re-read changes the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefork.envfile import EnvFile, parse
from prefork.errors import ConfigError


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
