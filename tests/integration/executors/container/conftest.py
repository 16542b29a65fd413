"""Fixtures for the container executor's tests: executors on the session's private Podman
engine (`podman_engine`), with short periods, over the test's blob folder, and the images the
operators run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from aorta.blobs.local import LocalBlobStore
from aorta.executors import OperatorRun
from aorta.executors.container.engine import ContainerEngine
from aorta.executors.container.executor import ContainerExecutor
from aorta.executors.container.settings import ContainerSettings, PullPolicy
from aorta.testing.images import build_busybox_image
from aorta.testing.podman import PodmanEngine

CLARA_COPY_IMAGE = "localhost/aorta-test/clara-copy:latest"
"""A Clara-style image: its entrypoint copies `/input` to `/output`, so it runs without a
`command`; pipelines name it `aorta-test/clara-copy`."""

CLARA_COPY_SCRIPT = """\
set -e
echo "copy started"
cp -r /input/. /output/
echo "copy done"
"""

MakeExecutor = Callable[..., Awaitable[ContainerExecutor]]


@pytest.fixture(scope="session")
def clara_copy_image(podman_engine: PodmanEngine) -> str:
    return build_busybox_image(podman_engine.cli, CLARA_COPY_IMAGE, CLARA_COPY_SCRIPT)


@pytest.fixture
def container_settings() -> ContainerSettings:
    return ContainerSettings(
        pull_policy=PullPolicy.IF_NOT_PRESENT,
        instance="aorta-test",
        stop_grace=1.0,
        log_flush_interval=0.1,
    )


@pytest.fixture
async def make_executor(
    podman_engine: PodmanEngine,
    blobs: LocalBlobStore,
    container_settings: ContainerSettings,
    tmp_path: Path,
) -> AsyncIterator[MakeExecutor]:
    """Opens container executors on the engine (each closed at the end of the test)."""
    opened: list[ContainerExecutor] = []

    async def make(settings: ContainerSettings | None = None) -> ContainerExecutor:
        executor = await ContainerExecutor.open(
            podman_engine.url, settings or container_settings, blobs, tmp_path / "work"
        )
        opened.append(executor)
        return executor

    yield make
    for executor in opened:
        await executor.close()


@pytest.fixture
async def executor(make_executor: MakeExecutor) -> ContainerExecutor:
    return await make_executor()


@pytest.fixture
async def engine(podman_engine: PodmanEngine) -> AsyncIterator[ContainerEngine]:
    """A connection of the test's own, to look at containers as the engine sees them."""
    connection = await ContainerEngine.connect(podman_engine.url)
    yield connection
    await connection.close()


def in_image(run: OperatorRun, image: str, *command: str) -> OperatorRun:
    """`run` with the image `image` (`name:tag`) and `command` (none: the image's own)."""
    name, _, tag = image.rpartition(":")
    return replace(run, image=name, tag=tag, command=tuple(command))
