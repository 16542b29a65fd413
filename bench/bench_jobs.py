"""What running operators through the platform costs, against running the same processes plainly.

One run, side by side, on this machine, the baseline and the platform alternating so that the
load of a shared machine weighs on both alike:

- the baseline: the operator command (`python -c pass`) run `CHAIN` times back to back by a
  plain asyncio script (the median of `REPEATS` chains, one before each platform job), and
  `JOBS` times with as many at once as the platform admits (before and after the platform's
  jobs, the mean of both);
- the platform: the gateway, pipelines, payloads and scheduler services in this process on a
  real nats-server (SQLite and a local blob folder in a temporary dir, the real local executor),
  driven through the public gRPC API:
  - a chain of `CHAIN` operators each running the same command, each reading the previous
    one's output: from `Jobs.Start` until the job's `job.stopped` event arrives (the median of
    `REPEATS` jobs, after one warm-up job). The overhead
    per operator is (platform - baseline) / CHAIN (target <= 12 ms). The stored
    operator times split it into the gap between one operator's end and the next one's start
    (the scheduler's own part) and the rest (the executor: group leader, workspace, log,
    input fetch and output push), and the attempts' timelines split each operator into its
    stages (`operator_stage_*_median_ms`, from one moment of `AttemptTimes` to the next):
    medians over every operator of the `REPEATS` jobs, not of one job, so that one slow
    moment of a shared machine weighs less. The CPU this process spends per operator while
    the jobs run (`platform_cpu_ms_per_chain_operator`) and the times its threads gave up a
    core to wait (`platform_voluntary_switches_per_chain_operator`: each thread hop and each
    wait for I/O is at least one) move much less with the machine's load than the times do;
  - `JOBS` one-operator jobs created, then started all at once: jobs per second from the first
    `Start` to the last `job.stopped`, against the baseline's processes per second
    (`jobs_ratio_platform_over_baseline`, target >= 0.7). The CPU each job costs, which a
    loaded machine disturbs much less than its rate, says what bounds that ratio once the
    cores are busy: `platform_cpu_ms_per_job` is this process's (the services and the client;
    not nats-server's), `operator_cpu_ms_per_job` the command's with its group leader, against
    `baseline_cpu_ms_per_process`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import grpc

from aorta.api import common_pb2, jobs_pb2, jobs_pb2_grpc, pipelines_pb2, pipelines_pb2_grpc
from aorta.bus import CloudEvent
from aorta.bus.nats import NatsBus
from aorta.ids import JobId
from aorta.logger import configure_logging
from aorta.runtime.process import settle_collector
from aorta.runtime.service import Running, ServiceContext, service_context
from aorta.settings import Settings
from aorta.testing.nats import async_nats_server
from aorta_services.gateway import app as gateway_app
from aorta_services.payloads import app as payloads_app
from aorta_services.pipelines import app as pipelines_app
from aorta_services.scheduler import app as scheduler_app
from aorta_services.scheduler.domain.timeline import AttemptTimes
from aorta_services.scheduler.repository import JobRepository

CHAIN = 10
JOBS = 200
REPEATS = 5
TARGET_OVERHEAD_MS = 12.0
TARGET_JOBS_RATIO = 0.7
COMMAND = (sys.executable, "-c", "pass")


def chain_definition(length: int) -> str:
    lines = ["api-version: 0.4.0", f"name: chain-{length}", "operators:"]
    for index in range(length):
        source = f"{{from: op{index - 1}, path: /in}}" if index else "{path: /in}"
        lines += [
            f"- name: op{index}",
            f"  container: {{image: python, command: [{', '.join(COMMAND)}]}}",
            f"  input: [{source}]",
            "  output: [{path: /out}]",
            "  requests: {cpu: 1, memory: 64}",
        ]
    return "\n".join(lines) + "\n"


async def run_command() -> None:
    process = await asyncio.create_subprocess_exec(
        *COMMAND, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL
    )
    if await process.wait() != 0:
        raise RuntimeError(f"{COMMAND} failed")


async def baseline_chain() -> float:
    """One chain of `CHAIN` commands back to back."""
    started = time.perf_counter()
    for _ in range(CHAIN):
        await run_command()
    return time.perf_counter() - started


async def baseline_many(concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await run_command()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(JOBS)))
    return time.perf_counter() - started


class Platform:
    """The job path of the platform in this process, and a gRPC client of its gateway."""

    def __init__(self, context: ServiceContext, channel: grpc.aio.Channel) -> None:
        self.context = context
        self.jobs = jobs_pb2_grpc.JobsStub(channel)
        self.pipelines = pipelines_pb2_grpc.PipelinesStub(channel)
        self.stopped: dict[str, asyncio.Future[float]] = {}

    async def on_event(self, event: CloudEvent) -> None:
        waiter = self.stopped.get(event.subject)
        if waiter is not None and not waiter.done():
            waiter.set_result(time.perf_counter())

    async def pipeline(self, text: str) -> common_pb2.Identifier:
        file = pipelines_pb2.PipelineDefinitionFile(path="p.yaml", content=text)
        created = await self.pipelines.Create(
            iter([pipelines_pb2.PipelinesCreateRequest(definition=file)])
        )
        assert created.header.code == 0, created.header
        return created.pipeline_id

    async def job(self, pipeline_id: common_pb2.Identifier, name: str) -> str:
        created = await self.jobs.Create(
            jobs_pb2.JobsCreateRequest(pipeline_id=pipeline_id, name=name)
        )
        assert created.header.code == 0, created.header
        job_id = str(created.job_id.value)
        self.stopped[job_id] = asyncio.get_running_loop().create_future()
        return job_id

    async def start(self, job_id: str) -> None:
        request = jobs_pb2.JobsStartRequest(job_id=common_pb2.Identifier(value=job_id))
        started = await self.jobs.Start(request)
        assert started.header.code == 0, started.header


async def with_platform(
    work: Callable[[Platform], Awaitable[dict[str, Any]]],
    scheduler_environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Runs `work` against a fresh platform whose scheduler also reads `scheduler_environ`
    (bench_containers chooses the container executor with it)."""
    with tempfile.TemporaryDirectory(prefix="aorta-bench-jobs-") as folder:
        root = Path(folder)
        async with async_nats_server(root / "nats") as nats:
            settings = Settings.from_env(
                {"AORTA_DATA_DIR": str(root / "data"), "AORTA_NATS_URL": nats.url}
            )
            bus = await NatsBus.connect(nats.url, name="aorta-bench", default_timeout=30.0)
            async with service_context(settings, bus) as context:
                environ = {
                    "AORTA_SCHEDULER_GPUS": "0",
                    "AORTA_SCHEDULER_RESYNC": "1",
                    **(scheduler_environ or {}),
                }
                services: list[Running] = [
                    await pipelines_app.start(context),
                    await payloads_app.start(context),
                    await scheduler_app.start(context, environ=environ),
                ]
                gateway = await gateway_app.start(context, address="127.0.0.1:0")
                # As `aorta up` and `aorta serve` do once their services started.
                threshold = gc.get_threshold()
                settle_collector()
                try:
                    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
                        platform = Platform(context, channel)
                        events = await bus.subscribe_events(
                            "aorta.events.job.*.stopped", platform.on_event
                        )
                        try:
                            return await work(platform)
                        finally:
                            await events.drain()
                finally:
                    gc.unfreeze()
                    gc.set_threshold(*threshold)
                    await gateway.stop(1.0)
                    for service in reversed(services):
                        await service.stop(1.0)
                    await bus.close()


