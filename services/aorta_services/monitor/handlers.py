"""Bus verbs of the Clara service and of node_monitor.Monitor answered by the monitor.

Every monitor (one per node) serves them in one queue group and answers for every node, from
the samples all monitors publish (see `fleet`). A `user` is answered with other users' jobs'
GPU processes without their job (`job_privacy`, `readable_jobs`). Stop lives in `stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aorta import CLARA_API_VERSION, __version__
from aorta.api import clara_pb2, common_pb2, node_monitor_pb2
from aorta.bus import Bus, Request
from aorta.logger import get_logger
from aorta_services.monitor.domain.fleet import Fleet
from aorta_services.monitor.domain.job_privacy import named_jobs
from aorta_services.monitor.messages import (
    gpu_metrics_response,
    parse_request,
    utilization_response,
)
from aorta_services.monitor.readable_jobs import ReadableJobs

log = get_logger(__name__)


def version_message() -> common_pb2.Version:
    """Aorta's own version as a Clara `Version` (a pre-release suffix becomes the label)."""
    numbers, _, label = __version__.partition("+")[0].partition("-")
    parts = [int(p) if p.isdigit() else 0 for p in [*numbers.split("."), "0", "0"][:3]]
    return common_pb2.Version(major=parts[0], minor=parts[1], patch=parts[2], label=label)


async def version(request: Request) -> bytes:
    """Answers Clara.Version; the request carries nothing but a header."""
    api = ".".join(str(n) for n in CLARA_API_VERSION)
    response = clara_pb2.ClaraVersionResponse(version=version_message())
    response.header.messages.append(f"Aorta {__version__}, Clara Platform API {api}")
    return response.SerializeToString()


class GpuHandlers:
    """Utilization and GpuMetrics over the fleet's latest samples.

    `interval` is the watch period; setting `stopping` ends every watch stream at its next
    wait, so the service drains without waiting for clients to hang up. `bus` and
    `ask_timeout` are how a `user`'s answer asks the scheduler which jobs are its own.
    """

    def __init__(
        self,
        fleet: Fleet,
        interval: float,
        stopping: asyncio.Event,
        *,
        bus: Bus,
        ask_timeout: float,
    ) -> None:
        self._fleet = fleet
        self._interval = interval
        self._stopping = stopping
        self._bus = bus
        self._ask_timeout = ask_timeout

    async def utilization(self, request: Request) -> AsyncIterator[bytes]:
        """Clara.Utilization: one snapshot; with `watch`, one more every interval until the
        caller stops reading (the generator is then closed at its `yield`) or the service
        stops (the stream then ends normally). Every message shows the caller the jobs it
        may see (`readable_jobs`)."""
        watch = parse_request(clara_pb2.ClaraUtilizationRequest, request).watch
        readable = ReadableJobs(self._bus, self._ask_timeout)
        yield await self._snapshot(readable)
        if not watch:
            return
        sent = 1
        log.info("monitor.watch_started", interval=self._interval)
        try:
            while not await self._stopped_within(self._interval):
                yield await self._snapshot(readable)
                sent += 1
        finally:
            log.info("monitor.watch_ended", messages=sent)

    async def _snapshot(self, readable: ReadableJobs) -> bytes:
        nodes = self._fleet.current()
        shown = await readable.shown(named_jobs(nodes))
        return utilization_response(nodes, shown).SerializeToString()

    async def gpu_metrics(self, request: Request) -> AsyncIterator[bytes]:
        """Monitor.GpuMetrics: one snapshot (its request has no watch flag)."""
        parse_request(node_monitor_pb2.MonitorGpuMetricsRequest, request)
        yield gpu_metrics_response(self._fleet.current()).SerializeToString()

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()
