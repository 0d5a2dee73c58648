"""The `prefork` command line: serve an app (the default) or talk to a running master.

    prefork APP [options]                 serve APP (see --help)
    prefork status|top|reload|scale|stop|logs  control a running master (see docs/cli.md)

The serve options are generated from the settings table in config.py
(arguments.py), so a flag, its environment variable and its config-file key
can never disagree.
Exit statuses are listed in prefork/errors.py and docs/cli.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Final

from prefork import config, mistyped
from prefork.arguments import parse_serve_args
from prefork.control.client import COMMANDS as CONTROL_COMMANDS
from prefork.errors import EXIT_USAGE, AppImportError, ConfigError, PreforkError

UNIT_COMMAND: Final = "systemd-unit"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in CONTROL_COMMANDS:
        from prefork.control.client import main as control_main

        return control_main(args)
    if args and args[0] == UNIT_COMMAND:
        from prefork.systemd_unit import main as unit_main

        return unit_main(args[1:])
    cli_values, namespace = parse_serve_args(args)
    try:
        settings = config.load(cli_values)
        search_dir = os.path.join(settings.chdir or "", settings.app_dir or "")
        mistake = mistyped.suggestion(settings.app, CONTROL_COMMANDS, search_dir)
        if mistake is not None:
            print(f"prefork: error: {mistake}", file=sys.stderr)
            return EXIT_USAGE
        if getattr(namespace, "print_config", False):
            sys.stdout.write(config.as_toml(settings))
            return 0
        from prefork import preflight

        preflight.check(settings)
        if getattr(namespace, "check_config", False):
            from prefork.envfile import EnvFile
            from prefork.loader import load_app
            from prefork.tls import server_context

            EnvFile().load(settings.env_file)  # the app may read it at import
            server_context(settings)
            loaded = load_app(settings)
            print(f"config OK; {settings.app} is a {loaded.interface} application")
            return 0
        from prefork.master.arbiter import run

        return run(settings, cli_values)
    except PreforkError as exc:
        print(f"prefork: error: {exc}", file=sys.stderr)
        if isinstance(exc, AppImportError) and exc.details:
            print(exc.details, file=sys.stderr)  # the user's traceback, after the summary
        return exc.exit_status
    except ConfigError as exc:  # pragma: no cover - ConfigError is a PreforkError
        print(f"prefork: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
