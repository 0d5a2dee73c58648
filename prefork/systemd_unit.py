"""`prefork systemd-unit APP [options]`: a systemd service (and socket) unit for this invocation.

    prefork systemd-unit app:application -w 4 -b 0.0.0.0:8000 --user www-data
    prefork systemd-unit app:application --socket     # also a .socket unit
    prefork systemd-unit app:application --install    # as root: write, enable, start

The unit runs exactly what the same command line without `systemd-unit`
would run: ExecStart is this Python, `-m prefork`, APP and the options
given (aliases written as prefork's own flags, relative paths made
absolute), from this directory, with the PREFORK_* variables of this
environment.  --user/--group become User=/Group= (systemd drops the
privileges, so the master needs no root).

Choices, and why:

- Type=notify, not notify-reload: notify-reload needs systemd 253, and
  Debian 12 (252), Ubuntu 22.04 (249) and RHEL 9 (252) run older ones.
  prefork sends READY=1, RELOADING=1 with MONOTONIC_USEC and STOPPING=1, so
  on 253+ the unit can switch to `Type=notify-reload` with `ReloadSignal=SIGHUP`.
- NotifyAccess=all: after a USR2 upgrade the new master (a child) notifies.
- KillMode=mixed: `systemctl stop` sends SIGTERM to the master only, which
  drains its workers; whatever is left after TimeoutStopSec (the graceful
  timeout plus STOP_SLACK) is killed.
- Restart=on-failure, except for exit statuses 2 and 4 (bad configuration,
  the app cannot be imported): restarting cannot fix those.
- Hardening that does not break a typical app: no new privileges, private
  /tmp and devices, read-only /usr, /boot and /etc, kernel settings
  protected.  /home (and /tmp) stay visible when the app or its files live
  there.
  PrivateTmp hides the default control socket directory, so the unit puts
  the control socket in its RuntimeDirectory (/run/NAME).
"""

from __future__ import annotations

import argparse
import grp
import math
import os
import pwd
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from prefork import arguments, config
from prefork.config import Config
from prefork.errors import EXIT_OK, ConfigError, PreforkError
from prefork.sockets import parse_address

STOP_SLACK: Final = 5  # seconds past --graceful-timeout before systemd kills what is left
UNIT_DIR: Final = "etc/systemd/system"
PATH_SETTINGS: Final = frozenset(
    {
        "config",
        "chdir",
        "app_dir",
        "certfile",
        "keyfile",
        "ca_certs",
        "pid",
        "control_socket",
        "env_file",
        "log_config",
    }
)
LOG_SETTINGS: Final = frozenset({"access_logfile", "error_logfile"})
# Moved out of ExecStart: User=/Group= do it, and a password has no place in a unit file.
NOT_IN_EXEC: Final = frozenset({"app", "user", "group", "keyfile_password"})
PASSED_ENV: Final = ("WEB_CONCURRENCY", "PYTHONPATH")
SECRET_ENV: Final = frozenset({config.env_name("keyfile_password")})

HARDENING: Final = """\
NoNewPrivileges=yes
PrivateDevices=yes
ProtectSystem=full
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK"""


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.build_parser()
    parser.prog = "prefork systemd-unit"
    group = parser.add_argument_group("systemd-unit")
    group.add_argument(
        "--socket",
        action="store_true",
        dest="unit_socket",
        help="also write a .socket unit listening on the --bind addresses (socket activation)",
    )
    group.add_argument(
        "--install",
        action="store_true",
        dest="unit_install",
        help="write the units under /etc/systemd/system, then enable and start them (root)",
    )
    group.add_argument(
        "--root",
        dest="unit_root",
        metavar="DIR",
        help="with --install: write under DIR instead of /, and enable nothing",
    )
    group.add_argument(
        "--unit-name",
        dest="unit_name",
        metavar="NAME",
        help="the units' name (default: --name, else prefork)",
    )
    return parser


def systemd_quote(arg: str, variables: bool = True) -> str:
    """One ExecStart= or Environment= word: specifiers (%) escaped, and variables ($)
    where systemd expands them (ExecStart=); quoted if needed."""
    escaped = arg.replace("%", "%%")
    if variables:
        escaped = escaped.replace("$", "$$")
    if escaped and not any(ch in escaped for ch in " \t\"'\\;"):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _absolute(path: str, cwd: Path) -> str:
    # normpath, not resolve(): a deploy symlink (/srv/app/current) must stay a symlink.
    return os.path.normpath(os.path.join(cwd, path))


