"""Start-up checks that ask the system, run before anything is bound, forked or imported.

config.py checks what a value says (an address's syntax, a port's range);
this module checks what the value names on this host: that the user and
group exist, that a host name (--bind, --metrics-bind) resolves to an
address of this machine, that the directories files will be created in (or
--reload will watch) exist, that --user can write the access log its
workers open.  None of the checks leaves anything behind (the
one socket it creates is bound to port 0 and closed), so `--check-config`
can run them on a live server's configuration.

A failure is a `ConfigError` (exit status 2, one line), raised the same way
by `--check-config`, by a normal start and by a reload, instead of the
runtime error a worker or the master would hit later (exit 1 or 3, or a
crash-looping worker).  What only the attempt can tell (a port already in
use, a live unix socket) stays a runtime error.

TLS certificate and key files are checked where the TLS context is built.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import socket
import stat
from collections.abc import Mapping

from prefork import systemd
from prefork.config import Config, split_host_port
from prefork.errors import ConfigError
from prefork.sockets import INHERIT_ENV, Address, parse_address

# sockaddr_un.sun_path is 108 bytes on Linux, the terminating NUL included.
UNIX_PATH_MAX = 107


def check(config: Config, *, listeners: bool = True) -> None:
    """Raise ConfigError for the first setting that cannot work on this host.

    `listeners=False` skips --bind (a reload keeps the listeners it has).
    """
    _check_identity(config)
    _check_worker_files(config)
    # Listeners handed over by a previous master or by systemd replace --bind.
    if listeners and INHERIT_ENV not in os.environ and not _systemd_activated(os.environ):
        for spec in config.bind:
            _check_bind(spec, parse_address(spec))
    if listeners and config.metrics_bind:
        host, port = split_host_port(config.metrics_bind)
        _check_host(f"--metrics-bind {config.metrics_bind}", host, port)
    _check_directories(config)


def _systemd_activated(environ: Mapping[str, str]) -> bool:
    return bool(systemd.listen_fds(dict(environ)))


# -- --user, --group ---------------------------------------------------------------


def user_entry(user: str) -> pwd.struct_passwd:
    """The passwd entry for a --user value (a name or a uid); KeyError if there is none."""
    return pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)


def group_id(group: str) -> int:
    """The gid for a --group value (a name or a gid); KeyError if there is none."""
    return grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid


def _check_identity(config: Config) -> None:
    uid = gid = None
    if config.user:
        try:
            uid = user_entry(config.user).pw_uid
        except KeyError:
            raise ConfigError(f"--user {config.user!r}: no such user") from None
    if config.group:
        try:
            gid = group_id(config.group)
        except KeyError:
            raise ConfigError(f"--group {config.group!r}: no such group") from None
    if os.geteuid() != 0 and (
        (uid is not None and uid != os.geteuid()) or (gid is not None and gid != os.getegid())
    ):
        raise ConfigError("--user and --group need the master to run as root")


def _check_worker_files(config: Config) -> None:
    """--user must be able to write the access log, which a worker opens as that user.

    Otherwise every worker would fail after the fork, again and again.  The
    master takes the user's identity for a moment (effective ids only,
    restored at once) and asks the kernel whether the file, or the directory
    it would be created in, is writable.
    """
    path = config.access_logfile
    if not config.user or path in (None, "-") or os.geteuid() != 0:
        return
    entry = user_entry(config.user)  # _check_identity made sure it exists
    gid = group_id(config.group) if config.group else entry.pw_gid
    target = path if os.path.exists(path) else os.path.dirname(os.path.abspath(path))
    saved_groups, saved_gid = os.getgroups(), os.getegid()
    os.setgroups(os.getgrouplist(entry.pw_name, gid))
    os.setegid(gid)
    os.seteuid(entry.pw_uid)
    try:
        writable = os.access(
            target, os.W_OK | (0 if target == path else os.X_OK), effective_ids=True
        )
    finally:
        os.seteuid(0)
        os.setegid(saved_gid)
        os.setgroups(saved_groups)
    if not writable:
        what = "the file" if target == path else f"its directory {target}"
        raise ConfigError(f"--access-logfile {path}: --user {config.user} cannot write {what}")


# -- --bind --------------------------------------------------------------------------


def _check_bind(spec: str, address: Address) -> None:
    if address.kind == "tcp":
        _check_host(f"--bind {spec}", address.host, address.port)
    elif address.kind == "unix":
        _check_unix_path(spec, address.path)
    else:
        try:
            mode = os.fstat(address.fd).st_mode
        except OSError:
            raise ConfigError(f"--bind {spec}: file descriptor {address.fd} is not open") from None
        if not stat.S_ISSOCK(mode):
            raise ConfigError(f"--bind {spec}: file descriptor {address.fd} is not a socket")


def _check_host(what: str, host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"{what}: cannot resolve {host!r}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    # Port 0 of the same address: succeeds exactly when the address is one of
    # this host's, and reserves nothing once closed.
    probe = socket.socket(family, socket.SOCK_STREAM)
    with contextlib.closing(probe):
        try:
            probe.bind((sockaddr[0], 0, *sockaddr[2:]))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(f"{what}: {reason} (not an address of this host?)") from None


def _check_unix_path(spec: str, path: str) -> None:
    if len(os.fsencode(path)) > UNIX_PATH_MAX:
        raise ConfigError(f"--bind {spec}: a unix socket path has at most {UNIX_PATH_MAX} bytes")
    _check_writable_dir(f"--bind {spec}", os.path.dirname(path) or ".")


# -- files and directories -----------------------------------------------------------


def _check_directories(config: Config) -> None:
    chdir = config.chdir or "."
    if config.chdir and not os.path.isdir(config.chdir):
        raise ConfigError(f"--chdir {config.chdir!r}: no such directory")
    if config.app_dir and not os.path.isdir(os.path.join(chdir, config.app_dir)):
        raise ConfigError(f"--app-dir {config.app_dir!r}: no such directory")
    for directory in config.reload_dirs if config.reload else ():
        if not os.path.isdir(directory):
            raise ConfigError(f"--reload-dir {directory!r}: no such directory")
    files = {
        "--pid": config.pid,
        "--error-logfile": config.error_logfile,
        "--access-logfile": config.access_logfile,
    }
    for flag, path in files.items():
        if path and path != "-":
            _check_writable_file(flag, path)


def _check_writable_file(flag: str, path: str) -> None:
    if os.path.isdir(path):
        raise ConfigError(f"{flag} {path!r}: is a directory")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{flag} {path!r}: not writable")
        return
    _check_writable_dir(f"{flag} {path!r}", os.path.dirname(path) or ".")


def _check_writable_dir(what: str, directory: str) -> None:
    if not os.path.isdir(directory):
        raise ConfigError(f"{what}: directory {directory!r} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: directory {directory!r} is not writable")
