"""gunicorn's and uvicorn's flags that are not prefork settings: what each one gets.

Flags that mean a prefork setting are aliases, declared with that setting in
config.py.  The rest are here, as data the command line (cli.py) and the docs
read: a flag whose concept prefork lacks is refused with one line saying
what to use instead (exit status 2); a flag prefork has no need for (its
behaviour is built in, or does not apply) is accepted with one warning line,
or silently when the value asked for is what prefork does anyway.

Also here: what gunicorn's worker classes (`-k`, `worker_class`) mean, for
the alias in config.py and for gunicorn.conf.py files (pyconfig.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

Origin = Literal["gunicorn", "uvicorn", "gunicorn, uvicorn"]


@dataclass(frozen=True, slots=True)
class ForeignFlag:
    flags: tuple[str, ...]
    origin: Origin
    guidance: str  # what to do instead, or why it is not needed
    refused: bool  # True: exit status 2; False: a warning, and ignored
    takes_value: bool = True
    # Values that ask for what prefork does anyway: accepted without a word
    # ("" for a flag that takes no value).
    built_in: tuple[str, ...] = ()

    def message(self, flag: str) -> str:
        if self.refused:
            return f"{flag} is not supported: {self.guidance}"
        return f"{flag} ignored: {self.guidance}"


NO_DAEMON: Final = (
    "prefork does not daemonize; run it under systemd (`prefork systemd-unit`), "
    "a container or a process manager"
)
NO_SYSLOG: Final = (
    "log to stderr (the default) and let journald or the container runtime collect it"
)
NO_STATSD: Final = (
    "no StatsD client; serve Prometheus metrics with --metrics-bind, or read "
    "`prefork status --json`"
)

FOREIGN_FLAGS: Final[tuple[ForeignFlag, ...]] = (
    ForeignFlag(("-D", "--daemon"), "gunicorn", NO_DAEMON, refused=True, takes_value=False),
    ForeignFlag(
        ("--reload-extra-file",),
        "gunicorn",
        "with --reload, watch more files with --reload-include GLOB (and --reload-dir DIR)",
        refused=True,
    ),
    ForeignFlag(
        ("--reload-engine",),
        "gunicorn",
        "--reload uses watchfiles when installed, else polling",
        refused=False,
    ),
    ForeignFlag(
        ("--reload-delay",),
        "uvicorn",
        "--reload waits for a burst of changes to settle by itself",
        refused=False,
    ),
    ForeignFlag(
        ("--statsd-host", "--statsd-prefix", "--dogstatsd-tags"),
        "gunicorn",
        NO_STATSD,
        refused=True,
    ),
    ForeignFlag(("--log-syslog",), "gunicorn", NO_SYSLOG, refused=True, takes_value=False),
    ForeignFlag(
        ("--log-syslog-to", "--log-syslog-prefix", "--log-syslog-facility"),
        "gunicorn",
        NO_SYSLOG,
        refused=True,
    ),
    ForeignFlag(
        ("--paste", "--paster"),
        "gunicorn",
        "serve the WSGI callable directly: prefork module:application",
        refused=True,
    ),
    ForeignFlag(
        ("--spew",), "gunicorn", "use a debugger or py-spy", refused=True, takes_value=False
    ),
    ForeignFlag(
        ("--worker-tmp-dir",),
        "gunicorn",
        "not needed: workers report their heartbeat over a socket, not a file",
        refused=False,
    ),
    ForeignFlag(
        ("--http",),
        "uvicorn",
        "prefork always parses HTTP with httptools",
        refused=False,
        built_in=("auto", "httptools"),
    ),
    ForeignFlag(
        ("--loop",),
        "uvicorn",
        "prefork always runs uvloop",
        refused=False,
        built_in=("auto", "uvloop"),
    ),
    ForeignFlag(
        ("--proxy-headers",),
        "uvicorn",
        "already the default: X-Forwarded-* and Forwarded are believed from the peers in "
        "--forwarded-allow-ips",
        refused=False,
        takes_value=False,
        built_in=("",),
    ),
    ForeignFlag(
        ("--initgroups",),
        "gunicorn",
        "already the default: --user always gets its supplementary groups",
        refused=False,
        takes_value=False,
        built_in=("",),
    ),
    ForeignFlag(
        ("--use-colors", "--no-use-colors"),
        "uvicorn",
        "the error log is plain text (gunicorn's format)",
        refused=False,
        takes_value=False,
    ),
    ForeignFlag(
        ("--ssl-version",),
        "gunicorn, uvicorn",
        "use --tls-min-version 1.2 or 1.3",
        refused=False,
    ),
    ForeignFlag(
        ("--no-sendfile",),
        "gunicorn",
        "responses are written from memory; there is nothing to turn off",
        refused=False,
        takes_value=False,
    ),
)


# gunicorn -k values: prefork has one worker that serves WSGI and ASGI alike.
_ASGI_WORKER_CLASSES: Final = frozenset(
    f"{module}.{cls}"
    for module in ("uvicorn.workers", "uvicorn_worker")
    for cls in ("UvicornWorker", "UvicornH11Worker")
)
_WSGI_WORKER_CLASSES: Final = frozenset(
    {"sync", "gthread", "gunicorn.workers.sync.SyncWorker", "gunicorn.workers.gthread.ThreadWorker"}
)


def parse_worker_class(value: Any) -> str:
    """the uvicorn worker classes mean `asgi`; `sync` and `gthread` mean `wsgi`"""
    if not isinstance(value, str):
        raise ValueError("expected a string")  # noqa: TRY004 - parsers raise ValueError
    text = value.strip()
    if text in _ASGI_WORKER_CLASSES:
        return "asgi"
    if text in _WSGI_WORKER_CLASSES:
        return "wsgi"
    if re.search(r"gevent|eventlet|tornado", text, re.IGNORECASE):
        raise ValueError(
            "prefork has no green-thread workers: use --threads N for a WSGI app that "
            "waits on I/O, or serve an ASGI app (see docs/migrating.md)"
        )
    raise ValueError(
        "unknown worker class: prefork detects WSGI or ASGI itself, so drop -k (or use --interface)"
    )
