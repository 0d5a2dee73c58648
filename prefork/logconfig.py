"""`--log-config FILE`: the operator's own `logging` configuration, as gunicorn and uvicorn take it.

- `*.json`, `*.toml`: `logging.config.dictConfig` (uvicorn's `--log-config
  x.json`, gunicorn's `--log-config-json`);
- `*.yaml`, `*.yml`: `dictConfig`, when PyYAML is installed (uvicorn);
- anything else (`*.ini`, `*.conf`): `logging.config.fileConfig` (gunicorn's
  `--log-config`).

`disable_existing_loggers` defaults to false here (Python's default, true,
would silence prefork's own logger and any library logger created before the
file is applied, a well-known trap that uvicorn's own config also avoids);
a file may still set it.  The file is checked when the configuration is
loaded (`check`), so a broken one is one line and exit status 2, also with
`--check-config`; it is applied after prefork's own logging setup in the
master and in every worker (`apply`), so it can restyle or redirect any
logger, `prefork` included.
"""

from __future__ import annotations

import configparser
import json
import logging.config
from pathlib import Path
from typing import Any

from prefork.errors import ConfigError


def _kind(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return {".json": "json", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}.get(suffix, "ini")


def _load_dict(path: str, kind: str) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"--log-config {path}: cannot read: {exc.strerror}") from None
    try:
        if kind == "json":
            document = json.loads(data)
        elif kind == "toml":
            import tomllib

            document = tomllib.loads(data.decode())
        else:
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:
                raise ConfigError(
                    f"--log-config {path}: YAML needs PyYAML (pip install pyyaml); "
                    "or write the same dictionary as JSON or TOML"
                ) from None
            document = yaml.safe_load(data)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"--log-config {path}: not valid {kind.upper()}: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != 1:
        raise ConfigError(
            f"--log-config {path}: expected a logging dictConfig mapping with version = 1"
        )
    document.setdefault("disable_existing_loggers", False)
    return document


def check(path: str) -> None:
    """Raise ConfigError if the file cannot be read or is not a logging configuration."""
    kind = _kind(path)
    if kind != "ini":
        _load_dict(path, kind)
        return
    parser = configparser.ConfigParser()
    try:
        read = parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigError(f"--log-config {path}: not valid INI: {exc}") from None
    if not read:
        raise ConfigError(f"--log-config {path}: cannot read it")
    if not parser.has_section("loggers"):
        raise ConfigError(f"--log-config {path}: a fileConfig file needs a [loggers] section")


def apply(path: str) -> None:
    """Apply the file; raises ConfigError when logging refuses it (bad class, bad level...)."""
    kind = _kind(path)
    try:
        if kind == "ini":
            logging.config.fileConfig(path, disable_existing_loggers=False)
        else:
            logging.config.dictConfig(_load_dict(path, kind))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"--log-config {path}: {exc}") from None
