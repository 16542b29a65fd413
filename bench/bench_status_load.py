"""The gateway's read paths under load, against a server answering stored messages.

One run, side by side, on this machine (both servers in child processes, the clients here):

- the floor: `bench.read_floor`, a bare `grpc.aio` server answering each call with the
  messages the platform gave for it (serialized once);
- the platform: `aorta up` (local blob folder, SQLite), holding one created job, its pipeline
  and its payload.

Against each, `CLIENTS` concurrent clients (a channel each) call the same method back to back
for `SECONDS` seconds: `Jobs.Status` of the job, `Payloads.Details` of its payload and
`Pipelines.Details` of its pipeline. Both servers stay up, and each method's load alternates
between them in `ROUNDS` slices of `SECONDS / ROUNDS` (floor, platform, floor, ...), so that
the load other work puts on a shared machine weighs on both sides alike. For each: requests
per second, the platform's over the floor's (`status_load_ratio`, target >= 0.5) and the
platform's p99 latency (`status_load_p99_ms`, target < 50 ms); the Details paths give the
same figures under `payload_details_load_*` and `pipeline_details_load_*`.

`AORTA_BENCH_LOAD_SECONDS` overrides how long each load lasts (default 3), per side.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from aorta.api import (
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.logger import configure_logging
from aorta.testing.ports import free_port
from bench import read_floor
from bench.processes import platform

CLIENTS = 20
SECONDS = float(os.environ.get("AORTA_BENCH_LOAD_SECONDS", "3"))
ROUNDS = 3
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
PIPELINE = """api-version: 0.4.0
name: status-load
operators:
- name: only
  container: {image: python, command: [python, -c, pass]}
  input: [{path: /in}]
  output: [{path: /out}]
"""


@dataclass(frozen=True)
class Subjects:
    """What the clients read: the job, its payload and its pipeline."""

    job: common_pb2.Identifier
    payload: common_pb2.Identifier
    pipeline: common_pb2.Identifier


@dataclass(frozen=True)
class Load:
    """What `CLIENTS` clients got from one method in `SECONDS`."""

    requests_per_s: float
    p99_ms: float


@dataclass
class Slices:
    """The calls of one method against one server, over every slice of its load."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    def load(self) -> Load:
        return Load(
            len(self.latencies) / self.elapsed, statistics.quantiles(self.latencies, n=100)[98]
        )


Call = Callable[[grpc.aio.Channel], Awaitable[None]]


def calls(subjects: Subjects) -> dict[str, Call]:
    """One call of each read path, by the prefix of its figures; each checks its answer."""

    async def status(channel: grpc.aio.Channel) -> None:
        request = jobs_pb2.JobsStatusRequest(job_id=subjects.job)
        answer = await jobs_pb2_grpc.JobsStub(channel).Status(request)
        assert answer.header.code == 0, answer.header

    async def payload_details(channel: grpc.aio.Channel) -> None:
        request = payloads_pb2.PayloadsDetailsRequest(payload_id=subjects.payload)
        async for item in payloads_pb2_grpc.PayloadsStub(channel).Details(request):
            assert item.header.code == 0, item.header

    async def pipeline_details(channel: grpc.aio.Channel) -> None:
        request = pipelines_pb2.PipelinesDetailsRequest(pipeline_id=subjects.pipeline)
        async for item in pipelines_pb2_grpc.PipelinesStub(channel).Details(request):
            assert item.header.code == 0, item.header

    return {
        "status_load": status,
        "payload_details_load": payload_details,
        "pipeline_details_load": pipeline_details,
    }


async def load(target: str, call: Call, seconds: float, into: Slices) -> None:
    """`CLIENTS` clients calling `call` back to back for `seconds` (after one warm-up call
    each), their latencies and time added to `into`."""
    channels = [grpc.aio.insecure_channel(target) for _ in range(CLIENTS)]
    try:
        await asyncio.gather(*(call(channel) for channel in channels))
        started = time.perf_counter()
        deadline = started + seconds

        async def client(channel: grpc.aio.Channel) -> None:
            while (now := time.perf_counter()) < deadline:
                await call(channel)
                into.latencies.append((time.perf_counter() - now) * 1000)

        await asyncio.gather(*(client(channel) for channel in channels))
        into.elapsed += time.perf_counter() - started
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))


