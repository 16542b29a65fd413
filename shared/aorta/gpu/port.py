"""The GPU metrics ports: what the monitor needs from whatever reads the GPUs, and from
whatever tells which job a GPU process belongs to."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from aorta.gpu.sample import GpuSample, ProcessOwner


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


class ProcessOwners(Protocol):
    """Maps process ids (as NVML reports them: this node's, outside any container) to owners."""

    async def owners(self, pids: Collection[int]) -> Mapping[int, ProcessOwner]:
        """The owner of each pid that belongs to a job; pids of no job are left out.

        Never raises for a pid that vanished or cannot be read: it is simply left out.
        """
        ...
