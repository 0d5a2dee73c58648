"""`--log-config` file checks that do not depend on what the machine has installed."""

import re
import sys
from pathlib import Path

import pytest

from prefork import logconfig
from prefork.errors import ConfigError


def test_yaml_without_pyyaml_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "logging.yaml"
    path.write_text("version: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    with pytest.raises(ConfigError, match="YAML needs PyYAML"):
        logconfig.check(str(path))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("logging.json", "[1]", "version = 1"),
        ("logging.toml", "version = 2\n", "version = 1"),
        ("logging.json", '{"version": 1', "not valid JSON"),
        ("logging.ini", "[handlers]\n", "needs a [loggers] section"),
    ],
)
def test_a_file_that_is_not_a_logging_configuration_is_refused(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        logconfig.check(str(path))


def test_a_dict_configuration_keeps_existing_loggers(tmp_path: Path) -> None:
    path = tmp_path / "logging.json"
    path.write_text('{"version": 1}')
    logconfig.check(str(path))
    assert logconfig._load_dict(str(path), "json")["disable_existing_loggers"] is False
