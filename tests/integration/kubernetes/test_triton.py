"""The Kubernetes Triton backend against the stand-in: a Deployment and a Service per server,
ready when its pod is, gone when stopped; models stored in the blob store's repository folder
and loaded by a real tritonserver (the nvidia-pytriton wheel's) reading that folder, as a pod
of the Deployment would read it from S3.

Only the stand-in: a real cluster would need a GPU node, Triton's image and an S3 endpoint."""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from aorta.errors import Invalid, Unavailable
from aorta.kubernetes import names
from aorta.triton.kubernetes.backend import KubernetesTritonBackend
from aorta.triton.kubernetes.objects import TritonSettings
from aorta.triton.local.backend import LocalTritonBackend
from aorta.triton.local.install import TritonInstall
from aorta.triton.local.process import TritonProcess
from tests.integration.kubernetes.k8s_cluster import NAMESPACE, Cluster
from tests.integration.kubernetes.k8s_triton import Node

pytestmark = pytest.mark.timeout(90)

REPOSITORY = "s3://minio.aorta.svc:9000/aorta/triton-repository"
ECHO_CONFIG = 'name: "echo"\nbackend: "python"\nmax_batch_size: 0\n'
ECHO_MODEL = "class TritonPythonModel:\n    def initialize(self, args):\n        pass\n"
BROKEN_MODEL = (
    "class TritonPythonModel:\n"
    "    def initialize(self, args):\n"
    "        raise ValueError('weights file missing: echo.pt')\n"
)


def model_zip(model_py: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("echo/config.pbtxt", ECHO_CONFIG)
        archive.writestr("echo/1/model.py", model_py)
    return buffer.getvalue()


def writer(data: bytes) -> Callable[[Path], Awaitable[None]]:
    async def write(path: Path) -> None:
        await asyncio.to_thread(path.write_bytes, data)

    return write


@pytest.fixture
async def node(stand_in: Cluster) -> AsyncIterator[Node]:
    made = Node(stand_in)
    yield made
    await made.close()


def backend_on(cluster: Cluster, **options: Any) -> KubernetesTritonBackend:
    settings = TritonSettings(repository=REPOSITORY, ready_timeout=options.pop("ready", 10))
    return KubernetesTritonBackend(
        cluster.api, cluster.blobs, cluster.settings, settings, **options
    )


async def test_a_server_is_an_empty_gpu_deployment_behind_a_service(
    stand_in: Cluster, node: Node
) -> None:
    backend = backend_on(stand_in)
    name = names.triton_name("s1")

    server = await backend.start_server("s1")

    assert (server.grpc_uri, server.http_uri) == (
        f"{name}.{NAMESPACE}.svc:8001",
        f"{name}.{NAMESPACE}.svc:8000",
    )
    deployment = node.server.get("deployments", NAMESPACE, name)
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["tritonserver"]
    assert f"--model-repository={REPOSITORY}" in container["args"]
    assert "--model-control-mode=explicit" in container["args"]
    assert not [arg for arg in container["args"] if arg.startswith("--load-model")]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    service = node.server.get("services", NAMESPACE, name)
    assert service is not None
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert server.alive()

    node.restart("s1")
    while server.alive():  # until the watch brings the restart: a restarted Triton is empty
        await backend.pods.changed_since(backend.pods.version)

    await server.stop()
    assert node.server.names("deployments", NAMESPACE) == []
    assert node.server.names("services", NAMESPACE) == []
    assert node.server.names("pods", NAMESPACE) == []
    await backend.close()


async def test_a_server_never_ready_is_removed(stand_in: Cluster) -> None:
    backend = backend_on(stand_in, ready=1)

    with pytest.raises(Unavailable, match="not ready within 1 s"):
        await backend.start_server("s2")

    assert stand_in.server is not None
    assert stand_in.server.names("deployments", NAMESPACE) == []
    assert stand_in.server.names("services", NAMESPACE) == []
    await backend.close()


async def test_leftover_servers_of_a_previous_process_are_removed(
    stand_in: Cluster, node: Node
) -> None:
    first = backend_on(stand_in)
    await first.start_server("old")
    await first.close()  # the process died without stopping its server

    second = backend_on(stand_in)
    assert await second.remove_leftovers() == 1

    assert node.server.names("deployments", NAMESPACE) == []
    await second.close()


async def test_models_stored_in_the_repository_folder_load_on_a_real_triton(
    stand_in: Cluster, tmp_path: Path
) -> None:
    install = await asyncio.to_thread(TritonInstall.locate)
    blob_root = Path(stand_in.core.blob_store.removeprefix("file:///"))
    repository = blob_root / "triton-repository"
    repository.mkdir(parents=True)
    processes: dict[str, TritonProcess] = {}
    async with AsyncExitStack() as stack:
        local = await LocalTritonBackend.open(tmp_path / "local", install, environ=os.environ)
        stack.push_async_callback(local.close)

        async def start(server_id: str) -> None:
            process = TritonProcess(
                install,
                repository=repository,
                backends=local.folder / "backends",
                log_file=tmp_path / f"{server_id}.log",
                environ=os.environ,
            )
            await process.start()
            stack.push_async_callback(process.stop)
            processes[server_id] = process

        node = Node(stand_in, on_start=start)
        stack.push_async_callback(node.close)
        backend = backend_on(
            stand_in,
            load_timeout=60.0,
            addresses=lambda sid: (processes[sid].grpc_uri, processes[sid].http_uri),
        )
        stack.push_async_callback(backend.close)
        await backend.install_model("echo", "r1", writer(model_zip(ECHO_MODEL)))
        server = await backend.start_server("s3")

        await server.load("echo")
        assert await server.ready_models() == {"echo"}
        assert (repository / "echo" / "1" / "model.py").read_text() == ECHO_MODEL

        await backend.install_model("echo", "r2", writer(model_zip(BROKEN_MODEL)))
        with pytest.raises(Invalid, match="weights file missing"):
            await server.load("echo")

        await backend.remove_model("echo")
        assert not (repository / "echo").exists()
        await server.stop()
