"""Bus verbs of the Clara service and of node_monitor.Monitor answered by the monitor.

Every monitor (one per node) serves them in one queue group and answers for every node, from
the samples all monitors publish (see `fleet`). Stop lives in `stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aorta import CLARA_API_VERSION, __version__
from aorta.api import clara_pb2, common_pb2, node_monitor_pb2
from aorta.bus import Request
from aorta.logger import get_logger
from aorta_services.monitor.domain.fleet import Fleet
from aorta_services.monitor.messages import (
    gpu_metrics_response,
    parse_request,
    utilization_response,
)

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
    wait, so the service drains without waiting for clients to hang up.
    """

    def __init__(self, fleet: Fleet, interval: float, stopping: asyncio.Event) -> None:
        self._fleet = fleet
        self._interval = interval
        self._stopping = stopping

    async def utilization(self, request: Request) -> AsyncIterator[bytes]:
        """Clara.Utilization: one snapshot; with `watch`, one more every interval until the
        caller stops reading (the generator is then closed at its `yield`) or the service
        stops (the stream then ends normally)."""
        watch = parse_request(clara_pb2.ClaraUtilizationRequest, request).watch
        yield utilization_response(self._fleet.current()).SerializeToString()
        if not watch:
            return
        sent = 1
        log.info("monitor.watch_started", interval=self._interval)
        try:
            while not await self._stopped_within(self._interval):
                yield utilization_response(self._fleet.current()).SerializeToString()
                sent += 1
        finally:
            log.info("monitor.watch_ended", messages=sent)

    async def gpu_metrics(self, request: Request) -> AsyncIterator[bytes]:
        """Monitor.GpuMetrics: one snapshot (its request has no watch flag)."""
        parse_request(node_monitor_pb2.MonitorGpuMetricsRequest, request)
        yield gpu_metrics_response(self._fleet.current()).SerializeToString()

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()
