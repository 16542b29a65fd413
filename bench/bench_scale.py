"""What a second replica buys: one versus two replicas, side by side in one run.

- The platform split into processes (`aorta.testing.split`: a real nats-server, one SQLite
  file, one blob folder), once with one gateway and one payloads replica and once with two of
  each (one pipelines and one scheduler replica both times). `CLIENTS` clients, spread over the
  gateways, each loop for `SECONDS` (`AORTA_BENCH_SCALE_SECONDS`, default 10): `Jobs.Create`
  (the scheduler asks pipelines for the snapshot and payloads for the job's payload) then
  `Jobs.Status` of that job. Figures: jobs created per second, and `Jobs.Status` p50/p99 in
  milliseconds.
- The models service's Triton pool (`pool_cluster`) with one versus two replicas on one store,
  each on a backend whose servers take `START` seconds to start and `LOAD` to load a model
  (no real tritonserver: the pool's own coordination is what is measured): `ACQUIRES` jobs
  acquire at once, spread over the replicas, then release. Figure: acquires per second.

The ratios `two / one` are printed. On a 2-core machine every replica competes for the same
two cores, so the ratios stay near 1 (docs/deploy.md, "Sizing").
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from aorta.api import common_pb2, jobs_pb2, jobs_pb2_grpc, pipelines_pb2, pipelines_pb2_grpc
from aorta.logger import configure_logging
from aorta.store.sqlite import SqliteStateStore
from aorta.testing.split import split_platform
from aorta.triton import ArchiveWriter
from aorta_services.models.pool import TritonPool
from aorta_services.models.pool_cluster import PoolCluster
from aorta_services.models.server_mirror import ServerMirror
from aorta_services.models.settings import PoolSettings

CLIENTS = 8
SECONDS = float(os.environ.get("AORTA_BENCH_SCALE_SECONDS", "10"))
"""How long the clients load each platform; the bench's own test shortens it."""
ACQUIRES = 40
START = 0.2
LOAD = 0.05
PIPELINE = """\
api-version: 0.4.0
name: scale
operators:
- name: only
  container: {image: python, command: [python, -c, pass]}
  input: [{path: /input}]
  output: [{path: /output}]
"""


class _Server:
    """A Triton server that takes `LOAD` seconds per model load."""

    def __init__(self, server_id: str, port: int) -> None:
        self.id = server_id
        self.grpc_uri, self.http_uri = f"127.0.0.1:{port + 1}", f"127.0.0.1:{port}"
        self._loaded: set[str] = set()
        self._running = True

    def alive(self) -> bool:
        return self._running

    async def load(self, model: str) -> None:
        await asyncio.sleep(LOAD)
        self._loaded.add(model)

    async def unload(self, model: str) -> None:
        self._loaded.discard(model)

    async def ready_models(self) -> set[str]:
        return set(self._loaded)

    async def stop(self) -> None:
        self._running = False


class _Backend:
    """Servers that take `START` seconds to start; nothing is written anywhere."""

    def __init__(self) -> None:
        self._ports = itertools.count(20000, 2)

    async def start_server(self, server_id: str, gpus: Sequence[int] = ()) -> _Server:
        await asyncio.sleep(START)
        return _Server(server_id, next(self._ports))

    async def install_model(self, name: str, revision: str, write_archive: ArchiveWriter) -> None:
        return None

    async def remove_model(self, name: str) -> None:
        return None

    async def close(self) -> None:
        return None


class _Source:
    async def write_archive(self, name: str, revision: str, into: Path) -> None:
        return None


