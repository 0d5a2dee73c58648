"""`--env-file`: the application's environment from a dotenv file.

Format (python-dotenv's, which uvicorn and granian read):

    # a comment
    export DATABASE_URL=postgres://db/app    # `export ` is allowed, comments after values
    NAME='single quotes: literal, no escapes'
    GREETING="double quotes: \\n \\t \\" \\\\ escapes, ${HOME} expanded, may span lines"
    PLAIN=unquoted ${OTHER} value

Values already in the real environment win (as with python-dotenv's default
and uvicorn), so an operator's `export` overrides the file.  `${NAME}` and
`${NAME:-default}` expand from the environment and from the file's earlier
lines, in double-quoted and unquoted values.

Errors are `ConfigError`s naming the file and line, so a bad file is one line
and exit status 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Final

from prefork.errors import ConfigError

_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_EXPAND: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse(text: str, source: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables `text` defines, in order; `environ` serves `${...}` expansion."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number = index + 1
        line = lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"{source}:{number}: expected KEY=VALUE, got {line[:40]!r}")
        if not _KEY.fullmatch(key):
            raise ConfigError(f"{source}:{number}: {key[:40]!r} is not a variable name")
        rest = rest.lstrip()
        lookup = {**environ, **values}
        if rest.startswith("'"):
            value, index = _quoted(rest, "'", lines, index, source, number)
        elif rest.startswith('"'):
            raw, index = _quoted(rest, '"', lines, index, source, number)
            value = _expand(_unescape(raw), lookup)
        else:
            value = _expand(re.split(r"\s+#", rest, maxsplit=1)[0].strip(), lookup)
        values[key] = value
    return values


def _quoted(
    rest: str, quote: str, lines: list[str], index: int, source: str, number: int
) -> tuple[str, int]:
    """The text between `rest`'s opening quote and its closing one, which may be lines later."""
    body = rest[1:]
    while True:
        end = _closing(body, quote)
        if end >= 0:
            after = body[end + 1 :].strip()
            if after and not after.startswith("#"):
                raise ConfigError(f"{source}:{number}: unexpected text after the closing quote")
            return body[:end], index
        if index >= len(lines):
            raise ConfigError(f"{source}:{number}: unterminated {quote}quoted value")
        body += "\n" + lines[index]
        index += 1


def _closing(body: str, quote: str) -> int:
    position = 0
    while position < len(body):
        char = body[position]
        if char == "\\" and quote == '"':
            position += 2
            continue
        if char == quote:
            return position
        position += 1
    return -1


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], "\\" + m[1]), raw, flags=re.DOTALL)


def _expand(value: str, lookup: Mapping[str, str]) -> str:
    return _EXPAND.sub(lambda m: lookup.get(m[1], m[2] or ""), value)


def read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--env-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--env-file {path}: cannot read: {exc}") from None


def check(path: str) -> None:
    """Raise ConfigError if `path` cannot be read or parsed (for config validation)."""
    parse(read(path), path, os.environ)


class EnvFile:
    """Applies a file's variables to `environ`, and takes back what it set on a re-read."""

    def __init__(self, environ: MutableMapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.applied: dict[str, str] = {}  # what this file set, so a reload can undo it

    def load(self, path: str | None) -> dict[str, str]:
        """Read `path` (None: no file) and apply it; raises ConfigError, changing nothing."""
        wanted: dict[str, str] = {}
        if path is not None:
            base = {k: v for k, v in self.environ.items() if self.applied.get(k) != v}
            wanted = parse(read(path), path, base)
        for key in self.applied:
            if self.environ.get(key) == self.applied[key]:
                del self.environ[key]
        applied = {}
        for key, value in wanted.items():
            if key not in self.environ:  # the real environment wins
                self.environ[key] = value
                applied[key] = value
        self.applied = applied
        return applied
