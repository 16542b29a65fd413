"""Retention on a scheduler replica beside the real payloads service (one SQLite store, one
local blob folder): a sweep at a moment a fake clock chooses removes exactly what the policy
says (whole jobs with their logs and payload bytes, payloads alone, the oldest payloads over
the byte limit) and nothing else; the leader sweeps by itself once a limit is set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from aorta import subjects
from aorta.api import jobs_pb2, payloads_pb2
from aorta.blobs import BlobStore, open_blob_store
from aorta.bus import CloudEvent
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.observability import metrics
from aorta.payload_layout import job_logs_prefix, operator_log_key, payload_prefix
from aorta.runtime.service import RunningService, ServiceContext
from aorta.settings import Settings
from aorta.store import StateStore
from aorta.store.factory import open_state_store
from aorta_services.payloads import app as payloads_app
from aorta_services.scheduler.deletion import JobDeletion
from aorta_services.scheduler.domain.retention import (
    DAY,
    Removal,
    RetentionPolicy,
    RetentionStep,
)
from aorta_services.scheduler.events import JobEvents
from aorta_services.scheduler.peers import Peers
from aorta_services.scheduler.repository import JobRepository
from aorta_services.scheduler.retention import RetentionSweeper
from aorta_services.scheduler.retention_settings import RetentionSettings
from tests.unit.scheduler.job_calls import appender, ids, list_jobs, wait_for
from tests.unit.scheduler.scheduler_fakes import Behaviour, FakePeers
from tests.unit.scheduler.scheduler_harness import RPC_TIMEOUT, Harness, Replica, single

GOOD = "0123456789abcdef0123456789abcd01"
BAD = "0123456789abcdef0123456789abcd02"
SLOW = "0123456789abcdef0123456789abcd03"
INPUT = b"x" * 1000
NOW = 2_000_000_000.0


@pytest.fixture(autouse=True)
def recording() -> None:
    """Metrics fed, whatever a test before this one turned off."""
    metrics.set_recording(True)


@dataclass
class Platform:
    harness: Harness
    store: StateStore
    blobs: BlobStore


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    network = MemoryNetwork()
    client = MemoryBus(network, default_timeout=RPC_TIMEOUT)
    peers = FakePeers()
    await peers.serve(client, payloads=False)
    peers.add_pipeline(GOOD, "good", {"good.yaml": single("step")})
    peers.add_pipeline(BAD, "bad", {"bad.yaml": single("broken")})
    peers.add_pipeline(SLOW, "slow", {"slow.yaml": single("slow")})
    settings = Settings.from_env(
        {"AORTA_DATA_DIR": str(tmp_path), "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT)}
    )
    bus = MemoryBus(network, default_timeout=RPC_TIMEOUT)
    store = await open_state_store(settings)
    blobs = await open_blob_store(settings)
    payloads: RunningService = await payloads_app.start(
        ServiceContext(settings=settings, bus=bus, store=store, blobs=blobs)
    )
    harness = Harness(network, tmp_path, client, peers)
    yield Platform(harness, store, blobs)
    await harness.close()
    await payloads.stop(0.5)
    await bus.close()
    await store.close()
    await blobs.close()
    await peers.stop()
    await client.close()


async def chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def keys(blobs: BlobStore, prefix: str) -> list[str]:
    return [info.key async for info in blobs.list(prefix)]


async def released(store: StateStore, job_id: str) -> None:
    """Returns once the stopped job gave back its payload lock (the leader does it after the
    payloads service answered)."""
    jobs = store.collection("jobs")
    async with asyncio.timeout(60):
        while not (await jobs.get(job_id))["released"]:  # noqa: ASYNC110 (no event tells it)
            await asyncio.sleep(0.02)


async def stopped_job(platform: Platform, pipeline_id: str, name: str, days_ago: float) -> str:
    """A job that ran and stopped `days_ago` days before `NOW`, with an input file and a log,
    once it gave back what it held."""
    harness = platform.harness
    job_id = await harness.create(name, pipeline_id=pipeline_id)
    payload_id = (await harness.status(job_id)).payload_id.value
    await platform.blobs.put(f"{payload_prefix(payload_id)}input/scan", chunk(INPUT))
    await harness.start(job_id)
    await harness.stopped(job_id)
    await platform.blobs.put(operator_log_key(job_id, "step"), chunk(b"a line\n"))
    await released(platform.store, job_id)
    await platform.store.collection("jobs").update(job_id, {"stopped": NOW - days_ago * DAY})
    return job_id


def sweeper(
    replica: Replica, policy: RetentionPolicy, *, bus: MemoryBus | None = None
) -> RetentionSweeper:
    """A sweeper over the replica's store, bus (or `bus`) and blobs whose clock says `NOW`."""
    context = replica.context
    repository = JobRepository(context.store)
    peers = Peers(bus or context.bus, RPC_TIMEOUT)
    events = JobEvents(context.bus, repository)
    deletion = JobDeletion(repository, peers, events, context.blobs)
    settings = RetentionSettings(policy=policy)
    return RetentionSweeper(
        repository, deletion, peers, events, context.blobs, settings, clock=lambda: NOW
    )


