"""What running operators in containers through the platform costs, against running the same
containers plainly, beside the same figure for host processes.

One run, side by side, on this machine, on a private Podman API service (aorta.testing.podman)
holding one busybox image whose command is `true`:

- the baseline: a plain script against the engine (aiodocker, as the executor uses) creating,
  starting, awaiting and removing `CHAIN` containers back to back, each made as the executor
  makes an operator's (no capability, no network, a tmpfs /tmp, an init, limits, an input
  folder bound read-only and an output folder read-write): the median of `REPEATS` chains;
- the platform: the gateway, pipelines, payloads and scheduler services in this process with
  `AORTA_EXECUTOR=container` on that engine, a chain of `CHAIN` operators of that image, each
  reading the previous one's output, from `Jobs.Start` until `job.stopped` (the median of
  `REPEATS` jobs after one warm-up job);
- the host-process figure of bench_jobs (`python -c pass` operators on the local executor,
  alternating with its baseline) measured in the same run.

`container_overhead_per_operator_ms` is (platform - baseline) / CHAIN; the ratio is platform
over baseline.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiodocker

from aorta.logger import configure_logging
from aorta.testing.images import build_busybox_image
from aorta.testing.podman import PodmanEngine
from bench.bench_jobs import Platform, platform_chain, with_platform

CHAIN = 10
REPEATS = 3
IMAGE = "aorta/bench-noop:latest"
MEMORY_MB = 64


def chain_definition(length: int) -> str:
    lines = ["api-version: 0.4.0", f"name: container-chain-{length}", "operators:"]
    for index in range(length):
        source = f"{{from: op{index - 1}, path: /in}}" if index else "{path: /in}"
        lines += [
            f"- name: op{index}",
            "  container: {image: aorta/bench-noop, tag: latest, command: [true]}",
            f"  input: [{source}]",
            "  output: [{path: /out}]",
            f"  requests: {{cpu: 1, memory: {MEMORY_MB}}}",
        ]
    return "\n".join(lines) + "\n"


def plain_container(folder: Path) -> dict[str, Any]:
    """The create body of one baseline container: an operator's, made by hand."""
    (folder / "in").mkdir(exist_ok=True)
    (folder / "out").mkdir(exist_ok=True)
    return {
        "Image": IMAGE,
        "Cmd": ["true"],
        "HostConfig": {
            "Binds": [f"{folder / 'in'}:/in:ro", f"{folder / 'out'}:/out:rw"],
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "Tmpfs": {"/tmp": "rw,nosuid,nodev"},
            "NetworkMode": "none",
            "NanoCpus": 1_000_000_000,
            "Memory": MEMORY_MB << 20,
            "MemorySwap": MEMORY_MB << 20,
            "Init": True,
        },
    }


async def baseline_containers(url: str, folder: Path) -> float:
    """The median of `REPEATS` chains of `CHAIN` containers run back to back."""
    docker = aiodocker.Docker(url=url)
    try:
        body = plain_container(folder)
        times = []
        for _ in range(REPEATS + 1):
            started = time.perf_counter()
            for _ in range(CHAIN):
                container = await docker.containers.create(body)
                await container.start()
                result = await container.wait()
                await container.delete(force=True)
                if result.get("StatusCode") != 0:
                    raise RuntimeError(f"a baseline container failed: {result}")
            times.append(time.perf_counter() - started)
        return statistics.median(times[1:])
    finally:
        await docker.close()


async def container_chain(platform: Platform) -> dict[str, Any]:
    pipeline_id = await platform.pipeline(chain_definition(CHAIN))
    times = []
    for index in range(REPEATS + 1):
        job_id = await platform.job(pipeline_id, f"container-chain-{index}")
        started = time.perf_counter()
        await platform.start(job_id)
        times.append(await platform.stopped[job_id] - started)
    return {"seconds": statistics.median(times[1:])}


async def measure(engine: PodmanEngine, folder: Path) -> dict[str, Any]:
    host_chain = await with_platform(platform_chain)
    host_baseline = host_chain["baseline_seconds"]
    baseline = await baseline_containers(engine.url, folder)
    environ = {
        "AORTA_EXECUTOR": "container",
        "AORTA_CONTAINER_HOST": engine.url,
        "AORTA_CONTAINER_PULL_POLICY": "Never",
        "AORTA_SCHEDULER_WORK_DIR": str(folder / "runs"),
    }
    chain = await with_platform(container_chain, environ)
    overhead_ms = (chain["seconds"] - baseline) / CHAIN * 1000
    host_overhead_ms = (host_chain["seconds"] - host_baseline) / CHAIN * 1000
    return {
        "cores": os.cpu_count(),
        "chain_operators": CHAIN,
        "container_baseline_chain_s": round(baseline, 3),
        "container_platform_chain_s": round(chain["seconds"], 3),
        "container_overhead_per_operator_ms": round(overhead_ms, 1),
        "container_ratio_platform_over_baseline": round(chain["seconds"] / baseline, 3),
        "host_process_overhead_per_operator_ms": round(host_overhead_ms, 1),
        "host_process_ratio_platform_over_baseline": round(
            host_chain["seconds"] / host_baseline, 3
        ),
    }


def run() -> dict[str, Any]:
    configure_logging("json", "error")
    with (
        tempfile.TemporaryDirectory(prefix="aorta-bench-containers-") as temporary,
        PodmanEngine() as engine,
    ):
        build_busybox_image(engine.cli, IMAGE)
        return asyncio.run(measure(engine, Path(temporary)))


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
