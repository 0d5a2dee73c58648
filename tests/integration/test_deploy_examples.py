"""The container and Kubernetes examples: their command lines are valid and their
timeouts nest (preStop + graceful timeout < termination grace period)."""

from __future__ import annotations

import json
import re

from prefork.errors import EXIT_OK
from tests.integration.test_cli import run
from tests.server import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DEPLOYMENT = ROOT / "examples/kubernetes/deployment.yaml"


def dockerfile_cmd() -> list[str]:
    (line,) = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD ")]
    command: list[str] = json.loads(line.removeprefix("CMD "))
    return command


def deployment_args() -> list[str]:
    text = DEPLOYMENT.read_text()
    block = re.search(r"\n          args:\n((?:            - .*\n)+)", text)
    assert block is not None
    return [
        re.sub(r"\s+#.*$", "", line.strip().removeprefix("- ")).strip('"')
        for line in block[1].splitlines()
    ]


def test_dockerfile_command_is_valid() -> None:
    command = dockerfile_cmd()
    assert command[0] == "prefork"
    result = run(*command[1:], "--check-config", cwd=ROOT)
    assert result.returncode == EXIT_OK, result.stderr


def test_kubernetes_command_is_valid_and_timeouts_nest() -> None:
    args = deployment_args()
    assert args[0] == "prefork"
    result = run(*args[1:], "--check-config", cwd=ROOT)
    assert result.returncode == EXIT_OK, result.stderr
    graceful = float(args[args.index("--graceful-timeout") + 1])
    text = DEPLOYMENT.read_text()
    grace = re.search(r"terminationGracePeriodSeconds: (\d+)", text)
    pre_stop = re.search(r'command: \["sleep", "(\d+)"\]', text)
    assert grace is not None and pre_stop is not None
    assert int(grace[1]) > int(pre_stop[1]) + graceful
