"""Which engine answers, and how GPUs are asked of it: pure, from the engine's `/version`.

Docker Engine hands GPUs to a container through `HostConfig.DeviceRequests` (driver `nvidia`,
the NVIDIA Container Toolkit's hook); Podman's Docker-compatible API ignores those and takes
Container Device Interface names (`nvidia.com/gpu=0`) as devices instead. Either way a run gets
exactly the device indices the scheduler assigned, never `all`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

CDI_GPU_KIND = "nvidia.com/gpu"


class EngineKind(StrEnum):
    """The engine behind the Docker Engine API."""

    DOCKER = "docker"
    PODMAN = "podman"


def engine_kind(version: Mapping[str, Any]) -> EngineKind:
    """PODMAN when `/version` lists a Podman component, else DOCKER."""
    components = version.get("Components") or []
    for component in components if isinstance(components, list) else []:
        if isinstance(component, dict) and "podman" in str(component.get("Name", "")).lower():
            return EngineKind.PODMAN
    return EngineKind.DOCKER


def gpu_host_config(kind: EngineKind, devices: Sequence[int]) -> dict[str, Any]:
    """The `HostConfig` fields that give a container the GPUs `devices` (indices as NVML and
    the scheduler count them); empty for none."""
    if not devices:
        return {}
    if kind is EngineKind.PODMAN:
        return {
            "Devices": [
                {
                    "PathOnHost": f"{CDI_GPU_KIND}={index}",
                    "PathInContainer": f"{CDI_GPU_KIND}={index}",
                    "CgroupPermissions": "rwm",
                }
                for index in devices
            ]
        }
    return {
        "DeviceRequests": [
            {
                "Driver": "nvidia",
                "DeviceIDs": [str(index) for index in devices],
                "Capabilities": [["gpu"]],
            }
        ]
    }
