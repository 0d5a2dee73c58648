"""Words typed where APP goes that are commands of PM2 (or typos of prefork's own).

`prefork restart` would otherwise be served as the module `restart`: the
master binds :8000, forks, and only then fails with "cannot import
'restart'".  A word is answered with the right command instead when all of
these hold, so a real app can never be mistaken for one:

- APP has no `:` and no `.` (a real app spec is usually `module:attr`);
- the word is in COMMANDS below, or is a close typo of a control command;
- no module of that name can be found where the app would be imported
  from (--chdir / --app-dir, then sys.path): an app module really named
  `restart.py` is served as before.
"""

from __future__ import annotations

import sys
from importlib.machinery import PathFinder
from typing import Final

# PM2's vocabulary (and a few from supervisorctl/systemctl) -> what to type instead.
_LIST = "use `prefork status` (with no --name it lists every master of yours)"
_SERVE = "use `prefork APP` to serve, e.g. `prefork app:application`"
COMMANDS: Final = {
    "restart": "use `prefork reload` (a rolling restart: no request is lost)",
    "gracefulreload": "use `prefork reload`",
    "list": _LIST,
    "ls": _LIST,
    "ps": _LIST,
    "jlist": "use `prefork status --json`",
    "show": "use `prefork status --name NAME`",
    "info": "use `prefork status --name NAME`",
    "describe": "use `prefork status --name NAME`",
    "monit": "use `prefork top`",
    "monitor": "use `prefork top`",
    "dashboard": "use `prefork top`",
    "start": _SERVE,
    "run": _SERVE,
    "serve": _SERVE,
    "delete": "use `prefork stop`",
    "del": "use `prefork stop`",
    "kill": "use `prefork stop`",
    "shutdown": "use `prefork stop`",
    "help": "use `prefork --help`",
    "version": "use `prefork --version`",
}


def suggestion(app: str, control_commands: tuple[str, ...], search_dir: str) -> str | None:
    """What to say instead of serving `app`, or None when it may be a real app."""
    word = app.strip()
    if not word.isidentifier():
        return None  # has ':' or '.', or is no module name at all
    answer = COMMANDS.get(word.lower())
    if answer is None:
        # Imported here: the master's heap is every worker's (fork), and an
        # app spec is rarely a bare word.
        import difflib

        close = difflib.get_close_matches(word.lower(), control_commands, n=1, cutoff=0.75)
        if not close:
            return None
        answer = f"did you mean `prefork {close[0]}`"
    if PathFinder.find_spec(word, [search_dir, *sys.path]) is not None:
        return None
    return (
        f"{word!r} is not a prefork command: {answer}; "
        f"to serve a module named {word}, write {word}:application"
    )