def _bind_arg(spec: str, cwd: Path) -> str:
    return "unix:" + _absolute(spec[5:], cwd) if spec.startswith("unix:") else spec


def option_args(cli_values: Mapping[str, Any], cwd: Path, socket_unit: bool) -> list[str]:
    """The command-line settings as prefork's own flags, in the settings table's order."""
    args: list[str] = []
    for f in config.SETTINGS:
        name = f.name
        if name not in cli_values or name in NOT_IN_EXEC or (socket_unit and name == "bind"):
            continue
        value = cli_values[name]
        meta = config.meta(f)
        flag = meta.flags[-1]
        if meta.is_bool:
            args.append(flag if value else "--no-" + flag.removeprefix("--"))
        elif meta.repeatable:
            for item in value:
                args += [flag, _bind_arg(item, cwd) if name == "bind" else item]
        elif value is None:
            args += [flag, ""]
        elif name == "pythonpath":
            args += [flag, ",".join(_absolute(p, cwd) for p in value)]
        elif isinstance(value, tuple):
            args += [flag, ",".join(value)]
        elif name == "umask":
            args += [flag, f"0o{value:03o}"]
        elif name in PATH_SETTINGS or (name in LOG_SETTINGS and value != "-"):
            args += [flag, _absolute(value, cwd)]
        elif isinstance(value, float):
            args += [flag, f"{value:g}"]
        else:
            args += [flag, str(value)]
    return args


def _account(settings: Config) -> tuple[str, str]:
    """User= and Group=: --user/--group, else whoever runs this command."""
    try:
        if settings.user:
            user = settings.user
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        else:
            entry = pwd.getpwuid(os.geteuid())
        if settings.group:
            group = settings.group
            group_name = grp.getgrgid(int(group)).gr_name if group.isdigit() else group
            grp.getgrnam(group_name)
        else:
            group_name = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError as exc:
        raise ConfigError(f"systemd-unit: no such user or group: {exc.args[0]}") from None
    return entry.pw_name, group_name


def _listen_stream(spec: str, cwd: Path) -> str:
    try:
        address = parse_address(spec)
    except ValueError as exc:
        raise ConfigError(f"--bind {exc}") from None
    if address.kind == "unix":
        return _absolute(address.path, cwd)
    if address.kind == "fd":
        raise ConfigError(f"--socket: cannot listen on {spec}; give HOST:PORT or unix:PATH")
    if address.port == 0:
        raise ConfigError(f"--socket: {spec}: systemd needs a fixed port, not 0")
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port}"


def _tcp_ports(settings: Config) -> list[int]:
    ports = []
    for spec in settings.bind:
        try:
            address = parse_address(spec)
        except ValueError as exc:
            raise ConfigError(f"--bind {exc}") from None
        if address.kind == "tcp":
            ports.append(address.port)
    return ports


def _under(paths: Sequence[str], *directories: str) -> bool:
    return any(p == d or p.startswith(d + "/") for p in paths for d in directories)


