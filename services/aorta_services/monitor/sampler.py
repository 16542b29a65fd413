"""The sampling loop: this node's GPUs, every interval, published for every monitor to see, and
this node's GPU gauges for Prometheus (`aorta_gpu_utilization_ratio{gpu}`,
`aorta_gpu_memory_used_bytes{gpu}`, `gpu` being NVML's index; a value the device does not report
is left out rather than shown as 0)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime

from aorta import subjects
from aorta.bus import Bus
from aorta.gpu import GpuProbe, GpuSample, NodeSample, ProcessOwners
from aorta.logger import get_logger
from aorta.observability import metrics
from aorta.timestamps import utcnow
from aorta_services.monitor.domain.fleet import Fleet
from aorta_services.monitor.settings import MonitorSettings

log = get_logger(__name__)


class Sampler:
    """Reads the GPUs through `probe`, names the job operator behind each GPU process through
    `owners`, records the node's sample in `fleet` and publishes it on `aorta.metrics.gpu`."""

    def __init__(
        self,
        *,
        bus: Bus,
        probe: GpuProbe,
        owners: ProcessOwners,
        fleet: Fleet,
        settings: MonitorSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._bus = bus
        self._probe = probe
        self._owners = owners
        self._fleet = fleet
        self._settings = settings
        self._clock = clock
        self._failing = False

    async def sample(self) -> NodeSample:
        """Takes, records and publishes one sample. Raises what the probe or the bus raise."""
        gpus = await self._probe.sample()
        node = NodeSample(
            node_id=self._settings.node_id,
            interval=self._settings.interval,
            taken_at=self._clock(),
            gpus=tuple(await self._with_owners(gpus)),
        )
        self._fleet.record(node)
        _export(node)
        await self._bus.publish(subjects.GPU_SAMPLES, node.to_json())
        return node

    async def tick(self) -> None:
        """`sample`, with failures logged (once until the next success) instead of raised."""
        try:
            await self.sample()
        except Exception as exc:
            if not self._failing:
                log.warning("monitor.sample_failed", error=repr(exc))
            self._failing = True
            return
        if self._failing:
            log.info("monitor.sample_recovered")
        self._failing = False

    async def run(self) -> None:
        """Ticks every interval until cancelled; a tick that overruns skips the ticks it missed
        rather than bunching them up."""
        loop = asyncio.get_running_loop()
        interval = self._settings.interval
        due = loop.time()
        while True:
            due += interval
            now = loop.time()
            if due < now:
                due = now + interval - (now - due) % interval
            await asyncio.sleep(due - now)
            await self.tick()

    async def _with_owners(self, gpus: Sequence[GpuSample]) -> list[GpuSample]:
        pids = {process.pid for gpu in gpus for process in gpu.processes}
        if not pids:
            return list(gpus)
        owners = await self._owners.owners(pids)
        return [
            dataclasses.replace(
                gpu,
                processes=tuple(
                    dataclasses.replace(process, owner=owners.get(process.pid))
                    for process in gpu.processes
                ),
            )
            for gpu in gpus
        ]


def _export(node: NodeSample) -> None:
    """This node's latest sample as the GPU gauges; GPUs gone since are dropped."""
    if not metrics.recording():
        return
    metrics.GPU_UTILIZATION_RATIO.clear()
    metrics.GPU_MEMORY_USED_BYTES.clear()
    for gpu in node.gpus:
        if gpu.compute_utilization is not None:
            metrics.GPU_UTILIZATION_RATIO.labels(str(gpu.index)).set(gpu.compute_utilization)
        if gpu.memory_used is not None:
            metrics.GPU_MEMORY_USED_BYTES.labels(str(gpu.index)).set(gpu.memory_used)
