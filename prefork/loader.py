"""Import the user's application and decide which interface it speaks.

APP forms: `module:attr`, `module:attr.sub` (attribute path), `module`
(meaning `module:application`, as gunicorn does), and factories:
`module:create_app()` or `--factory`.

Detection (`--interface auto`, see `detect`): an async callable is ASGI 3;
otherwise the call signature decides: `(scope)` is ASGI 2, `(environ,
start_response)` WSGI, whether the app is a function, an object or a class.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

from prefork.config import Config
from prefork.errors import AppImportError

Interface = Literal["wsgi", "asgi"]


@dataclass(frozen=True, slots=True)
class LoadedApp:
    app: Any  # a WSGI callable, or an ASGI 3 callable (ASGI 2 apps are wrapped)
    interface: Interface
    detected: bool  # False when --interface named it
    declared: str  # "wsgi", "asgi" or "asgi2", for the banner


def _split(spec: str) -> tuple[str, str, bool]:
    module_name, _, attr = spec.partition(":")
    attr = attr or "application"
    is_call = attr.endswith("()")
    if is_call:
        attr = attr[:-2]
    if not module_name or not attr or not all(p.isidentifier() for p in attr.split(".")):
        raise AppImportError(f"cannot import {spec!r}: expected module:attr, e.g. app:application")
    return module_name, attr, is_call


def _import(spec: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except BaseException as exc:
        frames = _user_frames(exc.__traceback__)
        if isinstance(exc, ModuleNotFoundError) and not frames:
            # Raised by the import system itself, for our own import_module call:
            # the app's module (or one of its packages) is what is missing.
            raise AppImportError(f"cannot import {spec!r}: {exc}") from None
        raise _failure(f"cannot import {spec!r}", exc) from exc


def _failure(prefix: str, exc: BaseException) -> AppImportError:
    """An AppImportError for `exc`, raised in the user's code: one line, then the traceback."""
    return AppImportError(f"{prefix}: {_summary(exc)}", details=user_traceback(exc))


def _summary(exc: BaseException) -> str:
    """The exception and where it was raised in the user's code, on one line.

    A missing module is named, with the line that imported it: that is where
    the user has something to fix (a dependency to install, a typo).
    """
    message = str(exc)
    if isinstance(exc, SyntaxError) and exc.filename:
        message = str(exc.msg)  # str(exc) repeats the place, less exactly
        where = f"{exc.filename}:{exc.lineno}"
    else:
        frames = _user_frames(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    if isinstance(exc, ModuleNotFoundError) and exc.name and where:
        return f"No module named {exc.name!r} (imported at {where})"
    return f"{type(exc).__name__}: {message}" + (f" ({where})" if where else "")


# Frames that are prefork's or the import system's, never the user's.
_PREFORK_DIR: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep
_IMPORTLIB_INIT: Final = os.path.abspath(importlib.__file__ or "importlib/__init__.py")


def _is_user_frame(filename: str) -> bool:
    return not (
        filename.startswith(("<frozen importlib", _PREFORK_DIR)) or filename == _IMPORTLIB_INIT
    )


def _user_frames(tb: TracebackType | None) -> list[traceback.FrameSummary]:
    return [f for f in traceback.extract_tb(tb) if _is_user_frame(f.filename)]


def user_traceback(exc: BaseException) -> str:
    """`exc`'s traceback as Python prints it, without prefork's and importlib's frames."""
    formatted = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    pending = [formatted]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.stack = traceback.StackSummary.from_list(
            [f for f in current.stack if _is_user_frame(f.filename)]
        )
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return "".join(formatted.format()).rstrip("\n")


def resolve(spec: str, factory: bool) -> Any:
    module_name, attr, is_call = _split(spec)
    obj: Any = _import(spec, module_name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppImportError(
                f"cannot import {spec!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    if factory or is_call:
        try:
            obj = obj()
        except BaseException as exc:
            raise _failure(f"cannot import {spec!r}: factory failed", exc) from exc
    if not callable(obj):
        raise AppImportError(f"cannot import {spec!r}: {type(obj).__name__} is not callable")
    return obj


def detect(app: Any) -> str:
    """ "asgi3", "asgi2" or "wsgi", from how `app` is called.

    An async callable (a coroutine function, or an object whose `__call__` is
    one) is ASGI 3.  Anything else is told apart by how many positional
    arguments a call takes: one (`scope`) is ASGI 2, two (`environ,
    start_response`) WSGI, three ASGI 3.  A class counts as its constructor,
    so both `class App: def __init__(self, scope)` (ASGI 2) and `class App:
    def __init__(self, environ, start_response)` (WSGI, PEP 3333 allows a
    class whose instances are the response iterable) are recognised.  When
    the signature cannot tell (`*args`, a C callable), a class whose
    instances have an async `__call__` is ASGI 2 and anything else WSGI.
    """
    if not inspect.isclass(app) and (
        inspect.iscoroutinefunction(app)
        or inspect.iscoroutinefunction(getattr(app, "__call__", None))  # noqa: B004
    ):
        return "asgi3"
    kind = _BY_ARITY.get(_positional_arity(app))
    if kind is not None:
        return kind
    if inspect.isclass(app) and inspect.iscoroutinefunction(getattr(app, "__call__", None)):  # noqa: B004
        return "asgi2"
    return "wsgi"


_BY_ARITY: Final[dict[int | None, str]] = {1: "asgi2", 2: "wsgi", 3: "asgi3"}


def _positional_arity(app: Any) -> int | None:
    """How many positional arguments a call of `app` requires, or None if it cannot be told.

    Parameters with a default do not count: `def app(environ, start_response,
    debug=False)` is still WSGI.
    """
    try:
        parameters = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if parameter.default is inspect.Parameter.empty and parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            count += 1
    return count


def load_app(config: Config) -> LoadedApp:
    if config.chdir:
        try:
            os.chdir(config.chdir)
        except OSError as exc:
            raise AppImportError(
                f"cannot change to --chdir {config.chdir!r}: {exc.strerror}"
            ) from None
    for pair in config.env:
        key, _, value = pair.partition("=")
        os.environ[key] = value
    for directory in (*reversed(config.pythonpath), config.app_dir or os.getcwd()):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    app = resolve(config.app, config.factory)
    wanted = config.interface
    kind = detect(app) if wanted == "auto" else wanted
    if kind in ("asgi3", "asgi"):
        return LoadedApp(app, "asgi", wanted == "auto", "asgi")
    if kind == "asgi2":
        from prefork.asgi.asgi2 import ASGI2Adapter

        return LoadedApp(ASGI2Adapter(app), "asgi", wanted == "auto", "asgi2")
    return LoadedApp(app, "wsgi", wanted == "auto", "wsgi")
