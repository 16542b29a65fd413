"""Stand-ins of the GPU ports for tests of code that reads GPUs (the monitor, the scheduler).

They answer from plain data in memory, so a test states exactly which GPUs and processes it
sees; `NvmlProbe` itself is tested against a stand-in of the `pynvml` module instead.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from aorta.gpu.sample import GpuSample, ProcessOwner


@dataclass
class StandInProbe:
    """A `GpuProbe` answering whatever `gpus` holds at each call; counts calls."""

    gpus: list[GpuSample] = field(default_factory=list)
    samples: int = 0
    closed: bool = False

    async def sample(self) -> list[GpuSample]:
        self.samples += 1
        return [] if self.closed else list(self.gpus)

    async def close(self) -> None:
        self.closed = True


@dataclass
class StaticOwners:
    """`ProcessOwners` from a fixed table; `asked` records each lookup's pids."""

    table: Mapping[int, ProcessOwner] = field(default_factory=dict)
    asked: list[set[int]] = field(default_factory=list)

    async def owners(self, pids: Collection[int]) -> Mapping[int, ProcessOwner]:
        self.asked.append(set(pids))
        return {pid: self.table[pid] for pid in pids if pid in self.table}
