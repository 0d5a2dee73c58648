"""The compiled hot path: running it, and when the sources run instead (prefork/compiled.py)."""

from __future__ import annotations

import importlib.machinery
import os
import runpy
import sys
import sysconfig
import types
import zlib
from pathlib import Path

import pytest

import prefork
from prefork import compiled

FORCED_PURE = os.environ.get(compiled.PURE_PYTHON_VARIABLE, "") not in ("", "0")
EXTENSION = importlib.machinery.EXTENSION_SUFFIXES[0]
ROOT = Path(__file__).resolve().parent.parent.parent
# The extension suffix of a Python this one is not, and what this one says of its build.
OTHER_PYTHON = ".cpython-399-x86_64-linux-gnu.so"
NOT_BUILT = f"not built for Python {sys.version_info[0]}.{sys.version_info[1]}"


def test_the_hot_path_runs_compiled_unless_told_not_to() -> None:
    import prefork.http.connection
    import prefork.wsgi.inline

    files = [prefork.http.connection.__file__ or "", prefork.wsgi.inline.__file__ or ""]
    if FORCED_PURE:
        assert compiled.MODE == "pure Python (PREFORK_PURE_PYTHON is set)"
        assert all(name.endswith(".py") for name in files), files
    else:
        # The README's install commands build it; the suite must test what users run.
        assert compiled.MODE == compiled.COMPILED, (
            f"the hot path is not compiled: {compiled.MODE}; reinstall with "
            "`python3 -m pip install -e '.[test]' -c constraints.txt`"
        )
        assert all(name.endswith(EXTENSION) for name in files), files


def _build(root: Path, source: bytes = b"x = 1\n", *, extension: bool = True) -> compiled.Builds:
    package = root / "pkg"
    package.mkdir()
    (package / "mod.py").write_bytes(source)
    if extension:
        (package / f"mod{EXTENSION}").write_bytes(b"")
    return {EXTENSION: {"pkg.mod": zlib.crc32(source)}}


@pytest.fixture
def not_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compiled.PURE_PYTHON_VARIABLE, raising=False)


@pytest.mark.usefixtures("not_forced")
def test_a_build_matching_its_sources_runs(tmp_path: Path) -> None:
    assert compiled.why_pure(_build(tmp_path), tmp_path) is None


@pytest.mark.usefixtures("not_forced")
def test_a_source_edited_after_the_build_runs_as_python(tmp_path: Path) -> None:
    builds = _build(tmp_path)
    (tmp_path / "pkg" / "mod.py").write_bytes(b"x = 2\n")
    assert compiled.why_pure(builds, tmp_path) == (
        "pkg.mod changed since the build: reinstall to compile it"
    )


@pytest.mark.usefixtures("not_forced")
def test_a_build_for_another_python_runs_as_python(tmp_path: Path) -> None:
    builds = _build(tmp_path, extension=False)
    assert compiled.why_pure({OTHER_PYTHON: builds[EXTENSION]}, tmp_path) == NOT_BUILT


@pytest.mark.usefixtures("not_forced")
def test_another_pythons_build_does_not_vouch_for_extensions_left_over(tmp_path: Path) -> None:
    # An editable install keeps each Python's extensions side by side: a
    # rebuild for another Python, after an edit, records the edited sources,
    # and this Python's extension from before the edit must not run.
    builds = _build(tmp_path, b"x = 2\n")
    assert compiled.why_pure({OTHER_PYTHON: builds[EXTENSION]}, tmp_path) == NOT_BUILT


@pytest.mark.usefixtures("not_forced")
def test_a_half_removed_build_runs_as_python(tmp_path: Path) -> None:
    builds = _build(tmp_path)
    (tmp_path / "pkg" / f"mod{EXTENSION}").unlink()
    assert compiled.why_pure(builds, tmp_path) == (
        "pkg.mod is missing from the build: reinstall to compile it"
    )


@pytest.mark.usefixtures("not_forced")
def test_an_install_without_sources_trusts_its_build(tmp_path: Path) -> None:
    builds = _build(tmp_path)
    (tmp_path / "pkg" / "mod.py").unlink()
    assert compiled.why_pure(builds, tmp_path) is None


