"""Fixtures shared by the whole suite: real servers, started and always stopped.

A test that needs a running prefork takes it from a fixture:

    from tests.server import Serve, SharedServers

    def test_x(serve: Serve) -> None:
        server = serve("tests.apps.proc_app:wsgi", "-w", "2")   # this test's own

    def test_y(shared_server: SharedServers) -> None:
        server = shared_server(ECHO_APP, "--limit-request-body", "1024")

`serve` starts a server for one test; `shared_server` starts one per distinct
command line on first use and shares it with the rest of the module, which is
what makes hundreds of corpus cases affordable.  Both wait for the master's
"Ready" line (never a sleep) and stop the master and its whole process group
at teardown, pass or fail.  They are built on tests/server.py's `run_server`,
used directly only where a test owns the server's lifetime (it stops the
server itself, then asserts on the exit status or the final log), and in the
module fixtures that give one server a name of its own (`wsgi_hello`).

Helper modules stay importable as `tests.<name>`: server.py (the process
runner), responses.py (the one response parser), protocol_harness.py (the
engine over a fake transport), corpus/ (the raw-request corpus), apps/
(the apps the servers run, by `python -m prefork tests.apps.X:app`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import pytest

from tests.server import Serve, SharedServers

# On a failure, hypothesis' pytest plugin imports its patch writer, which
# imports libcst, which subclasses the deprecated mypy_extensions.TypedDict:
# under filterwarnings=error that DeprecationWarning turns a clean failure
# report into an INTERNALERROR.  Importing it once here, warning silenced,
# leaves nothing to warn about later.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    with contextlib.suppress(ImportError):
        import hypothesis.extra._patching  # noqa: F401


@pytest.fixture
def serve() -> Iterator[Serve]:
    with contextlib.ExitStack() as stack:
        yield Serve(stack)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[SharedServers]:
    with contextlib.ExitStack() as stack:
        yield SharedServers(stack)
