"""The container Triton backend against a real Podman API service (the session's private engine).

No tritonserver image exists offline, so the servers run a busybox stand-in whose entrypoint
serves Triton's readiness endpoint with `httpd` and publishes what it was started with (its
arguments, its environment, whether `/models` is writable) under `/aorta/`: enough to prove the
adapter's start, readiness, loopback ports, read-only mount, stop, sweep of leftovers and device
requests. Model loading itself is the same gRPC control the Kubernetes backend's tests cover.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from aorta.errors import Unavailable
from aorta.executors.container.engine import ContainerEngine
from aorta.executors.container.settings import PullPolicy
from aorta.testing.images import build_busybox_image
from aorta.testing.nats import async_nats_server
from aorta.testing.podman import PodmanEngine
from aorta.triton.container.backend import ContainerTritonBackend
from aorta.triton.container.spec import container_name
from aorta_services.models.app import MissingTriton
from tests.integration.models.models_platform import start_platform

STAND_IN_IMAGE = "localhost/aorta-test/triton-stand-in:latest"

STAND_IN_SCRIPT = """\
# A stand-in for a Triton image: "$1" is tritonserver, the rest its flags.
if [ -e /models/refuse ]; then
  echo "error: $(cat /models/refuse)"
  exit 3
fi
www=/tmp/www
mkdir -p $www/v2/health $www/aorta
echo ready > $www/v2/health/ready
shift
echo "$@" > $www/aorta/flags
env > $www/aorta/env
if touch /models/written 2>/dev/null; then echo writable; else echo read-only; fi > $www/aorta/mount
exec httpd -f -p 8000 -h $www
"""

INSTANCE = "aorta-triton-test"

OpenBackend = Callable[[], Awaitable[ContainerTritonBackend]]


@pytest.fixture(scope="module")
def stand_in_image(podman_engine: PodmanEngine) -> str:
    return build_busybox_image(podman_engine.cli, STAND_IN_IMAGE, STAND_IN_SCRIPT)


@pytest.fixture
async def open_backend(
    podman_engine: PodmanEngine, stand_in_image: str, tmp_path: Path
) -> AsyncIterator[OpenBackend]:
    """Opens backends over one engine connection, each closed (and its servers gone) after."""
    async with AsyncExitStack() as stack:
        engine = await ContainerEngine.connect(podman_engine.url)
        stack.push_async_callback(engine.close)

        async def open() -> ContainerTritonBackend:
            backend = await ContainerTritonBackend.open(
                tmp_path / "triton",
                engine,
                image=stand_in_image,
                instance=INSTANCE,
                pull_policy=PullPolicy.NEVER,
                start_timeout=20.0,
                stop_grace=2.0,
            )
            stack.push_async_callback(backend.close)
            return backend

        yield open
        await engine.list({"aorta.instance": INSTANCE})


def fetch(uri: str, path: str) -> str:
    with urllib.request.urlopen(f"http://{uri}{path}", timeout=5) as answer:
        return str(answer.read().decode())


async def containers(podman: PodmanEngine) -> list[dict[str, object]]:
    listed = await podman.cli.arun(
        "ps", "--all", "--format", "json", "--filter", f"label=aorta.instance={INSTANCE}"
    )
    return list(json.loads(listed or "[]"))


async def test_a_server_starts_ready_on_loopback_with_the_repository_read_only(
    open_backend: OpenBackend, podman_engine: PodmanEngine
) -> None:
    backend = await open_backend()
    server = await backend.start_server("s1")
    assert server.alive()
    assert server.http_uri.startswith("127.0.0.1:") and server.grpc_uri.startswith("127.0.0.1:")
    flags = (await asyncio.to_thread(fetch, server.http_uri, "/aorta/flags")).split()
    assert "--model-repository=/models" in flags
    assert "--model-control-mode=explicit" in flags
    assert "--cuda-memory-pool-byte-size=0:0" in flags
    assert "--allow-gpu-metrics=false" in flags
    environment = await asyncio.to_thread(fetch, server.http_uri, "/aorta/env")
    assert "NVIDIA_VISIBLE_DEVICES=void" in environment.splitlines()
    assert await asyncio.to_thread(fetch, server.http_uri, "/aorta/mount") == "read-only\n"
    inspected = await backend.engine.inspect(container_name(INSTANCE, "s1"))
    assert inspected is not None
    ports = inspected["NetworkSettings"]["Ports"]
    assert {binding["HostIp"] for bindings in ports.values() for binding in bindings or []} == {
        "127.0.0.1"
    }
    assert inspected["Config"]["Labels"]["aorta.triton.server"] == "s1"
    assert inspected["HostConfig"]["CapDrop"] and not inspected["HostConfig"]["Privileged"]
    await server.stop()
    assert await containers(podman_engine) == []
    await asyncio.wait_for(server.exited.wait(), 10)
    assert not server.alive()


async def test_a_server_that_dies_is_no_longer_alive(
    open_backend: OpenBackend, podman_engine: PodmanEngine
) -> None:
    backend = await open_backend()
    server = await backend.start_server("s2")
    await podman_engine.cli.arun("kill", server.name)
    await asyncio.wait_for(server.exited.wait(), 10)
    assert not server.alive()
    await server.stop()
    assert await containers(podman_engine) == []


async def test_a_server_that_exits_at_start_fails_with_its_log_and_leaves_nothing(
    open_backend: OpenBackend, podman_engine: PodmanEngine
) -> None:
    backend = await open_backend()
    (backend.models.repository / "refuse").write_text("no CUDA-capable device is detected\n")
    with pytest.raises(Unavailable) as failed:
        await backend.start_server("s3")
    text = "\n".join(failed.value.messages)
    assert "exited at start" in text
    assert "error: no CUDA-capable device is detected" in text
    assert await containers(podman_engine) == []


async def test_containers_an_earlier_life_left_are_found_by_label_and_removed(
    open_backend: OpenBackend, podman_engine: PodmanEngine
) -> None:
    earlier = await open_backend()
    await earlier.start_server("left")
    assert [c["Names"] for c in await containers(podman_engine)] == [
        [container_name(INSTANCE, "left")]
    ]
    later = await open_backend()
    assert await containers(podman_engine) == []
    fresh = await later.start_server("fresh")
    assert await later.sweep() == 1
    await asyncio.wait_for(fresh.exited.wait(), 10)
    assert await containers(podman_engine) == []


async def test_a_gpu_server_asks_podman_for_the_cdi_device_assigned(
    open_backend: OpenBackend, podman_engine: PodmanEngine
) -> None:
    backend = await open_backend()
    # Podman resolves the CDI name at start; no machine has a GPU 97, with or without a CDI
    # specification, so the start fails naming the device (a device silently dropped would
    # have started), and leaves nothing behind; a GPU host's own devices would resolve.
    with pytest.raises(Unavailable) as refused:
        await backend.start_server("g1", gpus=(97,))
    assert "unresolvable CDI devices nvidia.com/gpu=97" in "\n".join(refused.value.messages)
    assert await containers(podman_engine) == []


async def test_the_models_service_runs_its_servers_as_the_image_named(
    podman_engine: PodmanEngine, stand_in_image: str, tmp_path: Path
) -> None:
    environ = {
        "AORTA_TRITON_IMAGE": stand_in_image,
        "AORTA_CONTAINER_HOST": podman_engine.url,
        "AORTA_CONTAINER_INSTANCE": INSTANCE,
        "AORTA_CONTAINER_PULL_POLICY": "Never",
    }
    async with async_nats_server(tmp_path / "nats") as nats, AsyncExitStack() as stack:
        platform = await start_platform(stack, nats.url, tmp_path / "data", environ)
        backend = platform.models.backend
        assert isinstance(backend, ContainerTritonBackend)
        assert backend.image == stand_in_image
        server = await backend.start_server("app")
        assert server.alive()
        assert len(await containers(podman_engine)) == 1
        await server.stop()
    assert await containers(podman_engine) == []


async def test_without_an_engine_the_image_option_says_so_on_every_acquire(
    tmp_path: Path,
) -> None:
    environ = {
        "AORTA_TRITON_IMAGE": STAND_IN_IMAGE,
        "AORTA_CONTAINER_HOST": f"unix://{tmp_path / 'no-engine.sock'}",
    }
    async with async_nats_server(tmp_path / "nats") as nats, AsyncExitStack() as stack:
        platform = await start_platform(stack, nats.url, tmp_path / "data", environ)
        assert isinstance(platform.models.backend, MissingTriton)
        with pytest.raises(Unavailable) as missing:
            await platform.models.backend.start_server("none")
        text = "\n".join(missing.value.messages)
        assert f"AORTA_TRITON_IMAGE={STAND_IN_IMAGE} needs a container engine" in text
        assert "no-engine.sock" in text
