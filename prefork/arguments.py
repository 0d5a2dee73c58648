"""The serve command's argument parser, generated from the settings table.

Every setting of config.py with a flag becomes an option here, so a flag, its
environment variable and its config-file key can never disagree.  Used by the
command line (cli.py), `prefork systemd-unit` (which re-parses the options it
writes into a unit) and the docs generator; `OneLineParser` is the control
client's parser too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from prefork import __version__, compat, compiled, config
from prefork.errors import EXIT_USAGE

DESCRIPTION = """\
Serve a WSGI or ASGI application with a supervised pool of worker processes.

APP is `module:attr` (e.g. `app:application`), `module:attr.sub`, or a
factory `module:create_app()`.  Every option can also be set in the
environment (PREFORK_<OPTION>, e.g. PREFORK_WORKERS=4) or in prefork.toml /
[tool.prefork] in pyproject.toml; the command line wins over the
environment, which wins over the file.

A bare word that is a PM2 command or a typo of a control command
(`restart`, `list`, `monit`, `start`, `relaod`, ...) and names no module
that can be imported is answered with the command to use (exit 2); write
`word:application` to serve a module of that name.
"""

EPILOG = """\
signals (to the master):
  HUP        rolling reload: new workers start, old ones drain once they are ready
  TERM       graceful stop: finish in-flight requests (--graceful-timeout)
  INT, QUIT  fast stop (a second INT forces it)
  TTIN/TTOU  add / retire one worker
  USR1       reopen log files
  USR2       upgrade: start a new master on the same sockets

control commands:
  prefork status|top|reload|scale N|stop|logs   (see docs/cli.md)

systemd:
  prefork systemd-unit APP [options] [--socket] [--install]
             print (or install) a systemd service unit running APP with these options

exit status:
  0 clean stop   1 runtime error   2 bad usage or config
  3 worker boot failure   4 application import failure

examples:
  prefork app:application --workers max
  prefork myproject.wsgi:application -b 0.0.0.0:8000 -b unix:/run/app.sock
  prefork 'app:create_app()' --interface asgi --access-logfile -
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=100)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        # One line, like every other configuration error: argparse's default
        # usage dump is some twenty lines above the one that matters.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="prefork",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_Formatter,
        argument_default=argparse.SUPPRESS,
        # No abbreviations: `--max` must not start meaning something else when
        # a new flag sharing its prefix is added.
        allow_abbrev=False,
    )
    parser.add_argument("app", nargs="?", metavar="APP", help="the application to serve")
    parser.add_argument(
        "--version", action="version", version=f"prefork {__version__}, hot path {compiled.MODE}"
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration (values, addresses, user, group, directories) and "
        "import the app, then exit (0 if all is well)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration as TOML and exit",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in config.SETTINGS:
        meta = config.meta(f)
        if not meta.flags:
            continue
        group = groups.get(meta.section)
        if group is None:
            group = groups[meta.section] = parser.add_argument_group(meta.section.lower())
        help_text = meta.doc + f" [env {config.env_name(f.name)}]"
        kwargs: dict[str, Any] = {"dest": f.name, "help": help_text.replace("%", "%%")}
        if meta.is_bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif meta.repeatable:
            kwargs.update(action="append", metavar=meta.metavar)
        else:
            metavar = meta.metavar
            if metavar is None and isinstance(meta.parse, config.Choice):
                metavar = "{" + ",".join(meta.parse.allowed) + "}"
            kwargs.update(type=_flag_type(f.name, meta.parse), metavar=metavar)
        group.add_argument(*meta.flags, **kwargs)
        for alias in meta.aliases:
            _add_alias(group, f.name, meta, alias)
    for foreign in compat.FOREIGN_FLAGS:
        parser.add_argument(
            *foreign.flags,
            action=_ForeignFlagAction,
            foreign=foreign,
            nargs=1 if foreign.takes_value else 0,
            dest=WARNINGS,
            help=argparse.SUPPRESS,
        )
    return parser


# Where the command line collects warnings about ignored foreign flags.
WARNINGS = "_warnings"


def _add_alias(
    group: argparse._ArgumentGroup, name: str, meta: config.SettingMeta, alias: config.Alias
) -> None:
    """Another server's flag for setting `name`, hidden from --help (docs/migrating.md)."""
    kwargs: dict[str, Any] = {"dest": name, "help": argparse.SUPPRESS}
    if not alias.takes_value:
        kwargs.update(action="store_const", const=alias.const)
    elif alias.part is not None:
        kwargs.update(dest=f"{name}.{alias.part}", metavar=alias.metavar)
    else:
        convert = _flag_type(name, alias.convert or meta.parse)
        action = "append" if meta.repeatable else "store"
        kwargs.update(action=action, type=convert, metavar=alias.metavar)
    group.add_argument(alias.flag, **kwargs)


class _ForeignFlagAction(argparse.Action):
    def __init__(self, *args: Any, foreign: compat.ForeignFlag, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.foreign = foreign

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        flag = option_string or self.foreign.flags[0]
        if self.foreign.refused:
            parser.error(self.foreign.message(flag))
        value = values[0] if isinstance(values, list) and values else ""
        if value not in self.foreign.built_in:
            warnings = getattr(namespace, WARNINGS, [])
            warnings.append(self.foreign.message(flag))
            setattr(namespace, WARNINGS, warnings)


def _flag_type(name: str, parse: config.Parser) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None

    convert.__name__ = name  # argparse names the type in its error message
    return convert


def parse_serve_args(
    argv: Sequence[str], parser: argparse.ArgumentParser | None = None
) -> tuple[dict[str, Any], argparse.Namespace]:
    """The settings given on the command line, parsed, and the whole namespace."""
    parser = parser or build_parser()
    namespace = parser.parse_args(argv)
    given = vars(namespace)
    values = {k: v for k, v in given.items() if k in config.NAMES}
    if "bind.host" in given or "bind.port" in given:
        try:
            address = config.bind_from_host_port(given.get("bind.host"), given.get("bind.port"))
        except ValueError as exc:
            parser.error(str(exc))
        values["bind"] = [*values.get("bind", []), address]
    for f in config.SETTINGS:
        meta = config.meta(f)
        if meta.repeatable and f.name in values:
            try:
                values[f.name] = meta.parse(values[f.name])
            except ValueError as exc:
                parser.error(f"{meta.flags[-1]}: {exc}")
    for warning in given.get(WARNINGS, []):
        print(f"prefork: warning: {warning}", file=sys.stderr)
    return values, namespace