async def platform_chain(platform: Platform) -> dict[str, Any]:
    pipeline_id = await platform.pipeline(chain_definition(CHAIN))
    # A warm-up job first, so imports and first-use costs are not counted; then the median
    # of `REPEATS` jobs, each after a baseline chain.
    times, baselines, measured, cpu, switches = [], [], [], [], []
    for index in range(REPEATS + 1):
        if index:
            baselines.append(await baseline_chain())
        job_id = await platform.job(pipeline_id, f"chain-{index}")
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        await platform.start(job_id)
        times.append(await platform.stopped[job_id] - started)
        after = resource.getrusage(resource.RUSAGE_SELF)
        if index:
            measured.append(job_id)
            cpu.append(cpu_seconds_between(before, after) / CHAIN)
            switches.append((after.ru_nvcsw - before.ru_nvcsw) / CHAIN)
    repository = JobRepository(platform.context.store)
    records = [await repository.get(JobId(job_id)) for job_id in measured]
    for record in records:
        assert record.phase.value == "succeeded", record.messages
    gaps = [
        at(later.started) - at(earlier.stopped)
        for record in records
        for earlier, later in pairwise(record.operators)
    ]
    operators = [op for record in records for op in record.operators]
    runs = [at(op.stopped) - at(op.started) for op in operators]
    admissions = [at(record.operators[0].started) - at(record.enqueued) for record in records]
    return {
        "seconds": statistics.median(times[1:]),
        "baseline_seconds": statistics.median(baselines),
        "admission_s": statistics.median(admissions),
        "gap_median_ms": statistics.median(gaps) * 1000,
        "run_median_ms": statistics.median(runs) * 1000,
        "stages_ms": stage_medians_ms([op.timeline[-1] for op in operators]),
        "cpu_ms_per_operator": statistics.median(cpu) * 1000,
        "switches_per_operator": statistics.median(switches),
    }


