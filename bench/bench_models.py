"""Triton acquire latency: a cold start against a warm pooled server, for a job with one model.

One run, one models service (real tritonserver processes from the nvidia-pytriton wheel, a real
nats-server, SQLite and a local blob folder in a temporary data dir), the example model
`segmentation` (examples/models) uploaded once. Each acquire is a MODELS_ACQUIRE_TRITON request
over the bus, as the scheduler sends it, timed until the answer arrives:

- cold (the baseline): no server in the pool, so the acquire starts a tritonserver and loads the
  model; after each, the job releases and every server is stopped;
- warm: the previous job released a server holding the model, so the acquire only hands it over
  (no start, no load).

Reported: the median, minimum and maximum of each (seconds), and warm / cold (target <= 0.10).
`AORTA_BENCH_COLD_ROUNDS` (default 3) and `AORTA_BENCH_WARM_ROUNDS` (default 10) set the rounds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aorta import contracts, ids
from aorta.bus.nats import NatsBus
from aorta.bus.verbs import call
from aorta.cli.model_archive import zip_folder
from aorta.runtime.service import ServiceContext, service_context
from aorta.settings import Settings
from aorta.testing.nats import async_nats_server
from aorta_services.models import app as models_app

EXAMPLE_MODEL = Path(__file__).resolve().parents[1] / "examples" / "models" / "segmentation"

TARGET_RATIO = 0.10
TIMEOUT = 120.0


def run() -> dict[str, object]:
    cold_rounds = int(os.environ.get("AORTA_BENCH_COLD_ROUNDS", "3"))
    warm_rounds = int(os.environ.get("AORTA_BENCH_WARM_ROUNDS", "10"))
    with tempfile.TemporaryDirectory(prefix="aorta-bench-models-") as folder:
        return asyncio.run(_measure(Path(folder), cold_rounds, warm_rounds))


async def _measure(folder: Path, cold_rounds: int, warm_rounds: int) -> dict[str, object]:
    async with async_nats_server(folder / "nats") as nats:
        settings = Settings.from_env(
            {"AORTA_DATA_DIR": str(folder), "AORTA_NATS_URL": nats.url, "AORTA_RPC_TIMEOUT": "30"}
        )
        bus = await NatsBus.connect(nats.url, name="aorta-bench", default_timeout=TIMEOUT)
        async with service_context(settings, bus) as context:
            environ = {**os.environ, "AORTA_TRITON_POOL_SIZE": "1"}
            models = await models_app.start(context, environ=environ)
            try:
                await _upload(context, bus)
                cold, warm = [], []
                for index in range(cold_rounds):
                    cold.append(await _acquire(bus, f"{index:032x}"))
                    await _release(bus, f"{index:032x}")
                    await models.pool.stop_all()
                await _acquire(bus, f"{cold_rounds:032x}")
                await _release(bus, f"{cold_rounds:032x}")
                for index in range(cold_rounds + 1, cold_rounds + 1 + warm_rounds):
                    warm.append(await _acquire(bus, f"{index:032x}"))
                    await _release(bus, f"{index:032x}")
            finally:
                await models.stop(5.0)
                await bus.close()
    ratio = statistics.median(warm) / statistics.median(cold)
    return {
        "cold_acquire_s": _summary(cold),
        "warm_acquire_s": _summary(warm),
        "warm_over_cold": round(ratio, 4),
        "target_warm_over_cold": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }


async def _upload(context: ServiceContext, bus: NatsBus) -> None:
    data = zip_folder(EXAMPLE_MODEL)

    async def chunks() -> Any:
        yield data

    key = "staging/models/bench.zip"
    info = await context.blobs.put(key, chunks())
    upload = contracts.UploadModel(staging_key=key, size=info.size, sha256=info.sha256 or "")
    await call(bus, contracts.MODELS_UPLOAD, upload, timeout=TIMEOUT)


async def _acquire(bus: NatsBus, job: str) -> float:
    request = contracts.AcquireTriton(ids.job_id(job), ("segmentation",))
    started = time.perf_counter()
    await call(bus, contracts.MODELS_ACQUIRE_TRITON, request, timeout=TIMEOUT)
    return time.perf_counter() - started


async def _release(bus: NatsBus, job: str) -> None:
    request = contracts.ReleaseTriton(ids.job_id(job))
    await call(bus, contracts.MODELS_RELEASE_TRITON, request)


def _summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(seconds), 4),
        "min": round(min(seconds), 4),
        "max": round(max(seconds), 4),
        "rounds": len(seconds),
    }
