"""What README.md and docs/operations.md promise, checked against the real thing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from prefork.cli import build_parser
from tests.server import ROOT, control

README = (ROOT / "README.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def _flags(text: str) -> list[str]:
    return [flag for span in re.findall(r"`([^`]+)`", text) for flag in span.split("/")
            if flag.startswith("-")]  # fmt: skip


def _gunicorn_claim() -> tuple[list[str], list[str]]:
    """(flags said to work as in gunicorn, flags said to be unsupported)."""
    paragraph = README.split("A gunicorn command line works", 1)[1].split("\n\n", 1)[0]
    supported, unsupported = paragraph.split("Not supported yet:", 1)
    return _flags(supported), [f for f in _flags(unsupported) if f != "-c"]


def test_the_gunicorn_flags_the_readme_lists_exist() -> None:
    supported, unsupported = _gunicorn_claim()
    assert len(supported) > 20 and len(unsupported) > 5
    accepted = {s for action in build_parser()._actions for s in action.option_strings}
    assert sorted(set(supported) - accepted) == []
    assert sorted(set(unsupported) & accepted) == []


@pytest.mark.parametrize("flag", _gunicorn_claim()[1])
def test_an_unsupported_gunicorn_flag_is_one_line_and_exit_2(flag: str) -> None:
    result = control("app:application", flag, "value", "--check-config")
    assert result.returncode == 2
    assert result.stderr.startswith(f"prefork: error: unrecognized arguments: {flag}")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_units_verify_with_and_without_the_optional_socket(tmp_path: Path) -> None:
    units = {}
    for block in re.findall(r"```ini\n(.*?)```", OPERATIONS, re.S):
        name = re.search(r"# /etc/systemd/system/(\S+)", block)
        assert name is not None
        # The venv in the example does not exist here; any executable will do.
        units[name[1]] = re.sub(r"ExecStart=\S+", "ExecStart=/bin/true", block)
    service = tmp_path / "shop.service"
    service.write_text(units["shop.service"])
    verify = ["systemd-analyze", "verify", str(service)]
    result = subprocess.run(verify, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr

    # With socket activation, as the text says: the socket unit plus two lines.
    assert "`Requires=shop.socket` and `After=shop.socket`" in OPERATIONS
    (tmp_path / "shop.socket").write_text(units["shop.socket"])
    service.write_text(
        units["shop.service"].replace(
            "[Unit]\n", "[Unit]\nRequires=shop.socket\nAfter=shop.socket\n"
        )
    )
    verify.append(str(tmp_path / "shop.socket"))
    result = subprocess.run(verify, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
