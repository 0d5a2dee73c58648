"""An app that fails to import: one line that says what and where, then the user's traceback.

The line names the missing module and the line that imported it (not the
app module, when only a dependency is missing); the traceback shows the
user's frames, never prefork's loader or importlib's; the exit status is 4,
from --check-config and from a master whose workers cannot import the app.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prefork.errors import EXIT_IMPORT
from tests.integration.test_cli import run
from tests.server import run_server

MISSING_DEPENDENCY = "import os\nimport nonexistent_dep\n\napplication = None\n"
NESTED_FAILURE = "import helpers\n\napplication = None\n"
HELPERS = "def configure():\n    raise KeyError('DATABASE_URL')\n\n\nconfigure()\n"
FACTORY = """\
def create_app():
    return build()


def build():
    raise ValueError("no settings")
"""


def check_config(tmp_path: Path, spec: str) -> list[str]:
    result = run(spec, "--check-config", cwd=tmp_path)
    assert result.returncode == EXIT_IMPORT, result
    return result.stderr.splitlines()


def assert_user_traceback(lines: list[str], *frames: str) -> None:
    assert lines[0] == "Traceback (most recent call last):", lines
    text = "\n".join(lines)
    for frame in frames:
        assert frame in text
    assert "loader.py" not in text
    assert "<frozen" not in text
    assert "importlib" not in text


@pytest.mark.parametrize(
    ("module", "dependency"),
    [
        ("app", "nonexistent_dep"),
        # The missing name is a prefix of the app module's: still the dependency.
        ("mysite", "my"),
    ],
)
def test_a_missing_dependency_is_named_with_its_importer(
    tmp_path: Path, module: str, dependency: str
) -> None:
    source = tmp_path / f"{module}.py"
    source.write_text(MISSING_DEPENDENCY.replace("nonexistent_dep", dependency))
    lines = check_config(tmp_path, f"{module}:application")
    assert lines[0] == (
        f"prefork: error: cannot import '{module}:application': "
        f"No module named '{dependency}' (imported at {source}:2)"
    )
    assert_user_traceback(lines[1:], f'File "{source}", line 2, in <module>')
    assert lines[-1] == f"ModuleNotFoundError: No module named '{dependency}'"


def test_a_missing_app_module_is_one_line(tmp_path: Path) -> None:
    # A package that exists with a module that does not: the app's module is missing.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    lines = check_config(tmp_path, "pkg.wsgi:application")
    assert lines == [
        "prefork: error: cannot import 'pkg.wsgi:application': No module named 'pkg.wsgi'"
    ]


def test_an_error_deep_in_the_users_code_shows_every_user_frame(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(NESTED_FAILURE)
    (tmp_path / "helpers.py").write_text(HELPERS)
    lines = check_config(tmp_path, "app:application")
    assert lines[0] == (
        "prefork: error: cannot import 'app:application': "
        f"KeyError: 'DATABASE_URL' ({tmp_path / 'helpers.py'}:2)"
    )
    assert_user_traceback(
        lines[1:],
        f'File "{tmp_path / "app.py"}", line 1, in <module>',
        f'File "{tmp_path / "helpers.py"}", line 5, in <module>',
        f'File "{tmp_path / "helpers.py"}", line 2, in configure',
    )


def test_a_failing_factory_shows_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "factory.py").write_text(FACTORY)
    lines = check_config(tmp_path, "factory:create_app()")
    assert lines[0].startswith(
        "prefork: error: cannot import 'factory:create_app()': factory failed: "
        "ValueError: no settings"
    )
    assert_user_traceback(
        lines[1:],
        "line 2, in create_app",
        "line 6, in build",
    )


@pytest.mark.parametrize("preload", [False, True], ids=["workers", "preload"])
def test_the_server_logs_the_summary_then_the_traceback_once(tmp_path: Path, preload: bool) -> None:
    (tmp_path / "app.py").write_text(MISSING_DEPENDENCY)
    args = ["-w", "3", "--app-dir", str(tmp_path), *(["--preload"] if preload else [])]
    with run_server("app:application", *args, wait_ready=False) as server:
        assert server.wait() == EXIT_IMPORT
        server.wait_for_log("^ModuleNotFoundError")  # the traceback has been read
    lines = server.lines
    summary = "cannot import 'app:application': No module named 'nonexistent_dep'"
    first = next(i for i, line in enumerate(lines) if summary in line)
    assert_user_traceback(lines[first + 1 : first + 5], "line 2, in <module>")
    assert sum(line.startswith("Traceback") for line in lines) == 1
