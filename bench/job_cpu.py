"""The platform's CPU per job alone: `bench_jobs`' many-jobs phase without its baselines.

`python -m bench.job_cpu` creates `JOBS` one-operator jobs on a fresh platform (the same one
`bench_jobs` builds, in this process), starts them all at once and prints the wall time and
this process's CPU per job (the services and the gRPC client, as `platform_cpu_ms_per_job`).
It is not a `make bench` module: it exists to profile and to compare versions quickly.

Environment knobs: `JOBS` (default 200), `ROUNDS` (batches of `JOBS` on one platform, the
first a warm-up that is not counted; default 3), `PROFILE` (a path: py-spy records the counted
rounds with `--gil` into it as collapsed stacks; `PROFILE_RATE`, default 200 Hz;
`PROFILE_THREADS=1` samples every thread (Python frames) instead of the GIL's
holder: the SQLite writer's and the executor's work happens without the GIL).
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aorta.logger import configure_logging
from bench.bench_jobs import Platform, chain_definition, with_platform

JOBS = int(os.environ.get("JOBS", "200"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def cpu_seconds() -> float:
    """User and system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user and system) of this process's threads so far, summed by name (Linux):
    a Python thread's name without its numbers (`asyncio_`, the default executor's), else the
    kernel's (grpc's own threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    python = {thread.native_id: thread.name for thread in threading.enumerate()}
    by_name: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        name = python.get(int(task.name)) or stat[stat.index("(") + 1 : stat.rindex(")")]
        name = re.sub(r"\d+", "", name)
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        by_name[name] = by_name.get(name, 0.0) + seconds
    return by_name


def start_profiler() -> subprocess.Popen[bytes] | None:
    """py-spy attached to this process when `PROFILE` names an output file."""
    output = os.environ.get("PROFILE")
    if not output:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    rate = os.environ.get("PROFILE_RATE", "200")
    who = ["--threads"] if os.environ.get("PROFILE_THREADS") == "1" else ["--gil"]
    command = [str(spy), "record", "--pid", str(os.getpid()), *who, "-r", rate]
    return subprocess.Popen([*command, "-f", "raw", "-o", output, "--nonblocking"])


async def rounds(platform: Platform) -> dict[str, Any]:
    pipeline_id = await platform.pipeline(chain_definition(1))
    # Every round's jobs are created first: as in `bench_jobs`, Create is not counted.
    batches = [
        await asyncio.gather(*(platform.job(pipeline_id, f"job-{index}-{n}") for n in range(JOBS)))
        for index in range(ROUNDS)
    ]
    cpu_ms, system_ms, seconds = [], [], []
    by_thread: dict[str, float] = {}
    profiler = None
    for index, jobs in enumerate(batches):
        if index == 1:
            profiler = start_profiler()
            await asyncio.sleep(1.0)  # py-spy attaches
        own, threads = cpu_seconds(), thread_cpu()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        await asyncio.gather(*(platform.start(job_id) for job_id in jobs))
        ends = await asyncio.gather(*(platform.stopped[job_id] for job_id in jobs))
        if index:
            seconds.append(max(ends) - started)
            cpu_ms.append((cpu_seconds() - own) / JOBS * 1000)
            after = resource.getrusage(resource.RUSAGE_SELF)
            system_ms.append((after.ru_stime - usage.ru_stime) / JOBS * 1000)
            for name, total in thread_cpu().items():
                spent = (total - threads.get(name, 0.0)) / JOBS * 1000
                by_thread[name] = by_thread.get(name, 0.0) + spent / (ROUNDS - 1)
    if profiler is not None:
        profiler.send_signal(2)
        profiler.wait()
    return {
        "jobs": JOBS,
        "rounds_counted": len(cpu_ms),
        "platform_cpu_ms_per_job": [round(ms, 1) for ms in cpu_ms],
        "platform_cpu_ms_per_job_median": round(statistics.median(cpu_ms), 1),
        "system_cpu_ms_per_job": [round(ms, 1) for ms in system_ms],
        "cpu_ms_per_job_by_thread": {
            name: round(ms, 1) for name, ms in sorted(by_thread.items(), key=lambda i: -i[1])
        },
        "jobs_per_s": [round(JOBS / s, 1) for s in seconds],
        "load_average": os.getloadavg(),
    }


def run() -> dict[str, Any]:
    configure_logging("json", "error")
    return asyncio.run(with_platform(rounds))


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
