"""`AORTA_EXECUTOR` and `aorta up --executor` resolved: `auto` follows the engine probe."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.errors import Unavailable
from aorta.executors.engine_probe import Engine
from aorta.executors.selection import ExecutorChoice, choose_executor
from tests.unit.executors.test_engine_probe import PODMAN_VERSION, engine_answers, fake_engine


async def test_auto_runs_containers_when_an_engine_answers(tmp_path: Path) -> None:
    socket = tmp_path / "podman.sock"
    environ = {"AORTA_CONTAINER_HOST": f"unix://{socket}"}
    async with fake_engine(socket, engine_answers(PODMAN_VERSION)):
        choice = await choose_executor("auto", environ, within=2)
    engine = Engine(f"unix://{socket}", "Podman", "4.3.1")
    assert choice == ExecutorChoice(
        "container", f"operators run in containers (Podman 4.3.1 at unix://{socket})", engine
    )


async def test_auto_runs_host_processes_when_none_answers(tmp_path: Path) -> None:
    environ = {"DOCKER_HOST": f"unix://{tmp_path / 'docker.sock'}"}
    choice = await choose_executor("auto", environ, within=1)
    assert choice.kind == "local" and choice.engine is None
    assert choice.reason == (
        "operators run as host processes: no container engine answered at "
        f"unix://{tmp_path / 'docker.sock'}"
    )


async def test_containers_asked_for_without_an_engine_are_refused(tmp_path: Path) -> None:
    environ = {"AORTA_CONTAINER_HOST": f"unix://{tmp_path / 'none.sock'}"}
    with pytest.raises(Unavailable, match="no container engine answered at unix://"):
        await choose_executor("container", environ, within=1)


async def test_local_and_kubernetes_are_taken_as_asked_without_a_probe() -> None:
    environ = {"AORTA_CONTAINER_HOST": "ssh://nowhere"}
    assert (await choose_executor("local", environ)).kind == "local"
    assert (await choose_executor("kubernetes", environ)).kind == "kubernetes"
    with pytest.raises(ValueError, match="unknown executor 'docker'"):
        await choose_executor("docker", environ)
