"""The real `python -m prefork` command: exit statuses, one-line errors, --print-config.

Every command here exits by itself (bad configuration, --help, --version,
--print-config, --check-config): no server is started.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from prefork import __version__, compiled, config
from prefork.errors import EXIT_IMPORT, EXIT_OK, EXIT_USAGE
from tests.server import control


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return control(*args, cwd=cwd, env=env)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == EXIT_USAGE, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("prefork: error: ")
    return lines[0]


def test_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == EXIT_OK
    assert result.stdout.strip() == f"prefork {__version__}, hot path {compiled.MODE}"


def test_help_lists_every_setting(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == EXIT_OK
    for f in config.SETTINGS:
        meta = config.meta(f)
        for flag in meta.flags:
            assert flag in result.stdout, flag
            if meta.is_bool:
                assert "--no-" + flag.removeprefix("--") in result.stdout
        if meta.flags:
            assert config.env_name(f.name) in result.stdout
    for text in ("--print-config", "--check-config", "exit status", "HUP"):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("app:x", "--workers", "lots"), ("-w/--workers", "'lots'", "'max'")),
        (("app:x", "--timeout", "-2"), ("-t/--timeout", ">= 0")),
        (("app:x", "--interface", "rsgi"), ("--interface", "auto, wsgi, asgi, asgi2")),
        (("app:x", "--max-memory", "lots"), ("--max-memory", "512K")),
        (("app:x", "--umask", "999"), ("--umask", "0o777")),
        (("app:x", "--access-logformat", "%(a)d"), ("--access-logformat", "conversion")),
        (("app:x", "--no-such-flag"), ("unrecognized arguments: --no-such-flag",)),
        # Abbreviations are refused, so a future flag cannot change their meaning.
        (("app:x", "--work", "2"), ("unrecognized arguments: --work",)),
        (("app:x", "--bind", ""), ("--bind", "cannot be empty")),
        ((), ("no application given",)),
        (("app:x", "--certfile", "c.pem"), ("--certfile and --keyfile",)),
    ],
)
def test_bad_flag(tmp_path: Path, args: tuple[str, ...], fragments: tuple[str, ...]) -> None:
    line = one_line_error(run(*args, cwd=tmp_path))
    for fragment in fragments:
        assert fragment in line


def test_bad_environment_variable(tmp_path: Path) -> None:
    line = one_line_error(run("app:x", cwd=tmp_path, env={"PREFORK_GRACEFUL_TIMEOUT": "later"}))
    assert "environment PREFORK_GRACEFUL_TIMEOUT" in line
    assert "graceful_timeout" in line
    assert "expected a number of seconds" in line


def test_bad_web_concurrency(tmp_path: Path) -> None:
    line = one_line_error(run("app:x", cwd=tmp_path, env={"WEB_CONCURRENCY": "0"}))
    assert "WEB_CONCURRENCY" in line


def test_bad_config_file_key(tmp_path: Path) -> None:
    (tmp_path / "prefork.toml").write_text("[server]\nworkers = 2\n")
    line = one_line_error(run("app:x", cwd=tmp_path))
    assert str(tmp_path / "prefork.toml") in line
    assert "unknown setting 'server'" in line


def test_bad_pyproject_value(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.prefork]\nkeep-alive = 'long'\n")
    line = one_line_error(run("app:x", cwd=tmp_path))
    assert f"{tmp_path / 'pyproject.toml'}: key tool.prefork.keep-alive" in line
    assert "keep_alive" in line


def test_missing_config_file(tmp_path: Path) -> None:
    line = one_line_error(run("app:x", "-c", "missing.toml", cwd=tmp_path))
    assert "config file 'missing.toml' not found" in line


def test_print_config_applies_precedence(tmp_path: Path) -> None:
    (tmp_path / "prefork.toml").write_text(
        'threads = 2\ntimeout = 11\nbind = ["127.0.0.1:0"]\nname = "file"\n'
    )
    result = run(
        "app:x",
        "--print-config",
        "--name",
        "cli",
        "-b",
        "127.0.0.1:0",
        "-b",
        "unix:/tmp/x.sock",
        cwd=tmp_path,
        env={"PREFORK_TIMEOUT": "22", "PREFORK_PRELOAD": "yes", "WEB_CONCURRENCY": "3"},
    )
    assert result.returncode == EXIT_OK, result.stderr
    document = tomllib.loads(result.stdout)
    assert document["app"] == "app:x"
    assert document["threads"] == 2  # file over default
    assert document["timeout"] == 22.0  # environment over file
    assert document["name"] == "cli"  # command line over file
    assert document["bind"] == ["127.0.0.1:0", "unix:/tmp/x.sock"]  # command line, whole
    assert document["preload"] is True
    assert document["workers"] == "3"  # WEB_CONCURRENCY as the default

    # The printed document is a valid config file that reproduces itself.
    (tmp_path / "printed.toml").write_text(result.stdout)
    again = run("--print-config", "-c", "printed.toml", cwd=tmp_path)
    assert again.returncode == EXIT_OK, again.stderr
    assert tomllib.loads(again.stdout) == document


def test_check_config_imports_the_app(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'hi']\n"
    )
    result = run("hello:application", "--check-config", cwd=tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    assert "config OK" in result.stdout
    assert "wsgi" in result.stdout


@pytest.mark.parametrize(
    ("source", "spec", "reason", "traceback"),
    [
        (None, "nosuchmodule:app", "No module named 'nosuchmodule'", False),
        ("x = 1\n", "broken:app", "has no attribute 'app'", False),
        ("raise RuntimeError('boom at import')\n", "broken:app", "boom at import", True),
        ("app = 42\n", "broken:app", "not callable", False),
    ],
)
def test_check_config_import_failure(
    tmp_path: Path, source: str | None, spec: str, reason: str, traceback: bool
) -> None:
    if source is not None:
        (tmp_path / "broken.py").write_text(source)
    result = run(spec, "--check-config", cwd=tmp_path)
    assert result.returncode == EXIT_IMPORT, result
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"prefork: error: cannot import {spec!r}")
    assert reason in lines[0]
    # An error raised by the user's code is followed by its traceback (test_import_errors.py).
    assert (len(lines) > 1) is traceback, result.stderr