def render(
    settings: Config,
    cli_values: Mapping[str, Any],
    cwd: Path,
    environ: Mapping[str, str],
    name: str,
    socket_unit: bool,
) -> tuple[str, str | None, list[str]]:
    """(the service unit, the socket unit or None, warnings)."""
    warnings: list[str] = []
    user, group = _account(settings)
    if user == "root":
        warnings.append("the unit runs the app as root; give --user")
    control = f"/run/{name}/control.sock"
    exec_args = [sys.executable, "-m", "prefork", settings.app]
    exec_args += option_args(cli_values, cwd, socket_unit)
    if settings.control_socket is None:
        exec_args += ["--control-socket", control]
    lines = [
        "# Generated by `prefork systemd-unit`; see docs/operations.md.",
        f"# prefork status --socket {settings.control_socket or control}",
        "[Unit]",
        f"Description=prefork: {settings.app}",
        "After=network.target",
    ]
    if socket_unit:
        lines += [f"Requires={name}.socket", f"After={name}.socket"]
    lines += [
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=all",
        f"User={user}",
        f"Group={group}",
        f"WorkingDirectory={cwd}",
    ]
    for key in sorted(environ):
        if key in SECRET_ENV:
            warnings.append(f"{key} is not written to the unit: use EnvironmentFile= (mode 0600)")
        elif key.startswith(config.ENV_PREFIX) or key in PASSED_ENV:
            lines.append("Environment=" + systemd_quote(f"{key}={environ[key]}", variables=False))
    if "keyfile_password" in cli_values:
        warnings.append(
            "--keyfile-password is not written to the unit: put PREFORK_KEYFILE_PASSWORD in "
            "an EnvironmentFile= readable by root only"
        )
    lines += [
        "ExecStart=" + " ".join(systemd_quote(arg) for arg in exec_args),
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillMode=mixed",
        f"TimeoutStopSec={math.ceil(settings.graceful_timeout) + STOP_SLACK}",
        "Restart=on-failure",
        "RestartPreventExitStatus=2 4",
        f"RuntimeDirectory={name}",
        "RuntimeDirectoryMode=0750",
    ]
    if not socket_unit and user != "root" and any(0 < p < 1024 for p in _tcp_ports(settings)):
        lines.append("AmbientCapabilities=CAP_NET_BIND_SERVICE")
    lines.append(HARDENING)
    # Where the app or its files live must stay visible (and writable) to it.
    paths = [str(cwd), *exec_args, *(a.removeprefix("unix:") for a in exec_args)]
    if not _under(paths, "/home", "/root", "/run/user"):
        lines.append("ProtectHome=yes")
    if not _under(paths, "/tmp", "/var/tmp"):
        lines.append("PrivateTmp=yes")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    socket_text = None
    if socket_unit:
        socket_text = "\n".join(
            [
                "# Generated by `prefork systemd-unit --socket`; see docs/operations.md.",
                "[Unit]",
                f"Description=prefork sockets: {settings.app}",
                "",
                "[Socket]",
                *(f"ListenStream={_listen_stream(b, cwd)}" for b in settings.bind),
                f"Backlog={settings.backlog}",
                "",
                "[Install]",
                "WantedBy=sockets.target",
                "",
            ]
        )
    return "\n".join(lines), socket_text, warnings


def install(units: Mapping[str, str], root: str | None) -> list[str]:
    """Write the units; enable and start them unless writing under another root."""
    base = Path(root or "/") / UNIT_DIR
    if root is None and os.geteuid() != 0:
        raise PreforkError("--install needs root (or print the unit and install it yourself)")
    base.mkdir(parents=True, exist_ok=True)
    done = []
    for filename, text in units.items():
        path = base / filename
        path.write_text(text)
        path.chmod(0o644)
        done.append(f"wrote {path}")
    if root is None:
        # The socket first, so the service finds its listeners when it starts.
        ordered = sorted(units, key=lambda n: not n.endswith(".socket"))
        commands = [["systemctl", "daemon-reload"]]
        commands += [["systemctl", "enable", "--now", unit] for unit in ordered]
        for command in commands:
            try:
                subprocess.run(command, check=True)
            except (OSError, subprocess.CalledProcessError) as exc:
                raise PreforkError(f"{shlex.join(command)} failed: {exc}") from None
            done.append("ran " + shlex.join(command))
    return done


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    cli_values, namespace = arguments.parse_serve_args(argv, parser)
    options = vars(namespace)
    if options.get("unit_root") and not options.get("unit_install"):
        parser.error("--root only applies to --install")
    try:
        settings = config.load(cli_values)
        name = options.get("unit_name") or settings.name or "prefork"
        service, socket_text, warnings = render(
            settings,
            cli_values,
            Path.cwd(),
            os.environ,
            name,
            bool(options.get("unit_socket")),
        )
        for warning in warnings:
            print(f"prefork: warning: {warning}", file=sys.stderr)
        units = {f"{name}.service": service}
        if socket_text is not None:
            units[f"{name}.socket"] = socket_text
        if options.get("unit_install"):
            for line in install(units, options.get("unit_root")):
                print(line)
        else:
            sys.stdout.write("\n".join(f"# {n}\n{text}" for n, text in units.items()))
    except PreforkError as exc:
        print(f"prefork: error: {exc}", file=sys.stderr)
        return exc.exit_status
    return EXIT_OK
