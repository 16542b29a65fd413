"""The container of one Triton server, as the Docker Engine API's create body: pure, no I/O.

The server runs the image's own entrypoint with `tritonserver` and the flags every backend uses
(`aorta.triton.server_flags`), listening on Triton's usual ports inside the container; only HTTP
and gRPC are published, on 127.0.0.1 alone, at ports the engine picks. The backend's model
repository is mounted read-only at `/models` and nothing else is: no data dir, no state, no
credentials. The container is not privileged, drops every capability, may not gain privileges,
and runs under the engine's init so a stop reaches Triton. Its GPUs are a device request for
exactly the devices the pool assigned (`aorta.executors.container.devices`: Docker's
`DeviceRequests`, CDI names on Podman) and `NVIDIA_VISIBLE_DEVICES` names the same ones, so an
NVIDIA runtime that honours the variable cannot widen them (`void` without GPUs: Triton images
set `all`). Labels name the instance, the component and the server, which is how a restarted
models service finds the containers an earlier life left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aorta.executors.container.devices import EngineKind, gpu_host_config
from aorta.triton.server_flags import Listen, MemoryPools, server_flags

REPOSITORY_MOUNT = "/models"
HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002
SHM_BYTES = 1024**3
"""`/dev/shm` of a server: the Python backend passes tensors through it (the engines' 64 MiB
default is too small for real models; NVIDIA runs Triton with 1 GiB)."""

INSTANCE_LABEL = "aorta.instance"
COMPONENT_LABEL = "aorta.component"
SERVER_LABEL = "aorta.triton.server"
COMPONENT = "triton"


@dataclass(frozen=True)
class ServerContainer:
    """What makes one server's container: the image, the host folder of the model repository,
    the instance and server it belongs to, its devices (node indices) and memory pools."""

    image: str
    repository: str
    instance: str
    server_id: str
    gpus: tuple[int, ...] = ()
    pools: MemoryPools = field(default_factory=MemoryPools)


def container_name(instance: str, server_id: str) -> str:
    """`aorta-triton-<instance>-<server id>`."""
    return f"aorta-triton-{instance}-{server_id}"


def instance_labels(instance: str) -> dict[str, str]:
    """The labels every Triton container of `instance` carries (what a sweep looks for)."""
    return {INSTANCE_LABEL: instance, COMPONENT_LABEL: COMPONENT}


def command(gpus: Sequence[int], pools: MemoryPools) -> list[str]:
    """`tritonserver` and its flags inside the container."""
    # Every address of the container's own network namespace: the engine publishes the ports
    # on the host's 127.0.0.1 only.
    listen = Listen("0.0.0.0", HTTP_PORT, GRPC_PORT, METRICS_PORT)
    flags = server_flags(repository=REPOSITORY_MOUNT, listen=listen, gpus=gpus, pools=pools)
    return ["tritonserver", *flags]


def create_body(server: ServerContainer, engine: EngineKind) -> dict[str, Any]:
    """The `POST /containers/create` body of `server` on an engine of kind `engine`."""
    published = {
        f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}] for port in (HTTP_PORT, GRPC_PORT)
    }
    visible = ",".join(str(index) for index in server.gpus) or "void"
    labels = instance_labels(server.instance) | {SERVER_LABEL: server.server_id}
    return {
        "Image": server.image,
        "Cmd": command(server.gpus, server.pools),
        "Env": [f"NVIDIA_VISIBLE_DEVICES={visible}"],
        "Labels": labels,
        "ExposedPorts": {port: {} for port in published},
        "HostConfig": {
            "Binds": [f"{server.repository}:{REPOSITORY_MOUNT}:ro"],
            "PortBindings": published,
            "Init": True,
            "Privileged": False,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "ShmSize": SHM_BYTES,
            **gpu_host_config(engine, server.gpus),
        },
    }


def published_port(inspected: dict[str, Any], port: int) -> int | None:
    """The host port the engine published container port `port` on, from `inspect`."""
    bindings = ((inspected.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{port}/tcp")
    for binding in bindings or []:
        host_port = str(binding.get("HostPort") or "")
        if host_port.isdigit() and int(host_port) > 0:
            return int(host_port)
    return None