async def load_both(
    platform_target: str, floor_target: str, subjects: Subjects
) -> tuple[dict[str, Load], dict[str, Load]]:
    """Each method's load on the platform and on the floor, alternating in `ROUNDS` slices."""
    ours: dict[str, Load] = {}
    bare: dict[str, Load] = {}
    for name, call in calls(subjects).items():
        platform_slices, floor_slices = Slices(), Slices()
        for _ in range(ROUNDS):
            await load(floor_target, call, SECONDS / ROUNDS, floor_slices)
            await load(platform_target, call, SECONDS / ROUNDS, platform_slices)
        ours[name], bare[name] = platform_slices.load(), floor_slices.load()
    return ours, bare


async def prepare(target: str) -> tuple[Subjects, dict[str, list[bytes]]]:
    """Creates the job (and so its payload) and its pipeline; returns them with the answers
    the platform gives to each read, serialized, for the floor to repeat."""
    async with grpc.aio.insecure_channel(target) as channel:
        file = pipelines_pb2.PipelineDefinitionFile(path="p.yaml", content=PIPELINE)
        pipelines = pipelines_pb2_grpc.PipelinesStub(channel)
        made = await pipelines.Create(iter([pipelines_pb2.PipelinesCreateRequest(definition=file)]))
        assert made.header.code == 0, made.header
        request = jobs_pb2.JobsCreateRequest(pipeline_id=made.pipeline_id, name="status-load")
        job = await jobs_pb2_grpc.JobsStub(channel).Create(request)
        assert job.header.code == 0, job.header
        subjects = Subjects(job.job_id, job.payload_id, made.pipeline_id)
        status = await jobs_pb2_grpc.JobsStub(channel).Status(
            jobs_pb2.JobsStatusRequest(job_id=subjects.job)
        )
        payload = payloads_pb2_grpc.PayloadsStub(channel).Details(
            payloads_pb2.PayloadsDetailsRequest(payload_id=subjects.payload)
        )
        pipeline = pipelines.Details(
            pipelines_pb2.PipelinesDetailsRequest(pipeline_id=subjects.pipeline)
        )
        answers = {
            read_floor.method_key(*read_floor.STATUS): [status.SerializeToString()],
            read_floor.method_key(*read_floor.PAYLOAD_DETAILS): [
                item.SerializeToString() async for item in payload
            ],
            read_floor.method_key(*read_floor.PIPELINE_DETAILS): [
                item.SerializeToString() async for item in pipeline
            ],
        }
        return subjects, answers


@contextmanager
def floor(answers: dict[str, list[bytes]], folder: Path) -> Iterator[str]:
    """`bench.read_floor` repeating `answers` in a child process; yields its gRPC target."""
    answers_file = folder / "answers.json"
    answers_file.write_text(read_floor.encode_answers(answers))
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.read_floor", str(port), str(answers_file)],
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    )
    target = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        yield target
    finally:
        child.terminate()
        child.wait(30)


def report(platform_loads: dict[str, Load], floor_loads: dict[str, Load]) -> dict[str, Any]:
    """The figures of every read path: rates, the ratio and p99s, and whether the targets hold."""
    figures: dict[str, Any] = {"clients": CLIENTS, "seconds_per_load": SECONDS}
    for name, ours in platform_loads.items():
        bare = floor_loads[name]
        ratio = ours.requests_per_s / bare.requests_per_s
        figures |= {
            f"{name}_platform_requests_per_s": round(ours.requests_per_s, 1),
            f"{name}_floor_requests_per_s": round(bare.requests_per_s, 1),
            f"{name}_ratio": round(ratio, 3),
            f"{name}_p99_ms": round(ours.p99_ms, 1),
            f"{name}_floor_p99_ms": round(bare.p99_ms, 1),
            f"{name}_within_target": ratio >= TARGET_RATIO and ours.p99_ms < TARGET_P99_MS,
        }
    return figures


def run() -> dict[str, Any]:
    configure_logging("json", "error")
    with tempfile.TemporaryDirectory(prefix="aorta-bench-status-") as folder:
        root = Path(folder)
        with platform(root / "data") as (target, _):
            subjects, answers = asyncio.run(prepare(target))
            with floor(answers, root) as floor_target:
                platform_loads, floor_loads = asyncio.run(load_both(target, floor_target, subjects))
    return report(platform_loads, floor_loads)


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
