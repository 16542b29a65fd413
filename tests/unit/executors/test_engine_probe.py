"""The container engine probe `auto` decides on: a fake engine on a unix socket answers it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from aorta.executors.engine_probe import (
    Detection,
    Engine,
    candidate_hosts,
    default_host,
    detect,
    has_image,
    probe,
)

PODMAN_VERSION: dict[str, object] = {
    "Version": "4.3.1",
    "ApiVersion": "1.41",
    "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}],
}
DOCKER_VERSION: dict[str, object] = {
    "Version": "24.0.7",
    "Components": [{"Name": "Engine", "Version": "24.0.7"}],
}

Answer = Callable[[str], tuple[int, bytes]]


def engine_answers(version: Mapping[str, object]) -> Answer:
    def answer(path: str) -> tuple[int, bytes]:
        if path == "/_ping":
            return 200, b"OK"
        if path == "/version":
            return 200, json.dumps(version).encode()
        if path == "/images/aorta/example-reader:0.1.0/json":
            return 200, b'{"Id": "sha256:1"}'
        return 404, b"{}"

    return answer


@asynccontextmanager
async def fake_engine(socket: Path, answer: Answer) -> AsyncIterator[list[str]]:
    """A unix-socket HTTP server answering each GET with `answer(path)`; yields the paths
    asked, in order."""
    asked: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        # A Docker client may name the API version first: /v1.41/version.
        path = re.sub(r"^/v[0-9.]+/", "/", request.split(b" ")[1].decode())
        asked.append(path)
        status, body = answer(path)
        kind = "text/plain" if path == "/_ping" else "application/json"
        head = f"HTTP/1.0 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}"
        writer.write(f"{head}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(serve, path=str(socket))
    try:
        yield asked
    finally:
        server.close()
        await server.wait_closed()


async def test_a_podman_service_is_found_and_named(tmp_path: Path) -> None:
    socket = tmp_path / "podman.sock"
    async with fake_engine(socket, engine_answers(PODMAN_VERSION)) as asked:
        found = await probe(f"unix://{socket}", within=2)
    assert found == Engine(f"unix://{socket}", "Podman", "4.3.1")
    assert asked == ["/_ping", "/version"]
    assert found.describe() == f"Podman 4.3.1 at unix://{socket}"


async def test_a_docker_engine_is_named_docker(tmp_path: Path) -> None:
    socket = tmp_path / "docker.sock"
    async with fake_engine(socket, engine_answers(DOCKER_VERSION)):
        found = await probe(f"unix://{socket}", within=2)
    assert found == Engine(f"unix://{socket}", "Docker", "24.0.7")


async def test_an_image_is_looked_up_by_the_name_pipelines_use(tmp_path: Path) -> None:
    socket = tmp_path / "podman.sock"
    async with fake_engine(socket, engine_answers(PODMAN_VERSION)):
        assert await has_image(f"unix://{socket}", "aorta/example-reader:0.1.0", within=2)
        assert not await has_image(f"unix://{socket}", "aorta/example-writer:0.1.0", within=2)
    assert not await has_image(f"unix://{socket}", "aorta/example-reader:0.1.0", within=2)


async def test_no_socket_means_no_engine(tmp_path: Path) -> None:
    assert await probe(f"unix://{tmp_path / 'absent.sock'}", within=2) is None


async def test_a_server_that_does_not_answer_ok_to_ping_is_no_engine(tmp_path: Path) -> None:
    socket = tmp_path / "web.sock"
    async with fake_engine(socket, lambda path: (404, b"not found")) as asked:
        assert await probe(f"unix://{socket}", within=2) is None
    assert asked == ["/_ping"]


async def test_a_silent_server_is_given_up_after_the_timeout(tmp_path: Path) -> None:
    socket = tmp_path / "silent.sock"
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_unix_server(hold, path=str(socket))
    try:
        # The server never answers: the probe gives up at its timeout rather than wait for
        # ever (the outer bound only keeps a broken probe from hanging the suite).
        async with asyncio.timeout(60):
            assert await probe(f"unix://{socket}", within=0.3) is None
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_an_unreadable_version_still_counts_as_an_engine(tmp_path: Path) -> None:
    socket = tmp_path / "odd.sock"

    def answer(path: str) -> tuple[int, bytes]:
        return (200, b"OK") if path == "/_ping" else (200, b"not json")

    async with fake_engine(socket, answer):
        found = await probe(f"unix://{socket}", within=2)
    assert found == Engine(f"unix://{socket}", "container engine", "")


async def test_an_address_of_another_kind_is_no_engine() -> None:
    assert await probe("ssh://user@host", within=1) is None


def test_the_setting_comes_first_then_docker_host_then_the_usual_sockets() -> None:
    both = {"AORTA_CONTAINER_HOST": "unix:///a.sock", "DOCKER_HOST": "tcp://127.0.0.1:2375"}
    assert candidate_hosts(both) == ("unix:///a.sock",)
    assert candidate_hosts({"DOCKER_HOST": "tcp://127.0.0.1:2375"}) == ("tcp://127.0.0.1:2375",)
    assert candidate_hosts({"XDG_RUNTIME_DIR": "/run/user/1000/"}) == (
        "unix:///var/run/docker.sock",
        "unix:///run/podman/podman.sock",
        "unix:///run/user/1000/podman/podman.sock",
    )
    assert candidate_hosts({}) == (
        "unix:///var/run/docker.sock",
        "unix:///run/podman/podman.sock",
    )
    assert default_host({}) == "unix:///var/run/docker.sock"


async def test_detect_returns_the_first_engine_that_answers(tmp_path: Path) -> None:
    socket = tmp_path / "podman.sock"
    environ = {"AORTA_CONTAINER_HOST": f"unix://{socket}"}
    async with fake_engine(socket, engine_answers(PODMAN_VERSION)):
        found = await detect(environ, within=2)
    assert found.engine == Engine(f"unix://{socket}", "Podman", "4.3.1")
    assert found.describe() == f"operators run in containers (Podman 4.3.1 at unix://{socket})"


async def test_detect_says_where_it_looked_when_nothing_answers(tmp_path: Path) -> None:
    environ = {"AORTA_CONTAINER_HOST": f"unix://{tmp_path / 'none.sock'}"}
    found = await detect(environ, within=1)
    assert found == Detection(None, (f"unix://{tmp_path / 'none.sock'}",))
    assert found.describe() == (
        "operators run as host processes: no container engine answered at "
        f"unix://{tmp_path / 'none.sock'}"
    )
