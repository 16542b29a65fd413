"""The container of one operator run as Podman's own (libpod) API creates it: pure, no I/O.

Podman 4's Docker-compatible API cannot hand a container GPUs (see
`aorta.executors.container.devices`), its libpod API can, by CDI name. So on Podman a run with
GPUs is created through `POST /v4.0.0/libpod/containers/create` with the body built here: the
same container as `aorta.executors.container.spec.create_body` describes (image, command,
environment, labels, read-only inputs and read-write outputs, the data folders of its pipeline
services read-only, tmpfs `/tmp`, limits, isolation),
said in libpod's words. Everything else about the container (start, wait, logs, stop, removal)
goes through the Docker-compatible API as for any other.

`create_request` chooses between the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from aorta.executors.container.devices import EngineKind, cdi_devices
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.container.spec import (
    NO_NETWORK,
    TMP_OPTIONS,
    Json,
    RunPlan,
    bind_mounts,
    create_body,
    image_reference,
    memory_bytes,
    network,
    run_labels,
    service_binds,
)
from aorta.executors.kubernetes.pods import operator_environment
from aorta.executors.port import OperatorRun

CPU_PERIOD = 100_000
"""Microseconds of the CFS period CPU quotas are counted in (the kernel's default)."""
_NAMESPACE_MODES = frozenset({NO_NETWORK, "host"})


class CreateApi(StrEnum):
    """Which API creates the container."""

    DOCKER = "docker"
    LIBPOD = "libpod"


@dataclass(frozen=True)
class CreateRequest:
    """A container create call: the API and its body."""

    api: CreateApi
    body: Json


def create_request(
    run: OperatorRun,
    *,
    volumes: Mapping[str, Path],
    plan: RunPlan,
    engine: EngineKind,
    settings: ContainerSettings,
) -> CreateRequest:
    """How to create `run`'s container on `engine`: Podman's libpod API for a run with GPUs
    on Podman, the Docker Engine API otherwise. `Invalid` as `create_body` raises it."""
    if engine is EngineKind.PODMAN and run.resources.gpu_devices:
        body = libpod_body(run, volumes=volumes, plan=plan, settings=settings)
        return CreateRequest(CreateApi.LIBPOD, body)
    body = create_body(run, volumes=volumes, plan=plan, settings=settings)
    return CreateRequest(CreateApi.DOCKER, body)


def libpod_body(
    run: OperatorRun,
    *,
    volumes: Mapping[str, Path],
    plan: RunPlan,
    settings: ContainerSettings,
) -> Json:
    """libpod's `SpecGenerator` for `run` (the container `create_body` describes, with its
    GPUs as CDI devices)."""
    mounts: list[Json] = [
        {
            "destination": target,
            "type": "bind",
            "source": source,
            "options": ["rbind", "ro" if read_only else "rw"],
        }
        for source, target, read_only in bind_mounts(run, volumes)
    ]
    mounts.extend(
        {"destination": target, "type": "bind", "source": source, "options": ["rbind", "ro"]}
        for source, target in service_binds(run)
        if source.startswith("/")
    )
    named = [
        {"Name": source, "Dest": target, "Options": ["ro"]}
        for source, target in service_binds(run)
        if not source.startswith("/")
    ]
    mounts.append(
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": TMP_OPTIONS.split(","),
        }
    )
    memory = memory_bytes(run)
    body: Json = {
        "image": image_reference(run.image, run.tag),
        "env": operator_environment(run),
        "labels": run_labels(run, settings.instance, plan),
        "mounts": mounts,
        "volumes": named,
        "privileged": False,
        "cap_drop": ["ALL"],
        "no_new_privileges": True,
        "init": True,
        "restart_policy": "no",
        "stop_timeout": math.ceil(settings.stop_grace),
        "resource_limits": {
            "memory": {"limit": memory, "swap": memory},
            "cpu": {"quota": run.resources.cpu * CPU_PERIOD, "period": CPU_PERIOD},
        },
        "devices": cdi_devices(run.resources.gpu_devices),
        **_network(network(run, settings)),
    }
    if run.command:
        body["command"] = list(run.command)
    return body


def _network(name: str) -> Json:
    if name in _NAMESPACE_MODES:
        return {"netns": {"nsmode": name}}
    return {"netns": {"nsmode": "bridge"}, "Networks": {name: {}}}