async def reusable_payload(platform: Platform) -> str:
    request = payloads_pb2.PayloadsCreateRequest()
    reply = payloads_pb2.PayloadsCreateResponse.FromString(
        await platform.harness.client.request(subjects.PAYLOADS_CREATE, request.SerializeToString())
    )
    payload_id = reply.payload_id.value
    await platform.blobs.put(f"{payload_prefix(payload_id)}input/atlas", chunk(INPUT))
    return payload_id


COUNTED = (
    ("job", "jobs_days"),
    ("job", "failed_jobs_days"),
    ("payload", "payloads_days"),
    ("payload", "max_gib"),
)


def counts() -> dict[str, float]:
    """The retention counters now (`what/reason` and `failed/what`), to compare before and
    after a sweep."""
    figures = {
        f"{what}/{reason}": REGISTRY.get_sample_value(
            "aorta_retention_removals_total", {"what": what, "reason": reason}
        )
        or 0.0
        for what, reason in COUNTED
    }
    for what in ("job", "payload"):
        figures[f"failed/{what}"] = (
            REGISTRY.get_sample_value("aorta_retention_failures_total", {"what": what}) or 0.0
        )
    return figures


def moved(before: dict[str, float]) -> dict[str, float]:
    """The counters that moved since `before`, by how much."""
    return {name: value - before[name] for name, value in counts().items() if value != before[name]}


def removals(steps: list[RetentionStep], names: Mapping[str, str]) -> list[tuple[str, Removal]]:
    return sorted((names[step.job_id], step.removal) for step in steps)


async def test_a_sweep_removes_exactly_what_the_policy_says(platform: Platform) -> None:
    harness = platform.harness
    replica = await harness.replica(behaviours={"broken": Behaviour(exit_code=1)})
    seen: list[CloudEvent] = []
    subscription = await harness.client.subscribe_events(
        "aorta.events.job.>", appender(seen), deliver="all"
    )
    reusable = await reusable_payload(platform)
    ages = {"old": (GOOD, 40), "aging": (GOOD, 10), "new": (GOOD, 1)}
    ages |= {"failed": (BAD, 40), "failed-long-ago": (BAD, 100)}
    names: dict[str, str] = {}
    payloads: dict[str, str] = {}
    for name, (pipeline_id, days_ago) in ages.items():
        job_id = await stopped_job(platform, pipeline_id, name, days_ago)
        names[job_id] = name
        payloads[name] = (await harness.status(job_id)).payload_id.value
    jobs = {name: job_id for job_id, name in names.items()}
    policy = RetentionPolicy(jobs_days=30, failed_jobs_days=90, payloads_days=7)
    before = counts()

    steps = await sweeper(replica, policy).sweep()

    assert removals(steps, names) == [
        ("aging", Removal.PAYLOAD),
        ("failed-long-ago", Removal.JOB),
        ("old", Removal.JOB),
    ]
    assert moved(before) == {
        "job/jobs_days": 1,
        "job/failed_jobs_days": 1,
        "payload/payloads_days": 1,
    }
    assert sorted(names[job_id] for job_id in ids(await list_jobs(harness))) == [
        "aging",
        "failed",
        "new",
    ]
    blobs = platform.blobs
    for name in ("old", "failed-long-ago", "aging"):
        assert await keys(blobs, payload_prefix(payloads[name])) == []
    for name in ("new", "failed"):
        assert await keys(blobs, payload_prefix(payloads[name])) != []
    for name in ("old", "failed-long-ago"):
        assert await keys(blobs, job_logs_prefix(jobs[name])) == []
    for name in ("aging", "new", "failed"):
        assert await keys(blobs, job_logs_prefix(jobs[name])) != []
    assert await keys(blobs, payload_prefix(reusable)) != []
    aging = await platform.store.collection("jobs").get(jobs["aging"])
    assert aging["payload_removed"] == NOW
    told = (await harness.status(jobs["aging"])).header
    assert (told.code, list(told.messages)) == (
        0,
        [f"payload {payloads['aging']} was removed by retention at 2033-05-18 03:33:20Z"],
    )

    await wait_for(lambda: len([e for e in seen if e.event in ("deleted", "payload_removed")]) == 3)
    await subscription.drain()
    retention = [e for e in seen if e.event in ("deleted", "payload_removed")]
    recorded = {(names[e.subject], e.event): e.data["reason"] for e in retention}
    assert recorded == {
        ("old", "deleted"): "retention: the job stopped 40 days ago; kept 30 days",
        ("failed-long-ago", "deleted"): (
            "retention: the failed job stopped 100 days ago; kept 90 days"
        ),
        (
            "aging",
            "payload_removed",
        ): "retention: its job stopped 10 days ago; payloads kept 7 days",
    }
    before = counts()
    assert await sweeper(replica, policy).sweep() == []
    assert moved(before) == {}


