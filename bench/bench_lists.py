"""What listing and reading jobs costs with a long history, against the same calls with none.

One run, two platforms side by side, each `aorta up` in a child process on its own data dir:

- the baseline: a store holding only the `CLIENTS` jobs the Status clients ask for (so its
  List answers at once with next to nothing);
- the history: `HISTORY` stored jobs (seeded straight into SQLite through the adapter before
  the platform starts), `HEAVY` of them, spread evenly, carrying `HEAVY_MIB` MiB of metadata
  each, as Clara's metadata limits allow.

Against each, through the public gRPC API:

- `list_first_message_ms`: from an unfiltered `Jobs.List` call to its first message (the
  median of `REPEATS`; target < 100 ms with the history);
- `list_jobs_per_s`: a whole unfiltered List streamed and counted (target >= 20,000);
- `list_peak_rss_growth_mib`: the platform process's peak RSS growth, sampled every 10 ms,
  while four full Lists stream at once (target < 64 MiB);
- `status_p99_ms`: `Jobs.Status` latency, p99 over `CLIENTS` concurrent clients each asking
  `STATUS_CALLS` times (target < 50 ms).

And the floor, in the same run: `list_floor_jobs_per_s`, the same client streaming a whole List
of the same items (their sizes, heavy ones included, serialized beforehand) from a bare
`grpc.aio` server that does nothing else (`bench.list_floor`): what any server sending Clara's
one message per job reaches here. `list_share_of_floor` is the platform's rate over it.

Where the CPU of one whole List goes, in microseconds per job: `list_platform_cpu_us_per_job`
(the `aorta up` process and its children, nats-server among them),
`list_floor_cpu_us_per_job` (the floor server's) and `list_client_cpu_us_per_job` and
`list_floor_client_cpu_us_per_job` (this process, the client, while it streams either). On a
machine of two cores the client and the server each have about one, so a List's rate is at
most a million over the larger of the two.

`AORTA_BENCH_HISTORY` overrides the history's size (default 100,000), `AORTA_BENCH_HEAVY` the
number of jobs with heavy metadata in it (default 100).
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import grpc
import psutil

from aorta.api import common_pb2, jobs_pb2, jobs_pb2_grpc
from aorta.ids import JobId, PayloadId, PipelineId
from aorta.logger import configure_logging
from aorta.store.sqlite import SqliteStateStore
from aorta_services.scheduler.domain import JobPhase, JobPriority, JobProgress, Request
from aorta_services.scheduler.domain.job_record import JobRecord, OperatorRecord
from aorta_services.scheduler.repository import JOBS, JobRepository
from bench.processes import MiB, RssSampler, list_floor_server, platform

HISTORY = int(os.environ.get("AORTA_BENCH_HISTORY", "100000"))
HEAVY = int(os.environ.get("AORTA_BENCH_HEAVY", "100"))
HEAVY_MIB = 3.5
CLIENTS = 20
STATUS_CALLS = 50
REPEATS = 5
CONCURRENT_LISTS = 4
TARGETS = {
    "list_first_message_ms": 100.0,
    "list_jobs_per_s": 20_000.0,
    "list_peak_rss_growth_mib": 64.0,
    "status_p99_ms": 50.0,
}
OPERATORS = ("fetch", "infer", "store")
MAX_MESSAGE = 8 * MiB


def job_document(n: int, created: float, metadata: dict[str, str]) -> dict[str, Any]:
    """A finished three-operator job as the scheduler stores one."""
    progress = JobProgress(OPERATORS, {"infer": {"fetch"}, "store": {"infer"}})
    for name in OPERATORS:
        progress.mark_running(name)
        progress.mark_completed(name)
    operators = tuple(
        OperatorRecord(
            name=name,
            request=Request(cpu=1, gpu=0, memory_mb=256),
            timeout=0,
            attempt=1,
            run_id=f"{n:032x}-{name}-1",
            started=created + index,
            stopped=created + index + 1,
            exit_code=0,
        )
        for index, name in enumerate(OPERATORS)
    )
    record = JobRecord(
        id=JobId(f"{n:032x}"),
        name=f"job-{n}",
        pipeline_id=PipelineId("a" * 32),
        pipeline_name="bench",
        payload_id=PayloadId(f"{n:031x}b"),
        priority=JobPriority.NORMAL,
        phase=JobPhase.SUCCEEDED,
        created=created,
        progress=progress.to_document(),
        operators=operators,
        enqueued=created,
        started=created,
        stopped=created + len(OPERATORS),
        metadata=metadata,
        released=True,
    )
    return record.to_document()


def is_heavy(n: int, jobs: int, heavy: int) -> bool:
    """Whether job `n` of `jobs` is one of the `heavy` spread evenly among them."""
    every = jobs // heavy if heavy else 0
    return bool(every) and n % every == every // 2


def heavy_metadata() -> dict[str, str]:
    """About `HEAVY_MIB` MiB of metadata within Clara's limits (keys of 128 bytes at most,
    values of 256)."""
    entries = int(HEAVY_MIB * MiB) // (24 + 256)
    return {f"key-{i:019d}": "v" * 256 for i in range(entries)}


async def seed(data_dir: Path, jobs: int, heavy: int) -> list[str]:
    """Stores `jobs` jobs, `heavy` of them spread evenly with heavy metadata, into the SQLite
    file `aorta up` will open; their ids."""
    await asyncio.to_thread(data_dir.mkdir, parents=True)
    store = await SqliteStateStore.open(data_dir / "state.db", durable=False)
    try:
        await JobRepository(store).prepare()
        collection = store.collection(JOBS)
        big = heavy_metadata() if heavy else {}
        start = time.time() - jobs
        template = job_document(0, start, {"site": "north"})
        heavy_pairs = [[key, value] for key, value in big.items()]
        ids = []
        batch: list[Awaitable[Any]] = []
        for n in range(jobs):
            created = start + n
            document = template | {
                "id": f"{n:032x}",
                "name": f"job-{n}",
                "payload_id": f"{n:031x}b",
                "created": created,
                "enqueued": created,
                "started": created,
                "stopped": created + len(OPERATORS),
            }
            if is_heavy(n, jobs, heavy):
                document["metadata"] = heavy_pairs
            ids.append(document["id"])
            batch.append(collection.insert(document))
            if len(batch) == 256:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
        return ids
    finally:
        await store.close()


def stub(channel: grpc.aio.Channel) -> jobs_pb2_grpc.JobsAsyncStub:
    return jobs_pb2_grpc.JobsStub(channel)


def open_channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        target, options=[("grpc.max_receive_message_length", MAX_MESSAGE)]
    )


async def first_message_ms(target: str) -> float:
    async with open_channel(target) as channel:
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            call = stub(channel).List(jobs_pb2.JobsListRequest())
            await anext(aiter(call))
            times.append((time.perf_counter() - started) * 1000)
            call.cancel()
        return statistics.median(times)


async def full_list(target: str) -> tuple[int, float]:
    """How many jobs a whole List streamed, and in how many seconds."""
    async with open_channel(target) as channel:
        started = time.perf_counter()
        count = 0
        async for item in stub(channel).List(jobs_pb2.JobsListRequest()):
            count += bool(item.job_details.job_id.value)
        return count, time.perf_counter() - started


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) of process `pid` and its children so far."""
    process = psutil.Process(pid)
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        times = each.cpu_times()
        total += times.user + times.system
    return total


