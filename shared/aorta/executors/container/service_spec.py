"""The container of one pipeline service, as the engine's create body: pure, no I/O.

A service is one long-lived container of its own image, named and labelled after the platform
instance and the service id (`aorta.executors.services.service_key`), so a runner of a later
process finds it again and adopts it instead of starting a second one.

- Its `command` replaces the image's command, as an operator's does, with
  `$(NVIDIA_CLARA_SERVICE_DATA_PATH)` replaced by `DATA_PATH`.
- Its data folder is a named volume of the engine (`data_volume`), mounted read-write at
  `DATA_PATH` and at each path its volume connections declare (where operators see it, so a
  command may name either); removing the container leaves the volume, so the data outlives the
  service's restarts. Operators that declare a volume connection get the same volume, read-only.
- Each `connections.http` port (`aorta.executors.service_ports`: the declared one, the one the
  image exposes, or one from 8000 up, which the service reads from its environment) is
  published on the host's 127.0.0.1 only, at a port the engine picks: the connection variable
  is `127.0.0.1:<that port>`, which operator containers reach on the service network (the
  host's, by default) as they reach Triton.
- Isolation as for Triton's containers: not privileged, every capability dropped,
  `no-new-privileges`, the engine's init; `requests.cpu` and `requests.memory` as limits when
  given; its GPUs a device request for exactly the devices the scheduler assigned (on Podman
  through its own API, by CDI name, see `aorta.executors.container.devices`), and
  `NVIDIA_VISIBLE_DEVICES` naming the same (`void` without GPUs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from aorta.errors import Invalid
from aorta.executors.container.devices import cdi_devices, device_requests
from aorta.executors.container.libpod_spec import CPU_PERIOD
from aorta.executors.container.spec import COMPONENT_LABEL, INSTANCE_LABEL, image_reference
from aorta.executors.service_ports import own_environment
from aorta.executors.services import SERVICE_DATA_MACRO, ServiceLaunch

Json = dict[str, Any]

SERVICE_COMPONENT = "service"
SERVICE_LABEL = "aorta.service"
SERVICE_NAME_LABEL = "aorta.service.name"
LOG_KEY_LABEL = "aorta.service.log"
DATA_PATH = "/clara/common"
"""Where a service sees its data folder (Clara's common path), and what the macro becomes."""
LOOPBACK = "127.0.0.1"
VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"

_NANO = 1_000_000_000
_MIB = 1 << 20
_BIND_UNSAFE = frozenset(":,")


def container_name(instance: str, service_id: str) -> str:
    """`aorta-service-<instance>-<service id>`."""
    return f"aorta-service-{instance}-{service_id}"


def data_volume(instance: str, service_id: str) -> str:
    """The named volume holding the service's data folder."""
    return f"aorta-service-{instance}-{service_id}-data"


def instance_labels(instance: str) -> dict[str, str]:
    """The labels every service container of `instance` carries (what `running` lists)."""
    return {INSTANCE_LABEL: instance, COMPONENT_LABEL: SERVICE_COMPONENT}


def service_labels(launch: ServiceLaunch, instance: str) -> dict[str, str]:
    """The labels of the service's container."""
    return {
        **instance_labels(instance),
        SERVICE_LABEL: launch.service_id,
        SERVICE_NAME_LABEL: launch.name,
        LOG_KEY_LABEL: launch.log_key,
    }


def service_command(launch: ServiceLaunch) -> list[str]:
    """The service's command with the data-folder macro expanded (empty: the image's own)."""
    return [part.replace(SERVICE_DATA_MACRO, DATA_PATH) for part in launch.command]


def data_paths(launch: ServiceLaunch) -> list[str]:
    """Where the service's container mounts its data volume: `DATA_PATH` and each declared
    volume path that is a plain absolute path apart from the others. `Invalid` for a path a
    mount cannot name."""
    paths: list[PurePosixPath] = [PurePosixPath(DATA_PATH)]
    for volume in launch.volumes:
        path = _mount_path(volume.path)
        if not any(path.is_relative_to(p) or p.is_relative_to(path) for p in paths):
            paths.append(path)
    return [str(path) for path in paths]


def create_body(
    launch: ServiceLaunch, instance: str, ports: Mapping[str, int], stop_grace: float
) -> Json:
    """Docker's `POST /containers/create` body of the service (Podman's Docker-compatible API
    would drop its GPUs: use `podman_spec` there)."""
    volume = data_volume(instance, launch.service_id)
    published = {
        f"{port}/tcp": [{"HostIp": LOOPBACK, "HostPort": ""}]
        for port in sorted(set(ports.values()))
    }
    host_config: Json = {
        "Binds": [f"{volume}:{path}:rw" for path in data_paths(launch)],
        "PortBindings": published,
        "Init": True,
        "Privileged": False,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        "RestartPolicy": {"Name": "no"},
    }
    if launch.resources.cpu:
        host_config["NanoCpus"] = launch.resources.cpu * _NANO
    if launch.resources.memory_mb:
        host_config["Memory"] = host_config["MemorySwap"] = launch.resources.memory_mb * _MIB
    requests = device_requests(launch.resources.gpu_devices)
    if requests:
        host_config["DeviceRequests"] = requests
    body: Json = {
        "Image": image_reference(launch.image, launch.tag),
        "Env": [f"{name}={value}" for name, value in sorted(environment(launch, ports).items())],
        "Labels": service_labels(launch, instance),
        "ExposedPorts": {port: {} for port in published},
        "StopTimeout": math.ceil(stop_grace),
        "HostConfig": host_config,
    }
    if launch.command:
        body["Cmd"] = service_command(launch)
    return body


def podman_spec(
    launch: ServiceLaunch, instance: str, ports: Mapping[str, int], stop_grace: float
) -> Json:
    """Podman's libpod `POST /libpod/containers/create` body of the service (the engine adds
    the name): the container `create_body` describes, its GPUs as CDI devices."""
    volume = data_volume(instance, launch.service_id)
    body: Json = {
        "image": image_reference(launch.image, launch.tag),
        "env": environment(launch, ports),
        "labels": service_labels(launch, instance),
        "volumes": [
            {"Name": volume, "Dest": path, "Options": ["rw"]} for path in data_paths(launch)
        ],
        "portmappings": [
            {"host_ip": LOOPBACK, "container_port": port, "host_port": 0, "protocol": "tcp"}
            for port in sorted(set(ports.values()))
        ],
        "init": True,
        "privileged": False,
        "cap_drop": ["ALL"],
        "no_new_privileges": True,
        "restart_policy": "no",
        "stop_timeout": math.ceil(stop_grace),
        "devices": cdi_devices(launch.resources.gpu_devices),
    }
    limits: Json = {}
    if launch.resources.memory_mb:
        memory = launch.resources.memory_mb * _MIB
        limits["memory"] = {"limit": memory, "swap": memory}
    if launch.resources.cpu:
        limits["cpu"] = {"quota": launch.resources.cpu * CPU_PERIOD, "period": CPU_PERIOD}
    if limits:
        body["resource_limits"] = limits
    if launch.command:
        body["command"] = service_command(launch)
    return body


def environment(launch: ServiceLaunch, ports: Mapping[str, int]) -> dict[str, str]:
    """Where the service listens and its variables (`aorta.executors.service_ports`), and
    `NVIDIA_VISIBLE_DEVICES` naming exactly its GPUs."""
    devices = ",".join(str(index) for index in launch.resources.gpu_devices) or "void"
    return {**own_environment(launch, dict(ports)), VISIBLE_DEVICES: devices}


def exposed_ports(image: Json) -> tuple[int, ...]:
    """The TCP ports an image's inspect document says it exposes, in order."""
    exposed = (image.get("Config") or {}).get("ExposedPorts") or {}
    ports = []
    for key in exposed:
        number, _, protocol = str(key).partition("/")
        if number.isdigit() and protocol in ("", "tcp"):
            ports.append(int(number))
    return tuple(sorted(ports))


def _mount_path(path: str) -> PurePosixPath:
    folder = PurePosixPath(path)
    if not folder.is_absolute() or ".." in folder.parts or _BIND_UNSAFE & set(path):
        raise Invalid(f"volume path {path!r} must be an absolute path without '..', ':' or ','")
    return folder
