"""`AORTA_EXECUTOR` and `aorta up --executor` resolved: `auto` follows the engine probe."""

from __future__ import annotations

import asyncio
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


async def test_containers_asked_for_wait_no_longer_than_told(tmp_path: Path) -> None:
    socket = tmp_path / "web.sock"
    environ = {"AORTA_CONTAINER_HOST": f"unix://{socket}"}
    async with fake_engine(socket, lambda path: (404, b"not found")) as asked:
        with pytest.raises(Unavailable, match=r"answered at unix://\S+ within 1 s"):
            await choose_executor("container", environ, within=1, wait=1)
    assert len(asked) >= 2 and set(asked) == {"/_ping"}


async def test_containers_asked_for_wait_for_an_engine_still_starting(tmp_path: Path) -> None:
    socket = tmp_path / "podman.sock"
    environ = {"AORTA_CONTAINER_HOST": f"unix://{socket}"}
    pings = 0

    def starting(path: str) -> tuple[int, bytes]:
        nonlocal pings
        if path == "/_ping":
            pings += 1
            if pings < 3:
                return 503, b"starting"
        return engine_answers(PODMAN_VERSION)(path)

    async with fake_engine(socket, starting) as asked:
        choice = await choose_executor("container", environ, within=2, wait=60)
    assert choice.engine == Engine(f"unix://{socket}", "Podman", "4.3.1")
    assert asked == ["/_ping", "/_ping", "/_ping", "/version"]


async def test_auto_waits_for_an_engine_that_takes_the_connection_but_answers_late(
    tmp_path: Path,
) -> None:
    socket = tmp_path / "podman.sock"
    environ = {"AORTA_CONTAINER_HOST": f"unix://{socket}"}
    answer = engine_answers(PODMAN_VERSION)
    connections: list[asyncio.StreamWriter] = []

    async def busy_at_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        if len(connections) == 1:
            return  # held open, never answered: the first probe times out
        path = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1].decode()
        status, body = answer(path)
        writer.write(f"HTTP/1.0 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        writer.write(body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(busy_at_first, path=str(socket))
    try:
        choice = await choose_executor("auto", environ, within=0.2, wait=60)
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
    assert choice.kind == "container"
    assert choice.engine == Engine(f"unix://{socket}", "Podman", "4.3.1")
    # The silent one, then /_ping and /version: the first probe's 0.2 s is meant to run out;
    # on a busy machine a later probe's may too, and it is probed again, longer.
    assert len(connections) >= 3


async def test_local_and_kubernetes_are_taken_as_asked_without_a_probe() -> None:
    environ = {"AORTA_CONTAINER_HOST": "ssh://nowhere"}
    assert (await choose_executor("local", environ)).kind == "local"
    assert (await choose_executor("kubernetes", environ)).kind == "kubernetes"
    with pytest.raises(ValueError, match="unknown executor 'docker'"):
        await choose_executor("docker", environ)
