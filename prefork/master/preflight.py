"""What the master checks before the first fork, on behalf of workers running as --user.

A worker drops privileges before it opens the access log, so a log file the
target user cannot write fails every worker, after the fork, again and
again.  The master can see that before forking: it takes the user's
identity for a moment (effective ids only, restored at once) and asks the
kernel whether the file, or the directory it would be created in, is
writable.  An unknown user is left to the worker, which reports it (exit 3).
"""

from __future__ import annotations

import grp
import os
import pwd

from prefork.config import Config
from prefork.errors import ConfigError


def check_worker_files(config: Config) -> None:
    """Raise ConfigError if --user could not write the files a worker opens."""
    path = config.access_logfile
    if not config.user or path in (None, "-") or os.geteuid() != 0:
        return
    try:
        entry = (
            pwd.getpwuid(int(config.user)) if config.user.isdigit() else pwd.getpwnam(config.user)
        )
        gid = entry.pw_gid
        if config.group:
            gid = int(config.group) if config.group.isdigit() else grp.getgrnam(config.group).gr_gid
    except KeyError:
        return
    groups = os.getgrouplist(entry.pw_name, gid)
    target = path if os.path.exists(path) else os.path.dirname(os.path.abspath(path))
    saved_groups, saved_gid = os.getgroups(), os.getegid()
    os.setgroups(groups)
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
