"""Settings: each one declared exactly once, in the `Config` dataclass below.

Theory of operation
-------------------
A setting is a dataclass field whose metadata (built by `setting()`) holds its
flags, parser and documentation.  Everything else is generated from that one
declaration: the argparse command line (cli.py), the `PREFORK_*` environment
variables, the config-file keys, `--print-config` and docs/settings.md.

Sources, highest first: command line > environment (`PREFORK_<NAME>`) >
config file (`-c FILE`, else `./prefork.toml`, else `[tool.prefork]` in
`./pyproject.toml`) > the default written here.  `load()` merges them and
validates every value with the setting's parser; a bad value raises
`ConfigError` naming the setting, its source and what is allowed.

Config is data only: importing the app, binding sockets, building SSL
contexts and configuring logging live in their own modules.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from prefork.compat import parse_worker_class
from prefork.cpus import WorkerCount
from prefork.errors import ConfigError

Parser = Callable[[Any], Any]

ENV_PREFIX: Final = "PREFORK_"


_UNSET: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class Alias:
    """Another server's flag for a setting, accepted so its command lines work unchanged.

    `convert` turns the flag's argument into the setting's value (default: the
    setting's own parser); a flag with a `const` takes no argument and sets
    that value.  `part` names one half of a value built from two flags
    (uvicorn's --host and --port make one --bind address).
    """

    flag: str
    origin: str  # "gunicorn" or "uvicorn", for --help and docs/migrating.md
    convert: Parser | None = None
    const: Any = _UNSET
    part: str | None = None
    metavar: str | None = None

    @property
    def takes_value(self) -> bool:
        return self.const is _UNSET


@dataclass(frozen=True, slots=True)
class SettingMeta:
    flags: tuple[str, ...]
    parse: Parser
    doc: str
    section: str
    metavar: str | None = None
    repeatable: bool = False  # a flag given several times accumulates (--bind)
    aliases: tuple[Alias, ...] = ()

    @property
    def is_bool(self) -> bool:
        return self.parse is parse_bool


def setting(
    default: Any,
    *flags: str,
    parse: Parser,
    doc: str,
    section: str,
    metavar: str | None = None,
    repeatable: bool = False,
    aliases: tuple[Alias, ...] = (),
) -> Any:
    meta = SettingMeta(flags, parse, doc, section, metavar, repeatable, aliases)
    return field(default=default, metadata={"setting": meta})


# -- parsers: each accepts a string (command line, environment) or a TOML value
# -- and returns the typed value, or raises ValueError saying what is allowed.


def parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")  # noqa: TRY004 - parsers raise ValueError
    return value


def parse_optional_str(value: Any) -> str | None:
    text = parse_str(value)
    return text or None


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError("expected true or false")  # noqa: TRY004 - parsers raise ValueError
    text = value.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")  # noqa: TRY004 - parsers raise ValueError
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError("expected an integer")
    return int(text)


def parse_count(value: Any) -> int:
    """A non-negative integer; 0 usually means "no limit"."""
    number = _int(value)
    if number < 0:
        raise ValueError("expected an integer >= 0")
    return number


def parse_positive(value: Any) -> int:
    number = _int(value)
    if number < 1:
        raise ValueError("expected an integer >= 1")
    return number


def parse_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number of seconds")  # noqa: TRY004 - parsers raise ValueError
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError("expected a number of seconds") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError("expected a number of seconds >= 0")
    return seconds


_SIZE_UNITS: Final = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: Any) -> int:
    """Bytes, with an optional K/M/G suffix (powers of 1024): 512M, 1G, 65536."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = value, ""
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([kmgKMG]?)(?:i?[bB])?\s*", str(value))
        if not match:
            raise ValueError("expected a size such as 65536, 512K, 200M or 1G")
        number, unit = int(match[1]), match[2].lower()
    if number < 0:
        raise ValueError("expected a size >= 0")
    return number * _SIZE_UNITS[unit]


def parse_umask(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip()
        try:
            # A bare leading zero means octal (022), as in chmod and gunicorn's docs;
            # 0o, 0x and 0b prefixes are understood by int(text, 0).
            number = int(text, 8 if re.fullmatch(r"0[0-7]+", text) else 0)
        except ValueError:
            raise ValueError("expected an octal mode such as 0o022 or 022") from None
    if not 0 <= number <= 0o777:
        raise ValueError("expected a mode between 0 and 0o777")
    return number


def parse_binds(value: Any) -> tuple[str, ...]:
    # One string may hold several addresses separated by commas (PREFORK_BIND);
    # no address form contains a comma.
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError("expected one or more addresses")
    binds = tuple(parse_str(item).strip() for item in items)
    if any(not b for b in binds):
        raise ValueError("an address cannot be empty")
    from prefork.sockets import parse_address  # sockets imports this module

    for spec in binds:
        parse_address(spec)  # its ValueError names the address and the forms allowed
    return binds


def parse_patterns(value: Any) -> tuple[str, ...]:
    """Paths or glob patterns: repeated flags, a TOML list, or commas in the environment."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError("expected a list of paths or patterns")  # noqa: TRY004 - parsers raise ValueError
    return tuple(parse_str(item).strip() for item in items if str(item).strip())


def parse_host_port(value: Any) -> str | None:
    """HOST:PORT or [IPV6]:PORT, for the master's own endpoint; empty means off."""
    text = parse_str(value).strip()
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9100 or [::1]:9100")
    return text


def split_host_port(text: str) -> tuple[str, int]:
    """The (host, port) of a value accepted by parse_host_port."""
    host, _, port = text.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def parse_ip_list(value: Any) -> tuple[str, ...]:
    """Trusted proxies: IP addresses, CIDR networks, `unix`, `*`; checked now, used by workers."""
    from prefork.http.forwarded import parse_trust_entry

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError("expected a comma-separated list of addresses, or *")  # noqa: TRY004 - parsers raise ValueError
    entries = tuple(parse_str(item).strip() for item in items if str(item).strip())
    for entry in entries:
        parse_trust_entry(entry)
    return entries


@dataclass(frozen=True, slots=True)
class Choice:
    """Parser for a setting with a fixed set of values; `allowed` feeds --help and docs."""

    allowed: tuple[str, ...]

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in self.allowed:
            raise ValueError("expected one of " + ", ".join(self.allowed))
        return value.strip().lower()


def choice(*allowed: str) -> Choice:
    return Choice(allowed)


def parse_env(value: Any) -> tuple[str, ...]:
    """KEY=VALUE pairs (gunicorn's -e/raw_env): one string, a list, or a TOML table."""
    if isinstance(value, dict):
        value = [f"{key}={item}" for key, item in value.items()]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError("expected KEY=VALUE pairs")  # noqa: TRY004 - parsers raise ValueError
    pairs = []
    for item in items:
        key, sep, _ = parse_str(item).partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{item!r}: expected KEY=VALUE, KEY a variable name")
        pairs.append(item)
    return tuple(pairs)


def parse_paths(value: Any) -> tuple[str, ...]:
    """Directories, comma-separated (gunicorn's --pythonpath) or a list."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError("expected comma-separated directories")  # noqa: TRY004 - parsers raise ValueError
    return tuple(parse_str(item).strip() for item in items if str(item).strip())


CERT_REQS: Final = ("none", "optional", "required")


def parse_cert_reqs(value: Any) -> str:
    """none, optional or required; gunicorn's and uvicorn's 0/1/2 (ssl.CERT_*) too."""
    # ssl.CERT_REQUIRED in a gunicorn.conf.py is an IntEnum: its str() is no number.
    integer = isinstance(value, int) and not isinstance(value, bool)
    text = str(int(value)) if integer else str(value).strip().lower()
    if text.isdigit() and int(text) < len(CERT_REQS):
        return CERT_REQS[int(text)]
    if text in CERT_REQS:
        return text
    raise ValueError("expected none, optional or required (or 0, 1, 2)")


def parse_access_logformat(value: Any) -> str:
    """A gunicorn access-log format, compiled now so a bad one fails at startup."""
    from prefork.observe.accesslog import AccessLogFormatter

    text = parse_str(value)
    AccessLogFormatter(text)  # its ValueError says which conversion cannot work
    return text


def _unix_bind(path: str) -> str:
    """the same as `--bind unix:PATH`"""
    if not path:
        raise ValueError("expected a socket path")
    return "unix:" + path


def _fd_bind(number: str) -> str:
    """the same as `--bind fd://N`"""
    if not number.isdigit():
        raise ValueError("expected a file descriptor number")
    return "fd://" + number


def bind_from_host_port(host: str | None, port: str | None) -> str:
    """uvicorn's --host/--port as one --bind address (its defaults: 127.0.0.1, 8000)."""
    host = host or "127.0.0.1"
    if not (port or "8000").isdigit():
        raise ValueError(f"--port {port!r}: expected a port number")
    return f"[{host}]:{port or 8000}" if ":" in host else f"{host}:{port or 8000}"


LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")

# gunicorn's default access log format, so log parsers written for it keep working.
DEFAULT_ACCESS_LOG_FORMAT: Final = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


@dataclass(frozen=True, slots=True)
class Config:
    # -- application ---------------------------------------------------------
    app: str = setting(
        "",
        parse=parse_str,
        section="Application",
        metavar="APP",
        doc="The application: `module:attr`, `module:attr.sub`, or a factory call "
        "`module:create_app()`.",
        aliases=(Alias("--wsgi-app", "gunicorn", metavar="APP"),),
    )
    factory: bool = setting(
        False,
        "--factory",
        parse=parse_bool,
        section="Application",
        doc="Treat APP as a factory: call it with no arguments to get the application.",
    )
    chdir: str | None = setting(
        None,
        "--chdir",
        parse=parse_optional_str,
        section="Application",
        metavar="DIR",
        doc="Change to DIR before loading the application.",
    )
    app_dir: str | None = setting(
        None,
        "--app-dir",
        parse=parse_optional_str,
        section="Application",
        metavar="DIR",
        doc="Put DIR first on sys.path when importing the application (default: the "
        "current directory).",
    )
    interface: str = setting(
        "auto",
        "--interface",
        parse=choice("auto", "wsgi", "asgi", "asgi2"),
        section="Application",
        aliases=(
            Alias("-k", "gunicorn", parse_worker_class, metavar="CLASS"),
            Alias("--worker-class", "gunicorn", parse_worker_class, metavar="CLASS"),
        ),
        doc="Application interface. `auto` detects it: a coroutine function or an object "
        "with an async `__call__` is ASGI 3; otherwise the call signature decides: "
        "`(scope)` is ASGI 2, `(environ, start_response)` WSGI, for a function, an object "
        "or a class alike (a class is called through its constructor).",
    )
    lifespan: str = setting(
        "auto",
        "--lifespan",
        parse=choice("auto", "on", "off"),
        section="Application",
        doc="ASGI lifespan protocol. `auto` runs it and carries on if the app does not "
        "support it; `on` makes a failure fatal; `off` never runs it.",
    )
    preload: bool = setting(
        False,
        "--preload",
        parse=parse_bool,
        section="Application",
        doc="Import the application in the master before forking, so workers share its "
        "memory copy-on-write. Reload then re-executes the master (see docs/operations.md).",
        aliases=(Alias("--preload-app", "gunicorn", const=True),),
    )
    root_path: str = setting(
        "",
        "--root-path",
        parse=parse_str,
        section="Application",
        metavar="PATH",
        doc="Mount point of the application (WSGI SCRIPT_NAME, ASGI root_path).",
    )
    env: tuple[str, ...] = setting(
        (),
        "-e",
        "--env",
        parse=parse_env,
        section="Application",
        metavar="KEY=VALUE",
        repeatable=True,
        doc="Set an environment variable before the application is imported (in each worker; "
        "in the master too with --preload), so a reload applies a changed value. Repeat for "
        "several; a TOML table or list in the config file.",
    )
    pythonpath: tuple[str, ...] = setting(
        (),
        "--pythonpath",
        parse=parse_paths,
        section="Application",
        metavar="DIRS",
        doc="Comma-separated directories put first on sys.path before the application is "
        "imported (after --app-dir).",
    )
    config: str | None = setting(
        None,
        "-c",
        "--config",
        parse=parse_optional_str,
        section="Application",
        metavar="FILE",
        doc="Config file: TOML, or Python (a gunicorn.conf.py: module-level names are "
        "settings, gunicorn's names included, and functions named like gunicorn's server "
        "hooks are hooks; see docs/migrating.md). Default: ./prefork.toml if present, else "
        "the [tool.prefork] table of ./pyproject.toml.",
    )

    env_file: str | None = setting(
        None,
        "--env-file",
        parse=parse_optional_str,
        section="Application",
        metavar="FILE",
        doc="Set the application's environment from a dotenv file (KEY=VALUE lines); "
        "variables already set win. Read again on reload.",
    )

    # -- development -----------------------------------------------------------
    reload: bool = setting(
        False,
        "--reload",
        parse=parse_bool,
        section="Development",
        doc="Reload the workers when a source file changes (for development; see "
        "docs/operations.md). Uses watchfiles when installed, else polling.",
    )
    reload_dirs: tuple[str, ...] = setting(
        (),
        "--reload-dir",
        parse=parse_patterns,
        section="Development",
        metavar="DIR",
        repeatable=True,
        doc="Directory to watch with --reload; repeat for several. Default: the "
        "--chdir directory, else the current one.",
    )
    reload_includes: tuple[str, ...] = setting(
        (),
        "--reload-include",
        parse=parse_patterns,
        section="Development",
        metavar="GLOB",
        repeatable=True,
        doc="More files whose change reloads, besides *.py (a glob on the name, or "
        "on the relative path if it has a `/`); repeat for several.",
    )
    reload_excludes: tuple[str, ...] = setting(
        (),
        "--reload-exclude",
        parse=parse_patterns,
        section="Development",
        metavar="GLOB",
        repeatable=True,
        doc="More files and directories never watched, besides hidden ones, "
        "bytecode, editor swap files and __pycache__; repeat for several.",
    )

    # -- server socket -------------------------------------------------------
    bind: tuple[str, ...] = setting(
        ("127.0.0.1:8000",),
        "-b",
        "--bind",
        parse=parse_binds,
        section="Server socket",
        metavar="ADDRESS",
        repeatable=True,
        aliases=(
            Alias("--uds", "uvicorn", _unix_bind, metavar="PATH"),
            Alias("--fd", "uvicorn", _fd_bind, metavar="N"),
            Alias("--host", "uvicorn", part="host", metavar="HOST"),
            Alias("--port", "uvicorn", part="port", metavar="PORT"),
        ),
        doc="Where to listen: HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N. Repeat for "
        "several (a list in the config file, commas in the environment). Port 0 picks a "
        "free port (printed in the banner).",
    )
    backlog: int = setting(
        2048,
        "--backlog",
        parse=parse_positive,
        section="Server socket",
        metavar="N",
        doc="Listen queue length (gunicorn's default; the kernel caps it at somaxconn).",
    )
    reuse_port: bool = setting(
        False,
        "--reuse-port",
        parse=parse_bool,
        section="Server socket",
        doc="Give each worker its own SO_REUSEPORT socket instead of sharing the master's. "
        "The kernel spreads connections by hash; see docs/operations.md for the trade-off "
        "on reload.",
    )
    balance: str = setting(
        "connections",
        "--balance",
        parse=choice("connections", "off"),
        section="Server socket",
        doc="How workers share a shared listener's connections. `connections`: each worker "
        "accepts only its share of the open and queued connections, and one holding more "
        "than its share answers a few kept-alive connections with `Connection: close`. "
        "`off`: whichever worker wakes first takes up to 16 at a time. "
        "See docs/operations.md.",
    )
    certfile: str | None = setting(
        None,
        "--certfile",
        parse=parse_optional_str,
        section="Server socket",
        metavar="FILE",
        aliases=(Alias("--ssl-certfile", "uvicorn", metavar="FILE"),),
        doc="TLS certificate (PEM). Enables HTTPS on every listener, unix sockets included "
        "(as gunicorn and uvicorn do). Read once by the master: a missing or bad file stops "
        "prefork at startup (exit status 2).",
    )
    keyfile: str | None = setting(
        None,
        "--keyfile",
        parse=parse_optional_str,
        section="Server socket",
        metavar="FILE",
        aliases=(Alias("--ssl-keyfile", "uvicorn", metavar="FILE"),),
        doc="TLS private key (PEM).",
    )
    keyfile_password: str | None = setting(
        None,
        "--keyfile-password",
        parse=parse_optional_str,
        section="Server socket",
        metavar="PASSWORD",
        aliases=(Alias("--ssl-keyfile-password", "uvicorn", metavar="PASSWORD"),),
        doc="Password of an encrypted --keyfile. Prefer the environment variable or the "
        "config file: other users can read a command line in ps.",
    )
    ca_certs: str | None = setting(
        None,
        "--ca-certs",
        parse=parse_optional_str,
        section="Server socket",
        metavar="FILE",
        aliases=(Alias("--ssl-ca-certs", "uvicorn", metavar="FILE"),),
        doc="CA certificates (PEM) that client certificates are verified against.",
    )
    cert_reqs: str = setting(
        "none",
        "--cert-reqs",
        parse=parse_cert_reqs,
        section="Server socket",
        metavar="{none,optional,required}",
        aliases=(Alias("--ssl-cert-reqs", "uvicorn", metavar="N"),),
        doc="Client certificates (mutual TLS): `required` refuses a handshake without a valid "
        "one, `optional` verifies one if sent. Needs --ca-certs. gunicorn's and uvicorn's "
        "0, 1, 2 are accepted. The certificate's details reach the app (docs/migrating.md).",
    )
    ciphers: str | None = setting(
        None,
        "--ciphers",
        parse=parse_optional_str,
        section="Server socket",
        metavar="CIPHERS",
        aliases=(Alias("--ssl-ciphers", "uvicorn", metavar="CIPHERS"),),
        doc="TLS 1.2 cipher suites, in OpenSSL's syntax (e.g. `ECDHE+AESGCM`). Default: "
        "Python's, which excludes weak ones. TLS 1.3 suites are not configurable.",
    )
    tls_min_version: str = setting(
        "1.2",
        "--tls-min-version",
        parse=choice("1.2", "1.3"),
        section="Server socket",
        doc="Oldest TLS version accepted (1.0 and 1.1 are deprecated by RFC 8996).",
    )

    # -- workers -------------------------------------------------------------
    workers: WorkerCount = setting(  # noqa: RUF009 - WorkerCount is frozen
        WorkerCount(1),
        "-w",
        "--workers",
        parse=WorkerCount.parse,
        section="Workers",
        metavar="N",
        doc="Number of worker processes: a count, `max` (the CPUs this process may use, "
        "honouring affinity and a cgroup cpu.max quota) or -N (max minus N). Default: "
        "$WEB_CONCURRENCY if set, else 1.",
    )
    threads: int = setting(
        1,
        "--threads",
        parse=parse_positive,
        section="Workers",
        metavar="N",
        doc="WSGI only: run the application on a pool of N threads per worker. With 1 the "
        "app runs on the worker's event loop thread (fastest; one request at a time "
        "per worker, like gunicorn's sync worker, but keep-alive is cheap).",
    )
    timeout: float = setting(
        30.0,
        "-t",
        "--timeout",
        parse=parse_seconds,
        section="Workers",
        metavar="SECONDS",
        doc="A worker silent for this long (its event loop blocked) is killed with SIGABRT, "
        "which dumps its tracebacks, then SIGKILL, and replaced. 0 disables.",
    )
    graceful_timeout: float = setting(
        30.0,
        "--graceful-timeout",
        parse=parse_seconds,
        section="Workers",
        metavar="SECONDS",
        aliases=(Alias("--timeout-graceful-shutdown", "uvicorn", metavar="SECONDS"),),
        doc="How long a stopping or retiring worker may take to finish in-flight requests "
        "before it is killed.",
    )
    boot_timeout: float = setting(
        60.0,
        "--boot-timeout",
        parse=parse_seconds,
        section="Workers",
        metavar="SECONDS",
        doc="How long a new worker may take to import the app and finish lifespan startup.",
    )
    max_requests: int = setting(
        0,
        "--max-requests",
        parse=parse_count,
        section="Workers",
        metavar="N",
        aliases=(Alias("--limit-max-requests", "uvicorn", metavar="N"),),
        doc="Replace a worker (gracefully) after it served N requests: at its Nth request "
        "it stops taking new ones (keep-alive answered with `Connection: close`) while "
        "its replacement boots. 0 disables.",
    )
    max_requests_jitter: int = setting(
        0,
        "--max-requests-jitter",
        parse=parse_count,
        section="Workers",
        metavar="N",
        doc="Add a random 0..N to --max-requests per worker so they do not all restart together.",
    )
    max_memory: int = setting(
        0,
        "--max-memory",
        parse=parse_size,
        section="Workers",
        metavar="SIZE",
        doc="Memory limit per worker, in PM2's units (300M, 1G, 512K). Each worker checks "
        "itself every 0.1 s: over SIZE it stops taking new connections and is replaced "
        "(gracefully, never mid-request); over 1.5 x SIZE it is ended after its in-flight "
        "requests even if no replacement is ready. 0 disables.",
    )
    memory_metric: str = setting(
        "rss",
        "--memory-metric",
        parse=choice("rss", "uss", "pss"),
        section="Workers",
        doc="What --max-memory measures: `rss` (resident memory, what PM2 and the OOM "
        "killer count), `uss` (pages only this worker uses) or `pss` (its share of shared "
        "pages). With --preload, `uss` or `pss` do not count the app pages shared with "
        "the master.",
    )
    request_timeout: float = setting(
        0.0,
        "--request-timeout",
        parse=parse_seconds,
        section="Workers",
        metavar="SECONDS",
        doc="Answer 504 to a request not answered within SECONDS (the connection is closed "
        "if the response had started). ASGI requests are cancelled; a threaded WSGI "
        "request's late result is discarded; an inline WSGI call cannot be interrupted "
        "(--timeout covers it). 0 disables.",
    )
    reload_batch: int = setting(
        1,
        "--reload-batch",
        parse=parse_positive,
        section="Workers",
        metavar="N",
        doc="Workers replaced at once during a rolling reload. 1 keeps the most capacity "
        "serving; raise it to reload large pools faster.",
    )

    # -- HTTP ----------------------------------------------------------------
    keep_alive: float = setting(
        5.0,
        "--keep-alive",
        parse=parse_seconds,
        section="HTTP",
        metavar="SECONDS",
        aliases=(Alias("--timeout-keep-alive", "uvicorn", metavar="SECONDS"),),
        doc="Close a keep-alive connection idle for this long (uvicorn's default; nginx "
        "uses 75). 0 disables keep-alive.",
    )
    header_timeout: float = setting(
        10.0,
        "--header-timeout",
        parse=parse_seconds,
        section="HTTP",
        metavar="SECONDS",
        doc="Time allowed to receive a complete request header block once its first byte "
        "arrived (slowloris defence; answered with 408).",
    )
    body_timeout: float = setting(
        30.0,
        "--body-timeout",
        parse=parse_seconds,
        section="HTTP",
        metavar="SECONDS",
        doc="Longest pause allowed while receiving a request body (nginx "
        "client_body_timeout is 60).",
    )
    send_timeout: float = setting(
        30.0,
        "--send-timeout",
        parse=parse_seconds,
        section="HTTP",
        metavar="SECONDS",
        doc="Close a connection whose client has not read any of the response for this "
        "long (nginx send_timeout is 60).",
    )
    limit_request_line: int = setting(
        4094,
        "--limit-request-line",
        parse=parse_count,
        section="HTTP",
        metavar="BYTES",
        doc="Longest request line (method, target, version), answered with 414. gunicorn's "
        "default. 0 means 65536.",
    )
    limit_request_fields: int = setting(
        100,
        "--limit-request-fields",
        parse=parse_count,
        section="HTTP",
        metavar="N",
        doc="Most header fields in one request, answered with 431. gunicorn's default.",
    )
    limit_request_field_size: int = setting(
        8190,
        "--limit-request-field_size",
        "--limit-request-field-size",
        parse=parse_count,
        section="HTTP",
        metavar="BYTES",
        doc="Longest single header field (name and value), answered with 431. gunicorn's default.",
    )
    limit_request_headers: int = setting(
        65536,
        "--limit-request-headers",
        parse=parse_positive,
        section="HTTP",
        metavar="BYTES",
        doc="Largest whole header block, answered with 431 (nginx's "
        "large_client_header_buffers allows 4 x 8 KiB; we allow 64 KiB).",
    )
    limit_request_body: int = setting(
        0,
        "--limit-request-body",
        parse=parse_size,
        section="HTTP",
        metavar="SIZE",
        doc="Largest request body, answered with 413 (checked against Content-Length "
        "before reading, and while streaming chunked bodies). 0 means no limit, like "
        "gunicorn and uvicorn; nginx defaults to 1M.",
    )
    limit_concurrency: int = setting(
        0,
        "--limit-concurrency",
        parse=parse_count,
        section="HTTP",
        metavar="N",
        aliases=(Alias("--worker-connections", "gunicorn", metavar="N"),),
        doc="Most connections one worker holds; beyond it new requests get 503 with "
        "Retry-After. 0 means no limit.",
    )
    server_header: bool = setting(
        True,
        "--server-header",
        parse=parse_bool,
        section="HTTP",
        doc="Send `Server: prefork` (use --no-server-header to omit it).",
    )
    forwarded_allow_ips: tuple[str, ...] = setting(
        ("127.0.0.1", "::1", "unix"),
        "--forwarded-allow-ips",
        parse=parse_ip_list,
        section="HTTP",
        metavar="IPS",
        # gunicorn keeps a second list for PROXY protocol peers; prefork has one.
        aliases=(
            Alias("--no-proxy-headers", "uvicorn", const=()),
            Alias("--proxy-allow-from", "gunicorn"),
        ),
        doc="Comma-separated peers trusted to say who the client is: IP addresses, CIDR "
        "networks (10.0.0.0/8), `unix` (peers on a unix socket) or `*` (every peer). "
        "From these only, X-Forwarded-For/-Proto/-Host/-Port and `Forwarded` are "
        "believed (see docs/operations.md, Behind a proxy), and a PROXY protocol header "
        "is accepted. The default trusts the local machine, like gunicorn "
        "(127.0.0.1,::1; gunicorn trusts every unix-socket peer as well).",
    )
    proxy_protocol: bool = setting(
        False,
        "--proxy-protocol",
        parse=parse_bool,
        section="HTTP",
        doc="Every connection starts with a PROXY protocol header (v1 or v2, as HAProxy's "
        "`send-proxy` and cloud network load balancers send it), whose client address "
        "replaces the peer's. Only peers in --forwarded-allow-ips may send it; a missing "
        "or malformed header gets 400 and the connection closes. Not with --certfile.",
    )

    request_id: bool = setting(
        False,
        "--request-id",
        parse=parse_bool,
        section="HTTP",
        doc="Give every request one X-Request-ID: a trusted proxy's (--forwarded-allow-ips) "
        "is kept, any other request gets a new one. Off by default: without it the "
        "header passes through untouched.",
    )

    # -- WebSocket -----------------------------------------------------------
    ws: str = setting(
        "auto",
        "--ws",
        parse=choice("auto", "none", "websockets"),
        section="WebSocket",
        doc="WebSocket support for ASGI apps (RFC 6455 over the HTTP/1.1 Upgrade). `websockets` "
        "frames with the sans-IO protocol of the `websockets` library (a dependency); `auto` "
        "is the same; `none` serves Upgrade requests as ordinary HTTP requests. WSGI apps "
        "always get Upgrade requests as ordinary requests.",
    )
    ws_max_size: int = setting(
        16 * 1024**2,
        "--ws-max-size",
        parse=parse_size,
        section="WebSocket",
        metavar="SIZE",
        doc="Largest incoming WebSocket message (after decompression); a larger one closes "
        "the connection with 1009. uvicorn's default. 0 means no limit.",
    )
    ws_ping_interval: float = setting(
        20.0,
        "--ws-ping-interval",
        parse=parse_seconds,
        section="WebSocket",
        metavar="SECONDS",
        doc="Send a ping on every WebSocket this often (whole seconds: the server clock "
        "ticks once a second). 0 disables.",
    )
    ws_ping_timeout: float = setting(
        20.0,
        "--ws-ping-timeout",
        parse=parse_seconds,
        section="WebSocket",
        metavar="SECONDS",
        doc="Close a WebSocket with 1011 when no pong answers a ping within this long. 0 disables.",
    )
    ws_per_message_deflate: bool = setting(
        True,
        "--ws-per-message-deflate",
        parse=parse_bool,
        section="WebSocket",
        doc="Offer permessage-deflate compression (RFC 7692) to clients that ask for it, "
        "with 12-bit windows and zlib memLevel 5 (the websockets library's defaults: tens "
        "of KiB per compressed connection, against about 300 KiB with zlib's defaults).",
    )
    ws_shutdown_grace: float = setting(
        5.0,
        "--ws-shutdown-grace",
        parse=parse_seconds,
        section="WebSocket",
        metavar="SECONDS",
        doc="When a worker drains (reload, stop, retirement), open WebSockets keep working "
        "this long, then are closed with 1012 (service restart) on a reload or 1001 (going "
        "away) on a stop; the close handshake then has what remains of --graceful-timeout.",
    )

    # -- logging -------------------------------------------------------------
    log_level: str = setting(
        "info",
        "--log-level",
        parse=choice(*LOG_LEVELS),
        section="Logging",
        metavar="LEVEL",
        doc="Error log level: " + ", ".join(LOG_LEVELS) + ".",
    )
    log_format: str = setting(
        "text",
        "--log-format",
        parse=choice("text", "json"),
        section="Logging",
        metavar="FORMAT",
        doc="`text` (gunicorn's layout) or `json` (one object per line) for the error "
        "log, the access log and the application's own log records.",
    )
    log_config: str | None = setting(
        None,
        "--log-config",
        parse=parse_optional_str,
        section="Logging",
        metavar="FILE",
        aliases=(Alias("--log-config-json", "gunicorn", metavar="FILE"),),
        doc="A logging configuration applied after prefork's own: dictConfig as JSON, "
        "TOML or YAML, or gunicorn's INI (fileConfig). See docs/logging.md.",
    )
    error_logfile: str = setting(
        "-",
        "--error-logfile",
        "--log-file",
        parse=parse_str,
        section="Logging",
        metavar="FILE",
        doc="Error log file; `-` is stderr. Reopened on SIGUSR1.",
    )
    access_logfile: str | None = setting(
        None,
        "--access-logfile",
        parse=parse_optional_str,
        section="Logging",
        metavar="FILE",
        aliases=(
            Alias("--access-log", "uvicorn", const="-"),
            Alias("--no-access-log", "uvicorn", const=None),
        ),
        doc="Access log file; `-` is stdout. Off unless given. Reopened on SIGUSR1.",
    )
    access_logformat: str = setting(
        DEFAULT_ACCESS_LOG_FORMAT,
        "--access-logformat",
        parse=parse_access_logformat,
        section="Logging",
        metavar="FORMAT",
        doc="gunicorn-compatible access log format; see docs/logging.md for the atoms.",
    )
    capture_output: bool = setting(
        False,
        "--capture-output",
        parse=parse_bool,
        section="Logging",
        doc="Send what the app prints on stdout in the workers to the error log "
        "(--error-logfile) instead of prefork's stdout, as gunicorn does; its stderr goes "
        "there always.",
    )

    # -- metrics ---------------------------------------------------------------
    metrics_bind: str | None = setting(
        None,
        "--metrics-bind",
        parse=parse_host_port,
        section="Metrics",
        metavar="HOST:PORT",
        doc="Serve /metrics (Prometheus), /healthz and /readyz from the master on this "
        "address; see docs/operations.md. Off unless given.",
    )

    # -- process -------------------------------------------------------------
    name: str | None = setting(
        None,
        "-n",
        "--name",
        parse=parse_optional_str,
        section="Process",
        metavar="NAME",
        doc="Name shown in process titles (`prefork: master [NAME]`) and logs.",
    )
    pid: str | None = setting(
        None,
        "-p",
        "--pid",
        parse=parse_optional_str,
        section="Process",
        metavar="FILE",
        doc="Write the master's pid to FILE (removed on exit).",
    )
    user: str | None = setting(
        None,
        "-u",
        "--user",
        parse=parse_optional_str,
        section="Process",
        metavar="USER",
        doc="Run workers as this user (name or uid); the master must start as root.",
    )
    group: str | None = setting(
        None,
        "-g",
        "--group",
        parse=parse_optional_str,
        section="Process",
        metavar="GROUP",
        doc="Run workers as this group (name or gid).",
    )
    umask: int = setting(
        0o022,
        "-m",
        "--umask",
        parse=parse_umask,
        section="Process",
        metavar="MODE",
        doc="umask of the master and workers; also decides unix socket permissions.",
    )
    control_socket: str | None = setting(
        None,
        "--control-socket",
        parse=parse_optional_str,
        section="Process",
        metavar="PATH",
        doc="Unix socket for `prefork status|reload|scale|stop`. Default: "
        "$XDG_RUNTIME_DIR/prefork/NAME.sock, else /tmp/prefork-UID/NAME.sock.",
    )

    # -- not settings: what a Python config file brought besides them ----------
    # Server hooks by name (prefork/hooks.py); only a Python config file sets them.
    hooks: Mapping[str, Callable[..., Any]] = field(default_factory=dict, compare=False)
    # One-line notes about the file (gunicorn settings it set that prefork lacks).
    file_warnings: tuple[str, ...] = field(default=(), compare=False)


SETTINGS: Final[tuple[dataclasses.Field[Any], ...]] = tuple(
    f for f in dataclasses.fields(Config) if "setting" in f.metadata
)
NAMES: Final = frozenset(f.name for f in SETTINGS)


def meta(f: dataclasses.Field[Any]) -> SettingMeta:
    result: SettingMeta = f.metadata["setting"]
    return result


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _parse(name: str, value: Any, source: str) -> Any:
    f = next(f for f in SETTINGS if f.name == name)
    try:
        return meta(f).parse(value)
    except ValueError as exc:
        raise ConfigError(f"{source}: invalid value {value!r} for {name}: {exc}") from None


def _defaults_from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    # Heroku and others export WEB_CONCURRENCY; gunicorn and uvicorn honour it too.
    # Like gunicorn, it replaces the default only: a config file still wins.
    if "WEB_CONCURRENCY" in environ:
        return {"workers": _parse("workers", environ["WEB_CONCURRENCY"], "WEB_CONCURRENCY")}
    return {}


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    # Unknown PREFORK_* variables are ignored, not refused: the environment is
    # shared with other programs and with prefork's own process plumbing.
    values: dict[str, Any] = {}
    for f in SETTINGS:
        key = env_name(f.name)
        if key in environ:
            values[f.name] = _parse(f.name, environ[key], f"environment {key}")
    return values


def find_config_file(explicit: str | None, cwd: Path) -> tuple[Path, bool] | None:
    """The config file to read and whether it is a pyproject.toml, or None."""
    if explicit:
        path = cwd / explicit
        if not path.is_file():
            problem = "is not a regular file" if path.exists() else "not found"
            raise ConfigError(f"config file {explicit!r} {problem}")
        return path, path.name == "pyproject.toml"
    if (cwd / "prefork.toml").is_file():
        return cwd / "prefork.toml", False
    if (cwd / "pyproject.toml").is_file():
        return cwd / "pyproject.toml", True
    return None


def _from_python_file(path: Path) -> dict[str, Any]:
    from prefork import pyconfig
    from prefork.hooks import HOOK_NAMES

    raw, hooks, unsupported = pyconfig.read(path, NAMES, HOOK_NAMES)
    values = {name: _parse(name, value, f"{path}: {name}") for name, value in raw.items()}
    values["hooks"] = hooks
    if unsupported:
        values["file_warnings"] = (
            f"{path}: ignored, no prefork equivalent (see docs/migrating.md): "
            + ", ".join(unsupported),
        )
    return values


def _from_file(path: Path, is_pyproject: bool) -> dict[str, Any]:
    if path.suffix == ".py":
        return _from_python_file(path)
    import tomllib  # only when there is a file: keeps workers and the master lighter

    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    table: Any = document
    prefix = ""
    if is_pyproject:
        tool = document.get("tool", {})
        table = tool.get("prefork", {}) if isinstance(tool, dict) else {}
        prefix = "tool.prefork."
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{prefix.rstrip('.')}] must be a table")
    values: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        if key == "config":
            raise ConfigError(
                f"{path}: key {prefix}{raw_key}: a config file cannot name another config file"
            )
        if key not in NAMES:
            raise ConfigError(
                f"{path}: unknown setting {prefix + raw_key!r} (see `prefork --help` or "
                "docs/settings.md)"
            )
        values[key] = _parse(key, value, f"{path}: key {prefix}{raw_key}")
    return values


def load(
    cli_values: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Merge the sources (CLI > environment > file > defaults) into a Config.

    `cli_values` holds only the settings given on the command line, already
    parsed by the flags' own parsers.
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    defaults = _defaults_from_environment(environ)
    env_values = _from_environment(environ)
    explicit = cli_values.get("config") or env_values.get("config")
    found = find_config_file(explicit, cwd)
    file_values = _from_file(*found) if found else {}
    merged = {**defaults, **file_values, **env_values, **cli_values}
    if found:
        merged["config"] = str(found[0])
    return validate(Config(**merged))


def validate(config: Config) -> Config:
    """Checks that involve more than one setting."""
    if not config.app:
        raise ConfigError("no application given: prefork APP, e.g. prefork app:application")
    if bool(config.certfile) != bool(config.keyfile):
        raise ConfigError("--certfile and --keyfile must be given together")
    tls_only = {
        "--ca-certs": config.ca_certs,
        "--keyfile-password": config.keyfile_password,
        "--ciphers": config.ciphers,
        "--cert-reqs": config.cert_reqs != "none",
    }
    if not config.certfile and (needing := [flag for flag, v in tls_only.items() if v]):
        raise ConfigError(f"{', '.join(needing)}: only with --certfile and --keyfile (TLS)")
    if config.cert_reqs != "none" and not config.ca_certs:
        raise ConfigError(f"--cert-reqs {config.cert_reqs} needs --ca-certs to verify against")
    if config.proxy_protocol and config.certfile:
        # The header would precede the TLS handshake, which the event loop
        # performs before prefork sees a byte.
        raise ConfigError(
            "--proxy-protocol cannot be combined with --certfile: terminate TLS at the proxy"
        )
    if config.group and not config.user and os.geteuid() != 0:
        raise ConfigError("--group needs the master to run as root")
    if config.env_file:
        from prefork import envfile  # only when a file is named

        envfile.check(config.env_file)
    if config.log_config:
        from prefork import logconfig

        logconfig.check(config.log_config)
    return config


def as_toml(config: Config) -> str:
    """The effective configuration as a TOML document (for --print-config).

    The output is itself a valid config file: fed back with `-c` it yields the
    same Config.  Unset settings and the file that was read are comments.
    """
    lines = []
    if config.hooks:
        lines.append(f"# server hooks (from the config file): {', '.join(sorted(config.hooks))}")
    for f in SETTINGS:
        value = getattr(config, f.name)
        if f.name == "config":
            lines.append(f"# config file read: {toml_value(value) if value else '(none)'}")
        elif value is None:
            lines.append(f"# {f.name} = (unset)")
        elif f.name == "keyfile_password":
            lines.append(f"# {f.name} = (set, not shown)")
        elif f.name == "umask":
            lines.append(f"{f.name} = 0o{value:03o}")
        elif f.name == "workers":
            lines.append(f"{f.name} = {toml_value(str(value))}")
        else:
            lines.append(f"{f.name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    """`value` as a TOML literal (bool, number, string or array)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_TOML_ESCAPES.get(ch, ch) for ch in value) + '"'
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot render {value!r} as TOML")


# TOML basic strings must escape `"`, `\\` and control characters other than tab.
_TOML_ESCAPES: Final = {
    **{chr(c): f"\\u{c:04X}" for c in (*range(0x20), 0x7F) if c != 0x09},
    "\\": "\\\\",
    '"': '\\"',
}
