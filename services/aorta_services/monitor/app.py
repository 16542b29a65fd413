"""Composition root of the monitor service: one per node.

It samples this node's GPUs every interval and publishes them on `aorta.metrics.gpu`, keeps the
latest sample every monitor published, and answers Clara.Version, Clara.Utilization,
Clara.Stop and Monitor.GpuMetrics in the `monitor` queue group, for every node.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from aorta import subjects
from aorta.bus import Subscription
from aorta.errors import Invalid
from aorta.gpu import GpuProbe, NodeSample, NvmlProbe, ProcEnvironOwners, ProcessOwners
from aorta.logger import get_logger
from aorta.runtime.service import ServiceContext
from aorta_services.monitor import handlers
from aorta_services.monitor.domain.fleet import Fleet
from aorta_services.monitor.sampler import Sampler
from aorta_services.monitor.settings import MonitorSettings
from aorta_services.monitor.stop import PlatformStop

log = get_logger(__name__)
QUEUE = "monitor"


@dataclass
class RunningMonitor:
    """A started monitor. `stop` ends watch streams, stops answering, then stops sampling."""

    probe: GpuProbe
    name: str = "monitor"
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    served: list[Subscription] = field(default_factory=list)
    samples: Subscription | None = None
    sampler: asyncio.Task[None] | None = None

    async def stop(self, grace: float) -> None:
        """Needs no grace of its own: watch streams end at their next wait instead of waiting
        for their clients, the other verbs answer at once, and the bus bounds each drain by
        its drain timeout. Idempotent."""
        self.stopping.set()
        await asyncio.gather(*(subscription.drain() for subscription in self.served))
        if self.sampler is not None:
            self.sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sampler
        if self.samples is not None:
            await self.samples.drain()
        await self.probe.close()
        log.info("monitor.stopped")


async def start(
    ctx: ServiceContext,
    *,
    environ: Mapping[str, str] = os.environ,
    probe: GpuProbe | None = None,
    owners: ProcessOwners | None = None,
) -> RunningMonitor:
    """Starts sampling and serving; returns once the first sample is recorded and every verb
    is served.

    The monitor's own settings (`MonitorSettings`) come from `environ`, which defaults to the
    process environment because `ServiceContext` carries only the core settings; tests and
    embedding callers pass a mapping. `probe` defaults to NVML, `owners` to `/proc`.
    """
    settings = MonitorSettings.from_env(environ, rpc_timeout=ctx.settings.rpc_timeout)
    running = RunningMonitor(probe=probe or NvmlProbe(settings.node_id))
    fleet = Fleet()
    sampler = Sampler(
        bus=ctx.bus,
        probe=running.probe,
        owners=owners or ProcEnvironOwners(),
        fleet=fleet,
        settings=settings,
    )
    gpu = handlers.GpuHandlers(fleet, settings.interval, running.stopping)
    platform_stop = PlatformStop(ctx.bus, ctx.settings.rpc_timeout)

    async def record(data: bytes, subject: str) -> None:
        try:
            fleet.record(NodeSample.from_json(data))
        except Invalid as exc:
            log.warning("monitor.sample_ignored", subject=subject, reason=str(exc))

    try:
        running.samples = await ctx.bus.subscribe(subjects.GPU_SAMPLES, record)
        await sampler.tick()
        running.sampler = asyncio.create_task(sampler.run(), name="aorta.monitor.sampler")
        bus = ctx.bus
        running.served += [
            await bus.serve(subjects.CLARA_VERSION, handlers.version, queue=QUEUE),
            await bus.serve_stream(subjects.CLARA_UTILIZATION, gpu.utilization, queue=QUEUE),
            await bus.serve_stream(subjects.MONITOR_GPU_METRICS, gpu.gpu_metrics, queue=QUEUE),
            await bus.serve(subjects.CLARA_STOP, platform_stop.handle, queue=QUEUE),
        ]
    except BaseException:
        await running.stop(0)
        raise
    log.info("monitor.serving", node_id=settings.node_id, interval=settings.interval)
    return running