def counted_list(target: str, pid: int) -> dict[str, float]:
    """A whole List from `target`, served by process `pid`: how many jobs, in how many
    seconds, and the CPU microseconds per job of the server and of this process (the
    client)."""
    server, client = _cpu_s(pid), _own_cpu_s()
    listed, seconds = asyncio.run(full_list(target))
    server, client = _cpu_s(pid) - server, _own_cpu_s() - client
    per_job = 1e6 / listed if listed else 0.0
    return {
        "listed": listed,
        "seconds": seconds,
        "server_cpu_us_per_job": round(server * per_job, 1),
        "client_cpu_us_per_job": round(client * per_job, 1),
    }


async def status_p99_ms(target: str, job_ids: list[str]) -> float:
    async with open_channel(target) as channel:
        jobs = stub(channel)
        latencies: list[float] = []

        async def client(job_id: str) -> None:
            request = jobs_pb2.JobsStatusRequest(job_id=common_pb2.Identifier(value=job_id))
            for _ in range(STATUS_CALLS):
                started = time.perf_counter()
                answer = await jobs.Status(request)
                latencies.append((time.perf_counter() - started) * 1000)
                assert answer.header.code == 0, answer.header

        await asyncio.gather(*(client(job_id) for job_id in job_ids))
        return statistics.quantiles(latencies, n=100)[98]