STAGES = ("ready", "admitted", "staging", "running", "exited", "stored", "ended")
"""An attempt's moments in order (`AttemptTimes`): the time between two neighbours is a stage
of an operator's overhead (`running` to `exited` is the command itself, under its group
leader)."""


def stage_medians_ms(timeline: Sequence[AttemptTimes]) -> dict[str, float]:
    """The median milliseconds from each moment of an attempt to the next, over `timeline`."""
    medians = {}
    for earlier, later in pairwise(STAGES):
        spans = [
            (at(getattr(times, later)) - at(getattr(times, earlier))) * 1000 for times in timeline
        ]
        medians[f"{earlier}_to_{later}"] = round(statistics.median(spans), 1)
    return medians


def at(moment: float | None) -> float:
    """A time the record must hold by now."""
    assert moment is not None
    return moment


async def platform_many(platform: Platform) -> dict[str, Any]:
    pipeline_id = await platform.pipeline(chain_definition(1))
    jobs = await asyncio.gather(*(platform.job(pipeline_id, f"job-{n}") for n in range(JOBS)))
    concurrency = (os.cpu_count() or 1) * 4
    children_before = cpu_seconds(resource.RUSAGE_CHILDREN)
    before = await baseline_many(concurrency)
    own, children = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
    baseline_cpu = children - children_before
    started = time.perf_counter()
    await asyncio.gather(*(platform.start(job_id) for job_id in jobs))
    ends = await asyncio.gather(*(platform.stopped[job_id] for job_id in jobs))
    seconds = max(ends) - started
    own = cpu_seconds(resource.RUSAGE_SELF) - own
    children = cpu_seconds(resource.RUSAGE_CHILDREN) - children
    after = await baseline_many(concurrency)
    return {
        "seconds": seconds,
        "baseline_seconds": (before + after) / 2,
        "concurrency": concurrency,
        "baseline_cpu_ms": baseline_cpu / JOBS * 1000,
        "platform_cpu_ms": own / JOBS * 1000,
        "operator_cpu_ms": children / JOBS * 1000,
    }


def cpu_seconds_between(before: resource.struct_rusage, after: resource.struct_rusage) -> float:
    """User and system CPU seconds from one `getrusage` to a later one."""
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def cpu_seconds(who: int) -> float:
    """User and system CPU seconds of this process (`RUSAGE_SELF`) or of its children reaped
    so far (`RUSAGE_CHILDREN`: the commands, with their group leaders)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def measure() -> dict[str, Any]:
    await run_command()
    chain = await with_platform(platform_chain)
    many = await with_platform(platform_many)
    base_chain, base_many, concurrency = (
        chain["baseline_seconds"],
        many["baseline_seconds"],
        many["concurrency"],
    )
    overhead_ms = (chain["seconds"] - base_chain) / CHAIN * 1000
    jobs_ratio = base_many / many["seconds"]
    return {
        "cores": os.cpu_count(),
        "chain_operators": CHAIN,
        "baseline_chain_s": round(base_chain, 3),
        "platform_chain_s": round(chain["seconds"], 3),
        "overhead_per_operator_ms": round(overhead_ms, 1),
        "overhead_target_ms": TARGET_OVERHEAD_MS,
        "overhead_within_target": overhead_ms <= TARGET_OVERHEAD_MS,
        "start_to_first_operator_ms": round(chain["admission_s"] * 1000, 1),
        "scheduler_gap_between_operators_median_ms": round(chain["gap_median_ms"], 1),
        "operator_run_median_ms": round(chain["run_median_ms"], 1),
        **{f"operator_stage_{name}_median_ms": ms for name, ms in chain["stages_ms"].items()},
        "platform_cpu_ms_per_chain_operator": round(chain["cpu_ms_per_operator"], 2),
        "platform_voluntary_switches_per_chain_operator": round(chain["switches_per_operator"], 1),
        "jobs": JOBS,
        "concurrency": concurrency,
        "baseline_processes_per_s": round(JOBS / base_many, 1),
        "platform_jobs_per_s": round(JOBS / many["seconds"], 1),
        "baseline_cpu_ms_per_process": round(many["baseline_cpu_ms"], 1),
        "platform_cpu_ms_per_job": round(many["platform_cpu_ms"], 1),
        "operator_cpu_ms_per_job": round(many["operator_cpu_ms"], 1),
        "jobs_ratio_platform_over_baseline": round(jobs_ratio, 3),
        "jobs_ratio_target": TARGET_JOBS_RATIO,
        "jobs_ratio_within_target": jobs_ratio >= TARGET_JOBS_RATIO,
    }


def run() -> dict[str, Any]:
    configure_logging("json", "error")
    return asyncio.run(measure())


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
