"""The payloads service's CPU per job for its lock and release alone, in this process.

`python -m bench.payload_locks` starts the payloads service on the in-process bus (real SQLite
and a local blob folder), makes `JOBS` job payloads as the scheduler's Create does, then locks
and releases them `CONCURRENCY` at a time as the scheduler's Start and release do, and prints
this process's CPU per job for the lock and release (and their wall time). `ROUNDS` rounds, the
first a warm-up that is not counted. It is not a `make bench` module: it compares versions of
the payload lock (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import tempfile
import time
from typing import Any

from aorta import ids, subjects
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.logger import configure_logging
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta_services.payloads import app

JOBS = int(os.environ.get("JOBS", "500"))
ROUNDS = int(os.environ.get("ROUNDS", "4"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "8"))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def call(bus: MemoryBus, subject: str, document: dict[str, Any]) -> Any:
    return json.loads(await bus.request(subject, json.dumps(document).encode()))


async def one_round(bus: MemoryBus) -> tuple[float, float]:
    jobs = [ids.new_id() for _ in range(JOBS)]
    payloads = await asyncio.gather(
        *(call(bus, subjects.PAYLOADS_CREATE_FOR_JOB, {"job_id": job}) for job in jobs)
    )
    gate = asyncio.Semaphore(CONCURRENCY)

    async def lock_and_release(job: str, answer: dict[str, Any]) -> None:
        document = {"payload_id": answer["payload_id"], "job_id": job}
        async with gate:
            await call(bus, subjects.PAYLOADS_LOCK, document)
            await call(bus, subjects.PAYLOADS_RELEASE, document)

    own, started = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(lock_and_release(j, p) for j, p in zip(jobs, payloads, strict=True)))
    return (cpu_seconds() - own) / JOBS * 1000, time.perf_counter() - started


async def rounds() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aorta-bench-locks-") as folder:
        network = MemoryNetwork()
        settings = Settings.from_env({"AORTA_DATA_DIR": folder})
        bus = MemoryBus(network, default_timeout=30.0)
        client = MemoryBus(network, default_timeout=30.0)
        async with service_context(settings, bus) as context:
            running = await app.start(context)
            try:
                measured = [await one_round(client) for _ in range(ROUNDS)][1:]
            finally:
                await running.stop(1.0)
                await client.close()
                await bus.close()
    cpu = [ms for ms, _ in measured]
    return {
        "jobs": JOBS,
        "cpu_ms_per_lock_and_release": [round(ms, 2) for ms in cpu],
        "cpu_ms_median": round(statistics.median(cpu), 2),
        "wall_s": [round(s, 2) for _, s in measured],
        "load_average": os.getloadavg(),
    }


if __name__ == "__main__":
    configure_logging("json", "error")
    for key, value in asyncio.run(rounds()).items():
        print(f"{key}: {value}")
