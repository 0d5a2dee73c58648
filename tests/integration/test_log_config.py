"""`--log-config`: dictConfig (JSON, TOML) and fileConfig (INI) files, applied in every process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from prefork import logconfig
from prefork.errors import ConfigError
from tests.server import file_containing, prefork_command, run_server

APP = "tests.apps.json_logging:wsgi_app"  # logs a warning on "tests.app" per request


FORMAT = "CUSTOM %(name)s %(levelname)s %(message)s"


def dict_config(log_file: Path) -> dict[str, object]:
    handler = {"class": "logging.FileHandler", "filename": str(log_file), "formatter": "plain"}
    return {
        "version": 1,
        "formatters": {"plain": {"format": FORMAT}},
        "handlers": {"file": handler},
        "loggers": {"tests.app": {"handlers": ["file"], "level": "INFO"}},
    }


def toml_config(log_file: Path) -> str:
    return (
        f"version = 1\n[formatters.plain]\nformat = {json.dumps(FORMAT)}\n"
        '[handlers.file]\nclass = "logging.FileHandler"\nformatter = "plain"\n'
        f"filename = {json.dumps(str(log_file))}\n"
        '[loggers."tests.app"]\nhandlers = ["file"]\nlevel = "INFO"\n'
    )


@pytest.mark.parametrize("kind", ["json", "toml", "ini"])
def test_the_apps_logger_follows_the_file(tmp_path: Path, kind: str) -> None:
    log_file = tmp_path / "app.log"
    config_path = tmp_path / f"logging.{kind}"
    if kind == "json":
        config_path.write_text(json.dumps(dict_config(log_file)))
    elif kind == "toml":
        config_path.write_text(toml_config(log_file))
    else:
        config_path.write_text(
            "[loggers]\nkeys=root,app\n[handlers]\nkeys=file\n[formatters]\nkeys=plain\n"
            "[logger_root]\nhandlers=\n[logger_app]\nqualname=tests.app\nhandlers=file\n"
            "level=INFO\npropagate=0\n"
            f"[handler_file]\nclass=FileHandler\nargs=({str(log_file)!r},)\nformatter=plain\n"
            f"[formatter_plain]\nformat={FORMAT}\n"
        )
    with run_server(APP, "-w", "2", "--log-config", str(config_path)) as server:
        assert httpx.get(server.url + "/?from=test", timeout=10).status_code == 200
        content = file_containing(log_file, "from=test")
        # prefork's own logger was not disabled by the file.
        server.wait_for_log("Ready: 2 workers serving")
    assert 'CUSTOM tests.app WARNING app saw from=test "quoted"' in content


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.toml", "version = 2\n", "version = 1"),
        ("bad.ini", "[nothing]\n", "needs a [loggers] section"),
        # Refused with PyYAML ("version = 1") and without it ("needs PyYAML"):
        # PyYAML is not a dependency, but a CI machine may have it.
        ("bad.yaml", "version: 2\n", "--log-config"),
        ("missing.json", None, "cannot read"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_2(
    tmp_path: Path, name: str, content: str | None, fragment: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    result = subprocess.run(
        prefork_command(APP, "--log-config", str(path), "--check-config"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "--log-config" in result.stderr
    assert fragment in result.stderr


def test_a_file_logging_refuses_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "logging.json"
    path.write_text(json.dumps({"version": 1, "handlers": {"h": {"class": "no.such.Class"}}}))
    with pytest.raises(ConfigError, match="--log-config"):
        logconfig.apply(str(path))
    result = subprocess.run(
        prefork_command(APP, "--log-config", str(path), "-b", "127.0.0.1:0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("prefork: error: --log-config")
