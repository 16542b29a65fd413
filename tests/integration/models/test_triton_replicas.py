"""Two models service replicas on one store and one nats-server, with real tritonserver
processes (the nvidia-pytriton wheel's): acquires and releases land on either replica through
the `models` queue group, as the scheduler's do.

Jobs acquiring at once each get a server of their own, whichever replica answers, and each
server answers inference with the job's model; releases asked of either replica return every
server to its owner's idle pool. A replica that stops takes its servers and their records with
it, and the other one serves the next job.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from aorta import subjects
from aorta.api import models_pb2_grpc
from aorta.bus.nats import NatsBus
from aorta.cli.model_archive import zip_folder
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.nats import async_nats_server
from aorta_services.models import app as models_app
from aorta_services.models.server_mirror import COLLECTION
from tests.integration.models.models_platform import RPC_TIMEOUT, Platform, start_platform
from tests.integration.models.test_triton_pool import (
    EXAMPLE,
    _upload,
    infer,
    phantom,
    reference_labels,
)

JOBS = [f"{n:032x}" for n in range(0x20, 0x24)]
ENVIRON = {"AORTA_MODELS_REPLICA_TTL": "0.9", "AORTA_TRITON_POOL_SIZE": "4"}


async def until(check: Callable[[], Awaitable[bool]], within: float = 60.0) -> None:
    """Returns once `check()` is true; fails after `within` seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 (the replicas write the store on their own)
            await asyncio.sleep(0.05)


async def second_replica(
    stack: AsyncExitStack, nats_url: str, data_dir: Path
) -> models_app.RunningModels:
    """Another models service on the same data dir (so the same store and blobs)."""
    settings = Settings.from_env({"AORTA_DATA_DIR": str(data_dir), "AORTA_NATS_URL": nats_url})
    bus = await NatsBus.connect(nats_url, name="aorta-test-2", default_timeout=RPC_TIMEOUT)
    stack.push_async_callback(bus.close)
    context = await stack.enter_async_context(service_context(settings, bus))
    models = await models_app.start(context, environ={**os.environ, **ENVIRON})
    stack.push_async_callback(models.stop, 1.0)
    return models


async def acquire(platform: Platform, job: str) -> dict[str, str]:
    body = json.dumps({"job_id": job, "models": ["segmentation"]}).encode()
    answer = await platform.bus.request(subjects.MODELS_ACQUIRE_TRITON, body, timeout=120)
    document: dict[str, str] = json.loads(answer)
    return document


async def release(platform: Platform, job: str) -> None:
    body = json.dumps({"job_id": job}).encode()
    await platform.bus.request(subjects.MODELS_RELEASE_TRITON, body)


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[Platform, Any]]:
    async with async_nats_server(tmp_path / "nats") as nats, AsyncExitStack() as stack:
        first = await start_platform(stack, nats.url, tmp_path, ENVIRON)
        second = await second_replica(stack, nats.url, tmp_path)
        async with grpc.aio.insecure_channel(first.target) as channel:
            answer = await models_pb2_grpc.ModelsStub(channel).UploadModel(
                _upload(zip_folder(EXAMPLE))
            )
            assert answer.header.code == 0, list(answer.header.messages)
        yield first, second


async def test_two_replicas_share_one_pool_of_real_triton_servers(
    replicas: tuple[Platform, Any],
) -> None:
    platform, second = replicas
    first = platform.models
    records = platform.store.collection(COLLECTION)
    got = await asyncio.gather(*(acquire(platform, job) for job in JOBS))
    assert len({answer["grpc_uri"] for answer in got}) == len(JOBS)
    volume = phantom()
    labels = reference_labels(volume)
    for answer in got:
        assert np.array_equal(await infer(answer["grpc_uri"], volume), labels)
    owners = {first.cluster.replica, second.cluster.replica}
    held = await records.find({"state": "held"})
    assert sorted(r["job_id"] for r in held) == sorted(JOBS)
    assert {r["owner"] for r in held} <= owners

    for job in JOBS:
        await release(platform, job)

    async def all_idle() -> bool:
        found = await records.find()
        return len(found) == len(JOBS) and {r["state"] for r in found} == {"idle"}

    await until(all_idle)
    assert first.pool.held_jobs() == second.pool.held_jobs() == set()

    # The second replica stops: its servers and their records go, the first serves on.
    await second.stop(1.0)
    remaining = await records.find()
    assert {r["owner"] for r in remaining} <= {first.cluster.replica}
    later = await acquire(platform, "f" * 32)
    [record] = await records.find({"job_id": "f" * 32})
    assert record["owner"] == first.cluster.replica
    assert np.array_equal(await infer(later["grpc_uri"], volume), labels)
