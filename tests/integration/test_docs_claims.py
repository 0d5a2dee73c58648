"""What README.md and docs/operations.md promise, checked against the real thing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from prefork.arguments import build_parser
from tests.server import ROOT, control

README = (ROOT / "README.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def _flags(text: str) -> list[str]:
    return [flag for span in re.findall(r"`([^`]+)`", text) for flag in span.split("/")
            if flag.startswith("-")]  # fmt: skip


def _gunicorn_claim() -> tuple[list[str], list[str]]:
    """(flags said to work as in gunicorn or uvicorn, flags said to be refused)."""
    paragraph = README.split("A gunicorn or uvicorn command line works", 1)[1]
    paragraph = paragraph.split("\n\n", 1)[0]
    supported, unsupported = re.split(r"What\s+has no equivalent", paragraph, maxsplit=1)
    return _flags(supported), _flags(unsupported.split("is refused", 1)[0])


def test_the_gunicorn_flags_the_readme_lists_exist() -> None:
    supported, unsupported = _gunicorn_claim()
    assert len(supported) > 15 and len(unsupported) >= 4
    accepted = {s for action in build_parser()._actions for s in action.option_strings}
    assert sorted(set(supported) - accepted) == []


@pytest.mark.parametrize("flag", _gunicorn_claim()[1])
def test_an_unsupported_gunicorn_flag_is_one_line_and_exit_2(flag: str) -> None:
    # "-k gevent" is a flag and its value; the others get a value of their own.
    result = control("app:application", *flag.split(), "value", "--check-config")
    assert result.returncode == 2
    assert result.stderr.startswith("prefork: error: ")
    assert flag.split(maxsplit=1)[0] in result.stderr
    assert "is not supported: " in result.stderr or "prefork has no " in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_example_units_verify_with_and_without_the_optional_socket(tmp_path: Path) -> None:
    units = {}
    for name in ("shop.service", "shop.socket"):
        text = (ROOT / "examples" / "systemd" / name).read_text()
        # The venv and the user of the example do not exist here.
        text = re.sub(r"ExecStart=\S+", "ExecStart=/bin/true", text)
        units[name] = text.replace("User=shop", "User=root").replace("Group=shop", "Group=root")
    assert "`--socket` adds a socket\nunit" in OPERATIONS  # the socket unit is optional
    service = tmp_path / "shop.service"
    service.write_text(re.sub(r"(Requires|After)=shop\.socket\n", "", units["shop.service"]))
    verify = ["systemd-analyze", "verify", str(service)]
    result = subprocess.run(verify, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr

    (tmp_path / "shop.socket").write_text(units["shop.socket"])
    service.write_text(units["shop.service"])
    verify.append(str(tmp_path / "shop.socket"))
    result = subprocess.run(verify, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
