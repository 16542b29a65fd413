"""`aorta up --executor`: the choice reaches the scheduler, and the start-up lines say it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from aorta.errors import Unavailable
from aorta.executors.engine_probe import Engine
from aorta.executors.selection import ExecutorChoice
from aorta.runtime.service import Running, ServiceContext
from aorta.settings import Settings
from aorta_services.launch.embedded import (
    Access,
    EmbeddedOptions,
    banner,
    run_embedded,
    scheduler_environ,
    with_environ,
)
from aorta_services.launch.main import cli

PODMAN = Engine("unix:///run/podman/podman.sock", "Podman", "4.3.1")
IN_CONTAINERS = ExecutorChoice(
    "container", "operators run in containers (Podman 4.3.1 at unix:///run/podman/podman.sock)"
)


def test_the_banner_says_where_operators_run() -> None:
    settings = Settings.from_env({})
    access = Access("127.0.0.1:30031")
    text = banner(access, settings, 30031, "nats://127.0.0.1:4222", IN_CONTAINERS.reason)
    line = "  Operators run in containers (Podman 4.3.1 at unix:///run/podman/podman.sock).\n"
    assert line in text


def test_the_scheduler_runs_the_executor_chosen_on_the_engine_that_answered() -> None:
    environ = {"AORTA_SCHEDULER_EXECUTOR": "local", "HOME": "/root"}
    chosen = scheduler_environ(environ, ExecutorChoice("container", "why", PODMAN))
    assert chosen == {
        "AORTA_EXECUTOR": "container",
        "AORTA_CONTAINER_HOST": "unix:///run/podman/podman.sock",
        "HOME": "/root",
    }
    assert scheduler_environ(environ, ExecutorChoice("local", "why")) == {
        "AORTA_EXECUTOR": "local",
        "HOME": "/root",
    }


async def test_with_environ_hands_the_environment_to_the_service() -> None:
    received: list[object] = []

    async def start(ctx: ServiceContext, *, environ: Mapping[str, str] = os.environ) -> Running:
        received.append(environ)
        raise RuntimeError("enough")

    started = with_environ(start, {"AORTA_EXECUTOR": "local"})
    with pytest.raises(RuntimeError, match="enough"):
        await started(object())  # type: ignore[arg-type]
    assert received == [{"AORTA_EXECUTOR": "local"}]


def test_up_offers_auto_container_and_local_and_defaults_to_auto() -> None:
    shown = CliRunner().invoke(cli, ["up", "--help"])
    assert shown.exit_code == 0
    assert "--executor [auto|container|local]" in shown.output
    words = " ".join(shown.output.split())
    assert "[env var: AORTA_EXECUTOR; default: auto]" in words
    refused = CliRunner().invoke(cli, ["up", "--executor", "docker"])
    assert refused.exit_code == 2
    from_setting = CliRunner().invoke(cli, ["up"], env={"AORTA_EXECUTOR": "kubernetes"})
    assert from_setting.exit_code == 2
    assert "Invalid value for '--executor'" in from_setting.output


async def test_containers_asked_for_without_an_engine_stop_the_start(tmp_path: Path) -> None:
    options = EmbeddedOptions(tmp_path / "data", executor="container")
    environ = {"AORTA_CONTAINER_HOST": f"unix://{tmp_path / 'none.sock'}"}
    with pytest.raises(Unavailable, match="no container engine answered at unix://"):
        await run_embedded(options, environ)
    assert not (tmp_path / "data").exists()
