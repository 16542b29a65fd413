"""Which engine answers, and how GPUs are asked of it: pure, from the engine's `/version`.

Docker Engine hands GPUs to a container through `HostConfig.DeviceRequests` (driver `nvidia`,
the NVIDIA Container Toolkit's hook). Podman 4's Docker-compatible API ignores device requests
and takes a Container Device Interface name (`nvidia.com/gpu=0`) in `HostConfig.Devices` for a
path (`stat nvidia.com/gpu=0: no such file or directory`); its own libpod API resolves CDI names,
so on Podman a run with GPUs is created through that API
(`aorta.executors.container.libpod_spec`). Either way a run gets exactly the device indices the
scheduler assigned, never `all`.
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


def device_requests(devices: Sequence[int]) -> list[dict[str, Any]]:
    """Docker's `HostConfig.DeviceRequests` for the GPUs `devices` (indices as NVML and the
    scheduler count them); empty for none."""
    if not devices:
        return []
    return [
        {
            "Driver": "nvidia",
            "DeviceIDs": [str(index) for index in devices],
            "Capabilities": [["gpu"]],
        }
    ]


def cdi_devices(devices: Sequence[int]) -> list[dict[str, str]]:
    """Podman's (libpod API) `devices` for the GPUs `devices`: their CDI names."""
    return [{"path": f"{CDI_GPU_KIND}={index}"} for index in devices]
