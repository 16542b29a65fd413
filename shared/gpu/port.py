"""The GPU metrics port: what the monitor needs from whatever reads the GPUs."""

from __future__ import annotations

from typing import Protocol

from .sample import GpuSample


class GpuProbe(Protocol):
    """Reads this node's GPUs. `aorta.gpu.nvml.NvmlProbe` is the real one."""

    async def sample(self) -> list[GpuSample]:
        """One sample per GPU, in device index order; an empty list on a node without GPUs
        (or without a driver). Never raises for a device that misbehaves: what it cannot read
        is left unknown (None) in its sample. Does not block the event loop."""
        ...

    async def close(self) -> None:
        """Releases the library; later samples are empty. Idempotent."""
        ...
