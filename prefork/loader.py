"""Import the user's application and decide which interface it speaks.

APP forms: `module:attr`, `module:attr.sub` (attribute path), `module`
(meaning `module:application`, as gunicorn does), and factories:
`module:create_app()` or `--factory`.

Detection (`--interface auto`): an object whose `__call__` (or itself) is a
coroutine function is ASGI 3; a class is ASGI 2 (instantiated with the scope,
the instance awaited with receive/send); anything else callable is WSGI.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Literal

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
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppImportError(f"cannot import {spec!r}: {exc}") from None
        raise AppImportError(f"cannot import {spec!r}: {_summary(exc)}") from exc
    except BaseException as exc:
        raise AppImportError(f"cannot import {spec!r}: {_summary(exc)}") from exc


def _summary(exc: BaseException) -> str:
    """The exception and where it was raised in the user's code, on one line."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" ({last.filename}:{last.lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


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
            raise AppImportError(
                f"cannot import {spec!r}: factory failed: {_summary(exc)}"
            ) from exc
    if not callable(obj):
        raise AppImportError(f"cannot import {spec!r}: {type(obj).__name__} is not callable")
    return obj


def detect(app: Any) -> str:
    if inspect.isclass(app):
        call = getattr(app, "__call__", None)  # noqa: B004 - the instance's __call__
        return "asgi3" if inspect.iscoroutinefunction(call) and not _takes_scope(app) else "asgi2"
    if inspect.iscoroutinefunction(app):
        return "asgi3"
    call = getattr(app, "__call__", None)  # noqa: B004
    if call is not None and inspect.iscoroutinefunction(call):
        return "asgi3"
    return "wsgi"


def _takes_scope(cls: type) -> bool:
    try:
        params = list(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return True
    return len(params) == 1


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
