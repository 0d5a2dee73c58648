"""prefork.config.load: sources and their precedence, parsers, errors, --print-config.

The command line itself (exit statuses, one-line errors) is covered by
tests/integration/test_cli.py; here `load()` gets already-parsed CLI values, an
explicit environment and a cwd.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from pathlib import Path
from typing import Any

import pytest

from prefork import config
from prefork.config import Config, load
from prefork.cpus import WorkerCount
from prefork.errors import ConfigError

APP = {"app": "app:application"}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def load_in(cwd: Path, cli: dict[str, Any] | None = None, /, **environ: str) -> Config:
    return load({**APP, **(cli or {})}, environ=environ, cwd=cwd)


def error_of(cwd: Path, cli: dict[str, Any] | None = None, /, **environ: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_in(cwd, cli, **environ)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults(tmp_path: Path) -> None:
    loaded = load_in(tmp_path)
    expected = Config(app="app:application")
    assert loaded == expected
    assert loaded.workers == WorkerCount(1)
    assert loaded.bind == ("127.0.0.1:8000",)
    assert loaded.config is None


# -- precedence: CLI > environment > file > default, every combination ----------

SOURCES = ("file", "env", "cli")


@pytest.mark.parametrize(
    "present",
    [combo for n in range(4) for combo in itertools.combinations(SOURCES, n)],
    ids=lambda combo: "+".join(combo) or "default",
)
def test_precedence(tmp_path: Path, present: tuple[str, ...]) -> None:
    value = {"file": 11.0, "env": 22.0, "cli": 33.0}
    if "file" in present:
        write(tmp_path / "prefork.toml", "timeout = 11\n")
    environ = {"PREFORK_TIMEOUT": "22"} if "env" in present else {}
    cli = {"timeout": 33.0} if "cli" in present else {}
    winner = present[-1] if present else None
    expected = value[winner] if winner else Config.__dataclass_fields__["timeout"].default
    assert load_in(tmp_path, cli, **environ).timeout == expected


def test_sources_merge_per_setting(tmp_path: Path) -> None:
    write(tmp_path / "prefork.toml", 'workers = 3\ntimeout = 11\nname = "from-file"\n')
    loaded = load_in(tmp_path, {"name": "from-cli"}, PREFORK_TIMEOUT="22")
    assert (loaded.workers, loaded.timeout, loaded.name) == (WorkerCount(3), 22.0, "from-cli")


# -- WEB_CONCURRENCY replaces the default of workers, nothing more ----------------


def test_web_concurrency_is_the_default_for_workers(tmp_path: Path) -> None:
    assert load_in(tmp_path, WEB_CONCURRENCY="6").workers == WorkerCount(6)


def test_file_beats_web_concurrency(tmp_path: Path) -> None:
    write(tmp_path / "prefork.toml", "workers = 2\n")
    assert load_in(tmp_path, WEB_CONCURRENCY="6").workers == WorkerCount(2)


def test_env_and_cli_beat_web_concurrency(tmp_path: Path) -> None:
    assert load_in(tmp_path, WEB_CONCURRENCY="6", PREFORK_WORKERS="3").workers == WorkerCount(3)
    assert load_in(
        tmp_path, {"workers": WorkerCount(4)}, WEB_CONCURRENCY="6"
    ).workers == WorkerCount(4)


def test_bad_web_concurrency_is_named(tmp_path: Path) -> None:
    message = error_of(tmp_path, WEB_CONCURRENCY="lots")
    assert message.startswith("WEB_CONCURRENCY: invalid value 'lots' for workers")
    assert "expected a positive integer" in message


# -- config files -----------------------------------------------------------------


def test_prefork_toml_beats_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "prefork.toml", "threads = 2\n")
    write(tmp_path / "pyproject.toml", "[tool.prefork]\nthreads = 3\nbacklog = 10\n")
    loaded = load_in(tmp_path)
    # Only one file is read: pyproject's backlog does not leak in.
    assert (loaded.threads, loaded.backlog) == (2, 2048)
    assert loaded.config == str(tmp_path / "prefork.toml")


def test_pyproject_tool_prefork_table(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "x"\n[tool.prefork]\nthreads = 3\nmax-requests = 50\n',
    )
    loaded = load_in(tmp_path)
    assert (loaded.threads, loaded.max_requests) == (3, 50)


def test_pyproject_without_prefork_table_is_harmless(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\ntool = 1\n')
    assert load_in(tmp_path).threads == 1


def test_explicit_file_beats_discovery(tmp_path: Path) -> None:
    write(tmp_path / "prefork.toml", "threads = 2\n")
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf" / "prod.toml", "threads = 4\n")
    # A relative -c is relative to the working directory load() was given.
    assert load_in(tmp_path, {"config": "conf/prod.toml"}).threads == 4
    assert load_in(tmp_path, PREFORK_CONFIG="conf/prod.toml").threads == 4


def test_explicit_pyproject_reads_its_tool_table(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "pyproject.toml", "[tool.prefork]\nthreads = 5\n")
    assert load_in(tmp_path, {"config": "sub/pyproject.toml"}).threads == 5


def test_missing_explicit_file(tmp_path: Path) -> None:
    assert error_of(tmp_path, {"config": "nope.toml"}) == "config file 'nope.toml' not found"


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "prefork.toml", "workers = \n")
    assert error_of(tmp_path).startswith(f"{path}: not valid TOML: ")


def test_config_key_inside_a_config_file(tmp_path: Path) -> None:
    path = write(tmp_path / "prefork.toml", 'config = "other.toml"\n')
    assert "cannot name another config file" in error_of(tmp_path)
    assert str(path) in error_of(tmp_path)


# -- errors name the setting, the source and what is allowed ------------------------


def test_unknown_key_in_file(tmp_path: Path) -> None:
    path = write(tmp_path / "prefork.toml", "wokers = 4\n")
    assert error_of(tmp_path) == (
        f"{path}: unknown setting 'wokers' (see `prefork --help` or docs/settings.md)"
    )


def test_unknown_key_in_pyproject(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", "[tool.prefork]\nwokers = 4\n")
    assert error_of(tmp_path).startswith(f"{path}: unknown setting 'tool.prefork.wokers'")


@pytest.mark.parametrize(
    ("line", "setting", "allowed"),
    [
        ("timeout = true", "timeout", "expected a number of seconds"),
        ("timeout = -1", "timeout", ">= 0"),
        ('timeout = "soon"', "timeout", "expected a number of seconds"),
        ("workers = 4.5", "workers", "expected a positive integer, 'max'"),
        ("workers = 0", "workers", "expected a positive integer, 'max'"),
        ("threads = 0", "threads", "expected an integer >= 1"),
        ("backlog = [1]", "backlog", "expected an integer"),
        ("bind = 8000", "bind", "expected one or more addresses"),
        ("bind = []", "bind", "expected one or more addresses"),
        ("factory = 1", "factory", "expected true or false"),
        ("name = 5", "name", "expected a string"),
        ("log_level = 5", "log_level", "expected one of debug, info, warning, error, critical"),
        ('interface = "rsgi"', "interface", "expected one of auto, wsgi, asgi, asgi2"),
        ('max_memory = "lots"', "max_memory", "expected a size such as"),
        ("umask = 1000", "umask", "expected a mode between 0 and 0o777"),
        ('access_logformat = "%(h)d"', "access_logformat", "conversion cannot render"),
    ],
)
def test_bad_value_in_file(tmp_path: Path, line: str, setting: str, allowed: str) -> None:
    path = write(tmp_path / "prefork.toml", line + "\n")
    message = error_of(tmp_path)
    key = line.partition(" = ")[0]
    assert message.startswith(f"{path}: key {key}: invalid value ")
    assert f" for {setting}: " in message
    assert allowed in message


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("PREFORK_WORKERS", "many", "expected a positive integer, 'max'"),
        ("PREFORK_KEEP_ALIVE", "nan", "expected a number of seconds"),
        ("PREFORK_PRELOAD", "maybe", "expected true or false"),
        ("PREFORK_LIFESPAN", "sometimes", "expected one of auto, on, off"),
        ("PREFORK_LIMIT_REQUEST_BODY", "1T", "expected a size such as"),
    ],
)
def test_bad_value_in_environment(tmp_path: Path, name: str, value: str, allowed: str) -> None:
    message = error_of(tmp_path, **{name: value})
    setting = name.removeprefix("PREFORK_").lower()
    assert message.startswith(f"environment {name}: invalid value {value!r} for {setting}: ")
    assert allowed in message


def test_unknown_prefork_variables_are_ignored(tmp_path: Path) -> None:
    assert load_in(tmp_path, PREFORK_NOT_A_SETTING="x") == Config(app="app:application")


def test_cross_setting_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no application given"):
        load({}, environ={}, cwd=tmp_path)
    assert "must be given together" in error_of(tmp_path, {"certfile": "cert.pem"})


# -- parsers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parse", "raw", "expected"),
    [
        (config.parse_size, "512M", 512 * 1024**2),
        (config.parse_size, "1G", 1024**3),
        (config.parse_size, "64k", 65536),
        (config.parse_size, "200MiB", 200 * 1024**2),
        (config.parse_size, 4096, 4096),
        (config.parse_umask, "022", 0o022),
        (config.parse_umask, "0o027", 0o027),
        (config.parse_umask, "0x1f", 0x1F),
        (config.parse_umask, "0", 0),
        (config.parse_umask, 0o077, 0o077),
        (WorkerCount.parse, "max", WorkerCount(None)),
        (WorkerCount.parse, "MAX", WorkerCount(None)),
        (WorkerCount.parse, "-1", WorkerCount(None, 1)),
        (WorkerCount.parse, 8, WorkerCount(8)),
        (config.parse_bool, "yes", True),
        (config.parse_bool, "Off", False),
        (config.parse_bool, True, True),
        (config.parse_seconds, "2.5", 2.5),
        (config.parse_seconds, 3, 3.0),
        (config.parse_binds, "127.0.0.1:1,unix:/run/a.sock", ("127.0.0.1:1", "unix:/run/a.sock")),
        (config.parse_binds, ["[::1]:80"], ("[::1]:80",)),
        (config.parse_ip_list, "10.0.0.1, 10.0.0.2", ("10.0.0.1", "10.0.0.2")),
        (config.parse_ip_list, "*", ("*",)),
        (config.parse_optional_str, "", None),
    ],
)
def test_parser_accepts(parse: config.Parser, raw: object, expected: object) -> None:
    assert parse(raw) == expected


@pytest.mark.parametrize(
    ("parse", "raw"),
    [
        (config.parse_size, "-1"),
        (config.parse_size, "1.5G"),
        (config.parse_size, True),
        (config.parse_umask, "0o1000"),
        (config.parse_umask, "rwx"),
        (WorkerCount.parse, "0"),
        (WorkerCount.parse, "-0"),
        (WorkerCount.parse, "four"),
        (config.parse_bool, 1),
        (config.parse_seconds, "inf"),
        (config.parse_seconds, False),
        (config.parse_count, "-3"),
        (config.parse_count, "1e3"),
        (config.parse_positive, "0"),
        (config.parse_binds, "127.0.0.1:1,,x"),
        (config.parse_str, 3),
    ],
)
def test_parser_refuses(parse: config.Parser, raw: object) -> None:
    with pytest.raises(ValueError, match=r"expected|cannot"):
        parse(raw)


# -- the table itself -----------------------------------------------------------------


def test_every_setting_is_fully_declared() -> None:
    flags: list[str] = []
    for f in config.SETTINGS:
        meta = config.meta(f)
        assert meta.doc.strip(), f.name
        assert meta.section, f.name
        flags.extend(meta.flags)
        # The default must survive its own parser (a default cannot be invalid).
        default = f.default
        if default is not None and f.name != "app":
            rendered = list(default) if isinstance(default, tuple) else default
            assert meta.parse(rendered) == default, f.name
    assert len(flags) == len(set(flags)), "a flag is declared twice"
    assert all(flag.startswith("-") for flag in flags)


# -- --print-config output ---------------------------------------------------------------


def test_print_config_round_trips(tmp_path: Path) -> None:
    original = dataclasses.replace(
        Config(app="pkg.mod:make()"),
        bind=("127.0.0.1:0", "unix:/tmp/x y.sock"),
        workers=WorkerCount(None),
        timeout=2.5,
        umask=0o027,
        max_memory=512 * 1024**2,
        forwarded_allow_ips=("*",),
        root_path='/odd "path"\\with\ttab\x01and\nnewline',
        access_logformat='%(h)s "%(r)s" \u00e9 %({x-id}i)s',
        name="svc",
        server_header=False,
    )
    text = config.as_toml(original)
    document = tomllib.loads(text)
    assert "config" not in document
    assert "chdir" not in document  # unset settings are comments
    assert document["umask"] == 0o027
    assert "umask = 0o027" in text
    path = write(tmp_path / "printed.toml", text)
    reloaded = load({"config": str(path)}, environ={}, cwd=tmp_path)
    assert dataclasses.replace(reloaded, config=None) == original


def test_print_config_reflects_every_source(tmp_path: Path) -> None:
    write(tmp_path / "prefork.toml", "threads = 2\ntimeout = 11\n")
    loaded = load_in(tmp_path, {"keep_alive": 7.0}, PREFORK_TIMEOUT="22", WEB_CONCURRENCY="5")
    document = tomllib.loads(config.as_toml(loaded))
    assert document["threads"] == 2
    assert document["timeout"] == 22.0
    assert document["keep_alive"] == 7.0
    assert document["workers"] == "5"
    assert f'# config file read: "{tmp_path / "prefork.toml"}"' in config.as_toml(loaded)


def test_app_may_come_from_file_or_environment(tmp_path: Path) -> None:
    write(tmp_path / "prefork.toml", 'app = "site:wsgi"\n')
    assert load({}, environ={}, cwd=tmp_path).app == "site:wsgi"
    assert load({}, environ={"PREFORK_APP": "env:app"}, cwd=tmp_path).app == "env:app"
    assert load({"app": "cli:app"}, environ={"PREFORK_APP": "env:app"}, cwd=tmp_path).app == (
        "cli:app"
    )
