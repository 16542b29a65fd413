"""Composition root of the monitor service: one per node.

It samples this node's GPUs every interval and publishes them on `aorta.metrics.gpu`, keeps the
latest sample every monitor published, and answers Clara.Version, Clara.Utilization,
Clara.Stop and Monitor.GpuMetrics in the `monitor` queue group, for every node. It also
measures the disks the platform writes to (`aorta.disk_watch`) and says when one is nearly
full, the moment the gateway starts refusing new work.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from aorta import subjects
from aorta.bus import Bus
from aorta.disk_watch import DiskWatch
from aorta.errors import Invalid
from aorta.gpu import GpuProbe, NodeSample, NvmlProbe, ProcEnvironOwners, ProcessOwners
from aorta.logger import get_logger
from aorta.runtime.service import RunningService, ServiceContext
from aorta.tasks import cancel_and_wait
from aorta_services.monitor import handlers
from aorta_services.monitor.domain.fleet import Fleet
from aorta_services.monitor.sampler import Sampler
from aorta_services.monitor.settings import MonitorSettings
from aorta_services.monitor.stop import PlatformStop

log = get_logger(__name__)

DISK_REPORT_SECONDS = 10.0
"""How often the monitor measures this node's disks (`aorta_disk_used_ratio`)."""

ASK_SHARE = 0.8
"""Of what the bus timeout leaves after a watch interval, what the scheduler gets to say which
jobs a `user` may see, so that the answer still reaches the gateway in time without them."""


class RunningMonitor(RunningService):
    """A started monitor. `stop` ends watch streams, stops answering, then stops sampling.

    It needs no grace of its own: watch streams end at their next wait instead of waiting for
    their clients (`stopping`), the other verbs answer at once, and the bus bounds each drain
    by its drain timeout."""

    def __init__(self, bus: Bus, probe: GpuProbe) -> None:
        super().__init__("monitor", bus)
        self.probe = probe
        self.stopping = asyncio.Event()
        self.sampler: asyncio.Task[None] | None = None
        self.disk_reporter: asyncio.Task[None] | None = None
        self.on_stopping(self.stopping.set)
        self.on_stop(probe.close)
        self.on_stop(self._stop_sampling)

    async def _stop_sampling(self) -> None:
        await cancel_and_wait(self.sampler, self.disk_reporter)


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
    running = RunningMonitor(ctx.bus, probe or NvmlProbe(settings.node_id))
    fleet = Fleet()
    sampler = Sampler(
        bus=ctx.bus,
        probe=running.probe,
        owners=owners or ProcEnvironOwners(),
        fleet=fleet,
        settings=settings,
    )
    gpu = handlers.GpuHandlers(
        fleet,
        settings.interval,
        running.stopping,
        bus=ctx.bus,
        ask_timeout=(ctx.settings.rpc_timeout - settings.interval) * ASK_SHARE,
    )
    platform_stop = PlatformStop(ctx.bus, ctx.settings.rpc_timeout)

    async def record(data: bytes, subject: str) -> None:
        try:
            fleet.record(NodeSample.from_json(data))
        except Invalid as exc:
            log.warning("monitor.sample_ignored", subject=subject, reason=str(exc))

    async with running.starting():
        await running.subscribe(subjects.GPU_SAMPLES, record)
        await sampler.tick()
        running.sampler = asyncio.create_task(sampler.run(), name="aorta.monitor.sampler")
        running.disk_reporter = asyncio.create_task(
            DiskWatch.from_settings(ctx.settings).report_forever(DISK_REPORT_SECONDS),
            name="aorta.monitor.disks",
        )
        await running.serve(subjects.CLARA_VERSION, handlers.version)
        await running.serve_stream(subjects.CLARA_UTILIZATION, gpu.utilization)
        await running.serve_stream(subjects.MONITOR_GPU_METRICS, gpu.gpu_metrics)
        await running.serve(subjects.CLARA_STOP, platform_stop.handle)
    log.info("monitor.serving", node_id=settings.node_id, interval=settings.interval)
    return running
