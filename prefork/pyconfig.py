"""Python config files (`-c gunicorn.conf.py`): module-level names are settings.

The file is executed like gunicorn executes it, and its module-level names
are read the way gunicorn reads them:

- a prefork setting name (`workers`, `keep_alive`, ...) or a gunicorn one
  that means the same (`keepalive`, `preload_app`, `accesslog`, ...; the
  table below) sets that setting, validated by the setting's own parser;
- a server hook name (`post_fork`, `child_exit`, ...; prefork/hooks.py) bound
  to a callable becomes that hook;
- a gunicorn setting prefork has no equivalent for is named in one warning
  line, unless its value is off (False, None, 0, empty), which is what
  prefork does anyway (`daemon = False` in a template is not worth a word);
- any other name (an import, a helper function, a constant) is ignored, as
  gunicorn ignores it.

The file is executed again on every reload (HUP), like a TOML file is read
again.
"""

from __future__ import annotations

import runpy
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from prefork.compat import parse_worker_class
from prefork.errors import ConfigError

# gunicorn setting name -> prefork setting name, where the two differ.
RENAMED: Final = {
    "wsgi_app": "app",
    "worker_class": "interface",
    "worker_connections": "limit_concurrency",
    "keepalive": "keep_alive",
    "preload_app": "preload",
    "raw_env": "env",
    "pidfile": "pid",
    "proc_name": "name",
    "accesslog": "access_logfile",
    "errorlog": "error_logfile",
    "loglevel": "log_level",
    "access_log_format": "access_logformat",
    "logconfig": "log_config",
    "logconfig_json": "log_config",
}

# gunicorn settings without a prefork equivalent (docs/migrating.md says what
# to use instead).  Names outside this list and the settings are not
# gunicorn's: helpers, imports and constants of the file itself.
UNSUPPORTED: Final = frozenset(
    {
        "reload_engine", "reload_extra_files", "spew", "check_config",
        "print_config", "sendfile", "daemon", "worker_tmp_dir", "initgroups",
        "tmp_upload_dir", "secure_scheme_headers", "disable_redirect_access_to_syslog",
        "logger_class", "logconfig_dict", "syslog_addr",
        "syslog", "syslog_prefix", "syslog_facility", "enable_stdio_inheritance",
        "statsd_host", "dogstatsd_tags", "statsd_prefix", "default_proc_name", "paste",
        "proxy_protocol", "proxy_allow_ips", "ssl_version", "suppress_ragged_eofs",
        "do_handshake_on_connect", "raw_paste_global_conf", "permit_obsolete_folding",
        "strip_header_spaces", "permit_unconventional_http_method",
        "permit_unconventional_http_version", "casefold_http_method", "forwarder_headers",
        "header_map", "tolerate_dangerous_framing",
    }
)  # fmt: skip


def execute(path: Path) -> dict[str, Any]:
    """Run the file; its module-level names.  A failure is one ConfigError line."""
    try:
        return runpy.run_path(str(path), run_name="__config__")
    except SystemExit:
        raise ConfigError(f"{path}: the config file called exit()") from None
    except BaseException as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        where = f", line {frames[-1].lineno}" if frames else ""
        raise ConfigError(f"{path}{where}: {type(exc).__name__}: {exc}") from None


def read(
    path: Path, setting_names: frozenset[str], hook_names: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Callable[..., Any]], list[str]]:
    """(raw setting values by prefork name, hooks, names with no equivalent)."""
    values: dict[str, Any] = {}
    hooks: dict[str, Callable[..., Any]] = {}
    unsupported: list[str] = []
    for name, value in execute(path).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if name in hook_names:
            if not callable(value):
                raise ConfigError(f"{path}: {name} must be a function (a server hook)")
            hooks[name] = value
        elif name == "config":
            raise ConfigError(f"{path}: {name}: a config file cannot name another config file")
        elif name in RENAMED or name in setting_names:
            target = RENAMED.get(name, name)
            if target in values:
                raise ConfigError(f"{path}: {name} and {target} set the same setting")
            try:
                values[target] = _gunicorn_value(name, target, value)
            except ValueError as exc:
                raise ConfigError(f"{path}: {name} {value!r}: {exc}") from None
        elif name in UNSUPPORTED and value:
            unsupported.append(name)
    return values, hooks, unsupported


def _gunicorn_value(name: str, target: str, value: Any) -> Any:
    """A gunicorn-typed value in the form prefork's parser takes."""
    if name == "worker_class":  # `interface` itself takes prefork's values
        return parse_worker_class(value)
    if target in ("user", "group", "workers") and isinstance(value, int):
        return str(value)  # gunicorn takes uids, gids and counts as ints
    return value
