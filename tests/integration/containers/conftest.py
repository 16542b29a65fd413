"""A Docker Engine API client on the session's Podman engine, and a way to run one container
through it to its end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiodocker
import pytest

from aorta.testing.podman import PodmanEngine


@pytest.fixture
async def docker(podman_engine: PodmanEngine) -> AsyncIterator[aiodocker.Docker]:
    """aiodocker's client of `podman_engine`, as the container executor would reach it."""
    async with aiodocker.Docker(url=podman_engine.url) as client:
        yield client


@dataclass(frozen=True)
class Finished:
    """What is left of a container that ran to its end: its exit code and its log."""

    exit_code: int
    log: str


async def run_to_end(docker: aiodocker.Docker, config: dict[str, Any]) -> Finished:
    """Creates a container from `config` (the Engine API's create body), starts it, waits for
    its end (at most a minute) and removes it."""
    container = await docker.containers.create(config)
    try:
        await container.start()
        status = await container.wait(timeout=60)
        log = "".join(await container.log(stdout=True, stderr=True))
        return Finished(status["StatusCode"], log)
    finally:
        await container.delete(force=True)
