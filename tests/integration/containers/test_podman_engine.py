"""The tests' Podman engine: a Docker Engine API on a private socket, whose storage the podman
CLI shares, and which leaves no container behind when stopped or when its owner was killed."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiodocker
import aiohttp
import psutil
import pytest

from aorta.testing.images import build_busybox_image
from aorta.testing.podman import ENGINE_FOLDER_PREFIX, PodmanEngine, sweep_abandoned_engines

_CRASHING_OWNER = """
import sys, time
from pathlib import Path
from aorta.testing.images import build_busybox_image
from aorta.testing.podman import PodmanEngine

engine = PodmanEngine(directory=Path(sys.argv[1]))
engine.start()
image = build_busybox_image(engine.cli, "localhost/aorta-test/sleeper:latest")
engine.cli.run("run", "--detach", image, "sleep", "600")
print("running", flush=True)
time.sleep(600)
"""


def processes_using(folder: Path) -> list[psutil.Process]:
    """Processes whose command line names `folder` (podman, conmon, a container's runtime)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(folder) in part for part in process.info["cmdline"] or ()):
            found.append(process)
    return found


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A short folder of the temporary folder (podman wants its run root within 50 bytes)."""
    with tempfile.TemporaryDirectory(prefix="aorta-t-") as folder:
        yield Path(folder)


async def test_the_engine_answers_ping_and_version_on_its_socket(
    podman_engine: PodmanEngine, docker: aiodocker.Docker
) -> None:
    assert podman_engine.url == f"unix://{podman_engine.socket}"
    connector = aiohttp.UnixConnector(path=str(podman_engine.socket))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get("http://podman/_ping") as answer,
    ):
        assert (answer.status, await answer.text()) == (200, "OK")
    version = await docker.version()
    assert any(component["Name"] == "Podman Engine" for component in version["Components"])
    assert version["ApiVersion"]


async def test_the_podman_cli_in_the_engines_environment_sees_its_containers(
    podman_engine: PodmanEngine, docker: aiodocker.Docker, busybox_image: str
) -> None:
    container = await docker.containers.create(
        {"Image": busybox_image, "Cmd": ["true"], "Labels": {"aorta.test": "cli-sees-it"}}
    )
    try:
        listed = await asyncio.to_thread(
            subprocess.run,
            ["podman", "ps", "--all", "--filter", "label=aorta.test=cli-sees-it", "-q"],
            env=podman_engine.environ,
            capture_output=True,
            text=True,
            check=True,
        )
        assert container.id.startswith(listed.stdout.strip())
        assert listed.stdout.strip()
    finally:
        await container.delete(force=True)


async def test_stopping_removes_every_container_and_the_storage() -> None:
    engine = PodmanEngine()
    async with engine:
        folder = engine.socket.parent
        image = await asyncio.to_thread(build_busybox_image, engine.cli, "localhost/bb:latest")
        await engine.cli.arun("run", "--detach", image, "sleep", "600")
        assert processes_using(folder)
    assert not folder.exists()
    assert processes_using(folder) == []


async def test_the_storage_of_a_killed_owner_is_swept(scratch: Path) -> None:
    folder = scratch / f"{ENGINE_FOLDER_PREFIX}crashed"
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHING_OWNER, str(folder), stdout=asyncio.subprocess.PIPE
    )
    assert owner.stdout is not None
    try:
        async with asyncio.timeout(60):
            while (line := await owner.stdout.readline()) != b"running\n":
                assert line, "the owner ended before its container ran"
    finally:
        with contextlib.suppress(ProcessLookupError):
            owner.send_signal(signal.SIGKILL)
        await owner.wait()
    assert processes_using(folder), "the container outlives its owner"
    live = scratch / f"{ENGINE_FOLDER_PREFIX}of-a-live-run"
    live.mkdir()
    (live / "owner").write_text(f"{psutil.Process().pid} {psutil.Process().create_time()}\n")

    removed = await asyncio.to_thread(sweep_abandoned_engines, scratch)

    assert removed == [folder]
    assert not folder.exists()
    assert live.exists()
    assert processes_using(folder) == []
