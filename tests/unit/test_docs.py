"""The generated docs match the code, so they cannot drift from it."""

from __future__ import annotations

import re

import pytest

from prefork import _docgen, arguments, config, errors
from prefork.observe import accesslog
from tests.server import ROOT

DOCS = ROOT / "docs"
REGENERATE = "docs are stale: run `python -m prefork._docgen` and commit the result"


@pytest.mark.parametrize("name", sorted(_docgen.RENDERERS))
def test_generated_doc_is_current(name: str) -> None:
    assert (DOCS / name).read_text() == _docgen.RENDERERS[name](), REGENERATE


def test_check_mode_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert _docgen.main(["--check"]) == 0, capsys.readouterr().err


def test_every_setting_is_in_settings_md() -> None:
    text = (DOCS / "settings.md").read_text()
    for f in config.SETTINGS:
        meta = config.meta(f)
        assert f"### {f.name}\n" in text
        assert f"`{config.env_name(f.name)}`" in text
        for flag in meta.flags:
            assert re.search(rf"`{re.escape(flag)}[` ]", text), flag
            if meta.is_bool:
                assert f"`--no-{flag.removeprefix('--')}`" in text


def test_every_flag_and_exit_status_is_in_cli_md() -> None:
    text = (DOCS / "cli.md").read_text()
    for action in arguments.build_parser()._actions:
        for flag in action.option_strings:
            assert re.search(rf"`{re.escape(flag)}[` ]", text), flag
    for name, status in vars(errors).items():
        if name.startswith("EXIT_"):
            assert f"\n| {status} | " in text, name
    for signal_name in ("HUP", "TERM", "QUIT", "TTIN", "USR1", "USR2"):
        assert signal_name in text


def test_a_new_kind_of_setting_must_be_described() -> None:
    meta = config.SettingMeta(("--x",), lambda value: value, "doc", "Test")
    with pytest.raises(LookupError, match=r"_docgen\.TYPES"):
        _docgen.type_of(meta)


def test_logging_md_lists_every_atom() -> None:
    text = (DOCS / "logging.md").read_text()
    for atom in accesslog.ATOMS:
        assert f"| `%({atom})s` |" in text, atom