async def test_over_the_byte_limit_the_oldest_payloads_go_and_their_jobs_stay(
    platform: Platform,
) -> None:
    replica = await platform.harness.replica()
    ages = {"oldest": 3.0, "older": 2.0, "newest": 1.0}
    jobs = {name: await stopped_job(platform, GOOD, name, days) for name, days in ages.items()}
    payloads = {
        name: (await platform.harness.status(job_id)).payload_id.value
        for name, job_id in jobs.items()
    }

    before = counts()

    steps = await sweeper(replica, RetentionPolicy(max_bytes=2 * len(INPUT))).sweep()

    assert [(step.job_id, step.removal) for step in steps] == [(jobs["oldest"], Removal.PAYLOAD)]
    assert moved(before) == {"payload/max_gib": 1}
    assert await keys(platform.blobs, payload_prefix(payloads["oldest"])) == []
    assert await keys(platform.blobs, payload_prefix(payloads["older"])) != []
    assert sorted(ids(await list_jobs(platform.harness))) == sorted(jobs.values())


async def test_the_leader_sweeps_by_itself_once_a_limit_is_set(platform: Platform) -> None:
    harness = platform.harness
    await harness.replica(
        {"AORTA_RETENTION_JOBS_DAYS": "0", "AORTA_RETENTION_INTERVAL": "1"},
        behaviours={"slow": Behaviour(hang=True)},
    )
    waiting = await harness.create("never-started", pipeline_id=GOOD)
    running = await harness.run("running", pipeline_id=SLOW)
    await harness.until(running, lambda status: status.state == jobs_pb2.JOB_STATE_RUNNING)
    job_id = await harness.create("short-lived", pipeline_id=GOOD)
    payload_id = (await harness.status(job_id)).payload_id.value
    await platform.blobs.put(f"{payload_prefix(payload_id)}input/scan", chunk(INPUT))
    kept = await reusable_payload(platform)
    await harness.start(job_id)
    jobs = platform.store.collection("jobs")
    async with asyncio.timeout(60):
        while await jobs.count({"id": job_id}):  # noqa: ASYNC110 (the sweep's own pace)
            await asyncio.sleep(0.05)
    assert await keys(platform.blobs, payload_prefix(payload_id)) == []
    assert await keys(platform.blobs, payload_prefix(kept)) != []
    # Only stopped jobs are ever removed, however short the limit.
    assert sorted(ids(await list_jobs(harness))) == sorted([waiting, running])


async def test_a_removal_that_fails_is_done_by_the_next_sweep(platform: Platform) -> None:
    replica = await platform.harness.replica()
    job_id = await stopped_job(platform, GOOD, "old", 40)
    payload_id = (await platform.harness.status(job_id)).payload_id.value
    policy = RetentionPolicy(jobs_days=30)
    # A bus on which no payloads service answers: the payload cannot be deleted.
    cut_off = MemoryBus(MemoryNetwork(), default_timeout=RPC_TIMEOUT)
    before = counts()
    try:
        failed = await sweeper(replica, policy, bus=cut_off).sweep()
    finally:
        await cut_off.close()
    assert [step.job_id for step in failed] == [job_id]
    assert moved(before) == {"failed/job": 1}
    assert ids(await list_jobs(platform.harness)) == [job_id]
    assert await keys(platform.blobs, payload_prefix(payload_id)) != []

    before = counts()
    assert [step.job_id for step in await sweeper(replica, policy).sweep()] == [job_id]
    assert moved(before) == {"job/jobs_days": 1}
    assert ids(await list_jobs(platform.harness)) == []
    assert await keys(platform.blobs, payload_prefix(payload_id)) == []