async def _load(targets: list[str]) -> dict[str, float]:
    channels = [grpc.aio.insecure_channel(target) for target in targets]
    try:
        pipelines = pipelines_pb2_grpc.PipelinesStub(channels[0])
        file = pipelines_pb2.PipelineDefinitionFile(path="p.yaml", content=PIPELINE)
        created = await pipelines.Create(
            iter([pipelines_pb2.PipelinesCreateRequest(definition=file)])
        )
        assert created.header.code == 0, created.header
        latencies: list[float] = []
        jobs = 0
        deadline = time.monotonic() + SECONDS

        async def client(n: int) -> None:
            nonlocal jobs
            stub = jobs_pb2_grpc.JobsStub(channels[n % len(channels)])
            while time.monotonic() < deadline:
                request = jobs_pb2.JobsCreateRequest(pipeline_id=created.pipeline_id, name="s")
                job = await stub.Create(request)
                assert job.header.code == 0, job.header
                jobs += 1
                began = time.perf_counter()
                status = await stub.Status(
                    jobs_pb2.JobsStatusRequest(job_id=common_pb2.Identifier(value=job.job_id.value))
                )
                latencies.append((time.perf_counter() - began) * 1000)
                assert status.header.code == 0, status.header

        began = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
        elapsed = time.monotonic() - began
    finally:
        for channel in channels:
            await channel.close()
    cuts = statistics.quantiles(latencies, n=100)
    return {"jobs_per_s": jobs / elapsed, "p50": cuts[49], "p99": cuts[98]}


def _platform(replicas: int) -> dict[str, float]:
    counts = {"pipelines": 1, "scheduler": 1, "payloads": replicas, "gateway": replicas}
    with (
        tempfile.TemporaryDirectory(prefix="aorta-bench-scale-") as folder,
        split_platform(Path(folder), counts, {"AORTA_LOG_LEVEL": "warning"}) as platform,
    ):
        return asyncio.run(_load(platform.gateways))


async def _acquires(replicas: int) -> float:
    with tempfile.TemporaryDirectory(prefix="aorta-bench-pool-") as folder:
        store = await SqliteStateStore.open(Path(folder) / "state.db", durable=False)
        clusters: list[PoolCluster] = []
        mirrors: list[ServerMirror] = []
        try:
            for n in range(replicas):
                mirror = ServerMirror(store, owner=f"replica-{n}")
                mirrors.append(mirror)
                settings = PoolSettings(max_servers=ACQUIRES, pool_size=ACQUIRES)
                pool = TritonPool(_Backend(), _Source(), settings, mirror=mirror)
                cluster = PoolCluster(pool, store, mirror, ttl=30.0)
                await cluster.start()
                clusters.append(cluster)
            jobs = [f"{n:032x}" for n in range(ACQUIRES)]
            began = time.perf_counter()
            await asyncio.gather(
                *(clusters[n % replicas].acquire(job, {"seg": "r1"}) for n, job in enumerate(jobs))
            )
            elapsed = time.perf_counter() - began
            await asyncio.gather(
                *(clusters[n % replicas].release(job) for n, job in enumerate(jobs))
            )
        finally:
            for cluster in clusters:
                await cluster.close()
                await cluster.pool.close()
            for mirror in mirrors:
                await mirror.close()
            await store.close()
    return ACQUIRES / elapsed


def run() -> dict[str, Any]:
    configure_logging("json", "error")
    one, two = _platform(1), _platform(2)
    acquire_one = asyncio.run(_acquires(1))
    acquire_two = asyncio.run(_acquires(2))
    return {
        "scale_clients": CLIENTS,
        "scale_seconds": SECONDS,
        "scale_jobs_per_s_one": round(one["jobs_per_s"], 1),
        "scale_jobs_per_s_two": round(two["jobs_per_s"], 1),
        "scale_jobs_ratio_two_over_one": round(two["jobs_per_s"] / one["jobs_per_s"], 2),
        "scale_status_p50_ms_one": round(one["p50"], 1),
        "scale_status_p50_ms_two": round(two["p50"], 1),
        "scale_status_p99_ms_one": round(one["p99"], 1),
        "scale_status_p99_ms_two": round(two["p99"], 1),
        "scale_models_acquires_per_s_one": round(acquire_one, 1),
        "scale_models_acquires_per_s_two": round(acquire_two, 1),
        "scale_models_acquire_ratio_two_over_one": round(acquire_two / acquire_one, 2),
    }
