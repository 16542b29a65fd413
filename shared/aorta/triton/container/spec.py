"""The container of one Triton server, as the engine's create body: pure, no I/O.

The server runs the image's own entrypoint with `tritonserver` and the flags every backend uses
(`aorta.triton.server_flags`), listening on Triton's usual ports inside the container; only HTTP
and gRPC are published, on 127.0.0.1 alone, at ports the engine picks. The backend's model
repository is mounted read-only at `/models` and nothing else is: no data dir, no state, no
credentials. The container is not privileged, drops every capability, may not gain privileges,
and runs under the engine's init so a stop reaches Triton. Its GPUs are a device request for
exactly the devices the pool assigned and `NVIDIA_VISIBLE_DEVICES` names the same ones, so an
NVIDIA runtime that honours the variable cannot widen them (`void` without GPUs: Triton images
set `all`).

Docker Engine gets the Docker API's body (`create_body`), its GPUs as `DeviceRequests` (driver
`nvidia`, the NVIDIA Container Toolkit's). Podman gets the same container through its own API
(`podman_spec`, a libpod `SpecGenerator`), its GPUs as CDI names (`nvidia.com/gpu=1`): its
Docker-compatible API silently drops `DeviceRequests` and takes CDI names in
`HostConfig.Devices` for paths (checked with Podman 4.3), so only its own API gives a container
a GPU. Labels name the instance, the component and the server, which is how a restarted
models service finds the containers an earlier life left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aorta.executors.container.devices import CDI_GPU_KIND
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


def create_body(server: ServerContainer) -> dict[str, Any]:
    """Docker's `POST /containers/create` body of `server` (Podman's Docker-compatible API would
    drop its GPUs: use `podman_spec` there)."""
    published = {
        f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}] for port in (HTTP_PORT, GRPC_PORT)
    }
    return {
        "Image": server.image,
        "Cmd": command(server.gpus, server.pools),
        "Env": [f"NVIDIA_VISIBLE_DEVICES={_visible(server.gpus)}"],
        "Labels": _labels(server),
        "ExposedPorts": {port: {} for port in published},
        "HostConfig": {
            "Binds": [f"{server.repository}:{REPOSITORY_MOUNT}:ro"],
            "PortBindings": published,
            "Init": True,
            "Privileged": False,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "ShmSize": SHM_BYTES,
            "DeviceRequests": _device_requests(server.gpus),
        },
    }


def podman_spec(server: ServerContainer) -> dict[str, Any]:
    """Podman's libpod `POST /libpod/containers/create` body of `server` (the engine adds the
    name): the same container as `create_body`, its GPUs as CDI devices."""
    return {
        "image": server.image,
        "command": command(server.gpus, server.pools),
        "env": {"NVIDIA_VISIBLE_DEVICES": _visible(server.gpus)},
        "labels": _labels(server),
        "mounts": [
            {
                "type": "bind",
                "source": server.repository,
                "destination": REPOSITORY_MOUNT,
                "options": ["ro", "rbind"],
            }
        ],
        # host_port 0: the engine picks a free port.
        "portmappings": [
            {"host_ip": "127.0.0.1", "container_port": port, "host_port": 0, "protocol": "tcp"}
            for port in (HTTP_PORT, GRPC_PORT)
        ],
        "init": True,
        "privileged": False,
        "cap_drop": ["ALL"],
        "no_new_privileges": True,
        "shm_size": SHM_BYTES,
        "devices": [{"path": f"{CDI_GPU_KIND}={index}"} for index in server.gpus],
    }


def _device_requests(gpus: Sequence[int]) -> list[dict[str, Any]]:
    if not gpus:
        return []
    ids = [str(index) for index in gpus]
    return [{"Driver": "nvidia", "DeviceIDs": ids, "Capabilities": [["gpu"]]}]


def _visible(gpus: Sequence[int]) -> str:
    return ",".join(str(index) for index in gpus) or "void"


def _labels(server: ServerContainer) -> dict[str, str]:
    return instance_labels(server.instance) | {SERVER_LABEL: server.server_id}


def published_port(inspected: dict[str, Any], port: int) -> int | None:
    """The host port the engine published container port `port` on, from `inspect`."""
    bindings = ((inspected.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{port}/tcp")
    for binding in bindings or []:
        host_port = str(binding.get("HostPort") or "")
        if host_port.isdigit() and int(host_port) > 0:
            return int(host_port)
    return None
