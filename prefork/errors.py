"""Every error prefork raises on purpose, and what each one means to the user.

    PreforkError                      base; carries the process exit status
     +-- ConfigError                  bad setting, source named; exit 2
     +-- BindError                    a listener cannot be opened; exit 1
     +-- AppImportError               "module:attr" cannot be imported; exit 4
     +-- BootError                    the app imported but the worker could not start
     |                                (lifespan startup failed, ...); exit 3
     +-- ControlError                 `prefork status|reload|...` cannot reach the master,
         |                            or the command failed; exit 1
         +-- NoMasterError            nothing listens on the control socket; exit 1
         +-- ControlTimeout           its outcome did not come within --timeout; exit 5
         +-- ControlSocketInUse       (master) another master of ours answers on its path

    ProtocolError                     the peer broke HTTP; carries the status it implies
     +-- (status 400/408/413/414/431/501/505 chosen by the raiser)

Exit statuses are part of the interface (docs/cli.md documents them):
0 clean stop, 1 runtime error, 2 usage/config error, 3 worker boot failure,
4 application import failure, 5 a control command's outcome is still unknown.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_BOOT = 3
EXIT_IMPORT = 4
EXIT_TIMEOUT = 5


class PreforkError(Exception):
    exit_status = EXIT_RUNTIME


class ConfigError(PreforkError):
    exit_status = EXIT_USAGE


class BindError(PreforkError):
    exit_status = EXIT_RUNTIME


class AppImportError(PreforkError):
    """`str()` is the one-line summary; `details` the user's traceback, if any."""

    exit_status = EXIT_IMPORT

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class BootError(PreforkError):
    exit_status = EXIT_BOOT


class ControlError(PreforkError):
    exit_status = EXIT_RUNTIME


class NoMasterError(ControlError):
    exit_status = EXIT_RUNTIME


class ControlTimeout(ControlError):
    exit_status = EXIT_TIMEOUT


class ControlSocketInUse(ControlError):
    """Another live master of ours already answers on this control socket path."""


class ProtocolError(Exception):
    """The client sent something we must refuse; `status` is the answer it gets.

    The connection is always closed after a ProtocolError: once framing is in
    doubt, nothing else read from that connection can be trusted.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