def measure(data_dir: Path, status_ids: list[str]) -> dict[str, float]:
    with platform(data_dir) as (target, pid), RssSampler(pid) as rss:
        first_ms = asyncio.run(first_message_ms(target))
        whole = counted_list(target, pid)
        listed, seconds = int(whole["listed"]), whole["seconds"]
        with rss.phase("lists", 1):

            async def concurrent() -> None:
                await asyncio.gather(*(full_list(target) for _ in range(CONCURRENT_LISTS)))

            asyncio.run(concurrent())
        p99 = asyncio.run(status_p99_ms(target, status_ids))
    return {
        "listed": listed,
        "list_first_message_ms": round(first_ms, 1),
        "list_jobs_per_s": round(listed / seconds, 1) if listed else 0.0,
        "list_seconds": round(seconds, 3),
        "list_peak_rss_growth_mib": round(rss.peaks["lists"], 1),
        "status_p99_ms": round(p99, 1),
        "list_platform_cpu_us_per_job": whole["server_cpu_us_per_job"],
        "list_client_cpu_us_per_job": whole["client_cpu_us_per_job"],
    }


def sample_ids(ids: list[str], count: int) -> list[str]:
    step = max(1, len(ids) // count)
    return ids[::step][:count]


def run() -> dict[str, Any]:
    configure_logging("json", "error")
    with tempfile.TemporaryDirectory(prefix="aorta-bench-lists-") as folder:
        root = Path(folder)
        started = time.perf_counter()
        history_ids = asyncio.run(seed(root / "history", HISTORY, HEAVY))
        seed_s = time.perf_counter() - started
        baseline_ids = asyncio.run(seed(root / "baseline", CLIENTS, 0))
        baseline = measure(root / "baseline", baseline_ids)
        history = measure(root / "history", sample_ids(history_ids, CLIENTS))
    with list_floor_server(HISTORY, HEAVY) as (floor_target, floor_pid):
        floor = counted_list(floor_target, floor_pid)
    floor_listed, floor_seconds = floor["listed"], floor["seconds"]
    floor_rate = floor_listed / floor_seconds if floor_listed else 0.0
    report: dict[str, Any] = {
        "history_jobs": HISTORY,
        "heavy_jobs": HEAVY,
        "heavy_metadata_mib": HEAVY_MIB,
        "seed_s": round(seed_s, 1),
        "seed_jobs_per_s": round(HISTORY / seed_s, 1),
    }
    report |= {key: value for key, value in history.items()}
    report |= {f"baseline_{key}": value for key, value in baseline.items()}
    report["list_floor_jobs_per_s"] = round(floor_rate, 1)
    report["list_floor_cpu_us_per_job"] = floor["server_cpu_us_per_job"]
    report["list_floor_client_cpu_us_per_job"] = floor["client_cpu_us_per_job"]
    report["list_share_of_floor"] = (
        round(history["list_jobs_per_s"] / floor_rate, 3) if floor_rate else 0.0
    )
    report |= within_targets(history)
    return report


def within_targets(history: dict[str, float]) -> dict[str, bool]:
    """Whether each figure of the history meets its target (jobs/s at least, others below)."""
    return {
        f"{key}_within_target": history[key] >= target
        if key == "list_jobs_per_s"
        else history[key] < target
        for key, target in TARGETS.items()
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