@pytest.mark.parametrize(
    ("value", "forced"), [("1", True), ("yes", True), ("0", False), ("", False)]
)
def test_the_variable_forces_pure_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, forced: bool
) -> None:
    monkeypatch.setenv(compiled.PURE_PYTHON_VARIABLE, value)
    why = compiled.why_pure(_build(tmp_path), tmp_path)
    assert why == ("PREFORK_PURE_PYTHON is set" if forced else None)


def test_the_version_says_which_hot_path_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from prefork.arguments import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert capsys.readouterr().out == f"prefork {prefork.__version__}, hot path {compiled.MODE}\n"


def _select_with(monkeypatch: pytest.MonkeyPatch, **manifest: object) -> str:
    """compiled.select() given this manifest, with sys.meta_path restored afterwards."""
    module = types.ModuleType("prefork._compiled_sources")
    for name, value in manifest.items():
        setattr(module, name, value)
    monkeypatch.setitem(sys.modules, "prefork._compiled_sources", module)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    return compiled.select()


def test_a_build_keeps_the_builds_for_other_pythons(tmp_path: Path) -> None:
    helpers = runpy.run_path(str(ROOT / "setup.py"), run_name="setup")
    write_manifest = helpers["write_manifest"]
    manifest = tmp_path / "_compiled_sources.py"
    write_manifest.__globals__["BUILD"] = OTHER_PYTHON
    write_manifest(manifest)
    write_manifest.__globals__["BUILD"] = EXTENSION
    write_manifest(manifest, "cc failed (CompileError)")
    recorded = runpy.run_path(str(manifest))
    assert set(recorded["BUILDS"]) == {OTHER_PYTHON}
    assert recorded["SKIPPED"] == {EXTENSION: "cc failed (CompileError)"}
    assert helpers["read_manifest"](manifest) == (recorded["BUILDS"], recorded["SKIPPED"])
    assert "prefork.http.connection" in recorded["MODULES"]
    write_manifest(manifest)  # then it compiles after all
    recorded = runpy.run_path(str(manifest))
    assert set(recorded["BUILDS"]) == {OTHER_PYTHON, EXTENSION} and recorded["SKIPPED"] == {}
    assert recorded["BUILDS"][EXTENSION]["prefork.http.connection"] == zlib.crc32(
        (ROOT / "prefork" / "http" / "connection.py").read_bytes()
    )


def test_the_build_and_the_run_agree_on_the_suffix() -> None:
    assert sysconfig.get_config_var("EXT_SUFFIX") == compiled.BUILD


def _source_comes_first(module: str) -> bool:
    """Whether the finder select() put first loads `module` (a prefork.wsgi one) from source."""
    spec = sys.meta_path[0].find_spec(module, [str(Path(prefork.__file__).parent / "wsgi")])
    return spec is not None and spec.origin is not None and spec.origin.endswith(".py")


@pytest.mark.usefixtures("not_forced")
def test_an_install_the_compiler_failed_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    mode = _select_with(
        monkeypatch,
        MODULES=["prefork.wsgi.environ"],
        BUILDS={},
        SKIPPED={EXTENSION: "cc failed (CompileError)"},
    )
    assert mode == "pure Python (not compiled at install: cc failed (CompileError))"
    assert _source_comes_first("prefork.wsgi.environ")  # a build from before the failure


@pytest.mark.usefixtures("not_forced")
def test_a_stale_build_puts_the_sources_first(monkeypatch: pytest.MonkeyPatch) -> None:
    mode = _select_with(
        monkeypatch,
        MODULES=["prefork.wsgi.environ"],
        BUILDS={EXTENSION: {"prefork.wsgi.environ": 0}},
        SKIPPED={},
    )
    assert mode.startswith("pure Python (")
    if compiled.MODE == compiled.COMPILED:  # an install without a build says "not built"
        assert mode == (
            "pure Python (prefork.wsgi.environ changed since the build: reinstall to compile it)"
        )
    assert _source_comes_first("prefork.wsgi.environ")
    assert sys.meta_path[0].find_spec("prefork.wsgi.inline", None) is None  # not in MODULES
