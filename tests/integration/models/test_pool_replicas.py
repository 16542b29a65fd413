"""Two models replicas sharing one Triton pool through one store (`pool_cluster`).

Twenty jobs acquire at once, each asked of both replicas (a caller that asked again elsewhere):
no job gets two servers started, no server is handed to two jobs, and a release asked of the
replica that does not own the server reaches its owner. A replica SIGKILLed mid-acquire leaves
claims and records that the survivor takes over and reaps: every job still gets a server.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from aorta.store import StateStore
from aorta.store.sqlite import SqliteStateStore
from aorta_services.models.acquire_claims import CLAIMS
from aorta_services.models.pool import Acquired, TritonPool
from aorta_services.models.pool_cluster import PoolCluster
from aorta_services.models.server_mirror import COLLECTION, ServerMirror
from aorta_services.models.settings import PoolSettings
from tests.unit.models.model_fakes import FakeBackend, FakeSource

REPO = Path(__file__).resolve().parents[3]
JOBS = [f"{n:032x}" for n in range(20)]
WANTED = {"seg": "r1"}


async def until(check: Callable[[], Awaitable[bool]], within: float = 60.0) -> None:
    """Returns once `check()` is true; fails after `within` seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 (another process writes the store)
            await asyncio.sleep(0.02)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    opened = await SqliteStateStore.open(tmp_path / "state.db", durable=False)
    yield opened
    await opened.close()


async def replica(
    stack: AsyncExitStack, store: StateStore, name: str, backend: FakeBackend, ttl: float = 30.0
) -> PoolCluster:
    mirror = ServerMirror(store, owner=name)
    pool = TritonPool(
        backend, FakeSource(), PoolSettings(max_servers=64, pool_size=20), mirror=mirror
    )
    cluster = PoolCluster(pool, store, mirror, ttl=ttl)
    await cluster.start()
    stack.push_async_callback(mirror.close)
    stack.push_async_callback(pool.close)
    stack.push_async_callback(cluster.close)
    return cluster


def assert_one_server_per_job(answers: dict[str, list[Acquired]]) -> None:
    holders = collections.defaultdict(set)
    for job, got in answers.items():
        assert len({a.server_id for a in got}) == 1, f"job {job} got two servers: {got}"
        holders[got[0].server_id].add(job)
    assert all(len(jobs) == 1 for jobs in holders.values()), holders


async def test_two_replicas_serve_twenty_jobs_without_a_double_start_or_a_shared_server(
    store: StateStore,
) -> None:
    first_backend = FakeBackend(start_delay=0.05, load_delay=0.02)
    second_backend = FakeBackend(start_delay=0.05, load_delay=0.02)
    async with AsyncExitStack() as stack:
        first = await replica(stack, store, "first", first_backend)
        second = await replica(stack, store, "second", second_backend)
        replicas = (first, second)
        calls = [
            (job, replicas[(n + k) % 2].acquire(job, WANTED))
            for n, job in enumerate(JOBS)
            for k in (0, 1)
        ]
        got = await asyncio.gather(*(call for _, call in calls))
        answers: dict[str, list[Acquired]] = collections.defaultdict(list)
        for (job, _), acquired in zip(calls, got, strict=True):
            answers[job].append(acquired)
        assert_one_server_per_job(answers)
        assert len(first_backend.servers) + len(second_backend.servers) == len(JOBS)
        # Each job's release is asked of the replica that does not own its server.
        for job in JOBS:
            owner = first if job in first.pool.held_jobs() else second
            await (second if owner is first else first).release(job)
        for cluster in replicas:
            await cluster.sync()
        assert first.pool.held_jobs() == second.pool.held_jobs() == set()
        records = await store.collection(COLLECTION).find()
        assert {r["state"] for r in records} == {"idle"}
        # Warm servers go to new jobs, still one job each.
        later = [f"{n:032x}" for n in range(100, 120)]
        again = await asyncio.gather(
            *(replicas[n % 2].acquire(job, WANTED) for n, job in enumerate(later))
        )
        assert_one_server_per_job({job: [a] for job, a in zip(later, again, strict=True)})
        assert len(first_backend.servers) + len(second_backend.servers) == len(JOBS)


@pytest.mark.parametrize(
    ("name", "ttl"),
    [
        # Known dead once its heartbeat expires.
        ("child", 1.0),
        # Named after this host and its pid: known dead at once, long before its heartbeat
        # would expire (the test would time out waiting for that).
        ("auto", 300.0),
    ],
)
async def test_a_replica_killed_mid_acquire_strands_no_job_and_no_server(
    store: StateStore, tmp_path: Path, name: str, ttl: float
) -> None:
    killed_jobs = JOBS[:10]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.models.pool_replica_child",
        str(tmp_path / "state.db"),
        str(ttl),
        name,
        *killed_jobs,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    servers, claims = store.collection(COLLECTION), store.collection(CLAIMS)
    try:

        async def child_mid_acquire() -> bool:
            assert child.returncode is None, "the child replica exited early"
            owned, held = await servers.count(), await claims.count()
            return owned == held == len(killed_jobs)

        await until(child_mid_acquire)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    backend = FakeBackend(load_delay=0.01)
    async with AsyncExitStack() as stack:
        survivor = await replica(stack, store, "survivor", backend, ttl=1.0)
        got = await asyncio.gather(*(survivor.acquire(job, WANTED) for job in JOBS))
        assert_one_server_per_job({job: [a] for job, a in zip(JOBS, got, strict=True)})
        assert len(backend.servers) == len(JOBS)
        await survivor.sync()
        records = await servers.find()
        assert {r["owner"] for r in records} == {"survivor"}
        assert sorted(r["job_id"] for r in records) == sorted(JOBS)
        assert await claims.count() == 0


class Lasting:
    """A backend's `remove_server`, recording which servers it removed."""

    def __init__(self) -> None:
        self.removed: list[str] = []

    async def remove_server(self, server_id: str) -> None:
        self.removed.append(server_id)


async def test_servers_that_outlive_a_dead_replica_are_removed_by_a_survivor(
    store: StateStore,
) -> None:
    servers = store.collection(COLLECTION)
    await servers.insert({"id": "left", "owner": "gone", "state": "held", "job_id": JOBS[0]})
    lasting = Lasting()
    mirror = ServerMirror(store, owner="survivor")
    pool = TritonPool(FakeBackend(), FakeSource(), PoolSettings(), mirror=mirror)
    cluster = PoolCluster(pool, store, mirror, ttl=30.0, lasting=lasting)
    await cluster.start()
    assert lasting.removed == ["left"]
    assert await servers.count() == 0
    await cluster.close()
    await pool.close()
    await mirror.close()


async def test_a_platform_stop_stops_every_replicas_servers(store: StateStore) -> None:
    first_backend, second_backend = FakeBackend(), FakeBackend()
    async with AsyncExitStack() as stack:
        first = await replica(stack, store, "first", first_backend)
        second = await replica(stack, store, "second", second_backend)
        await first.acquire(JOBS[0], WANTED)
        await second.acquire(JOBS[1], WANTED)
        assert await first.platform_stop() == 1
        assert [s.running for s in first_backend.servers] == [False]
        await second.sync()
        assert [s.running for s in second_backend.servers] == [False]
        # A replica that starts after the stop keeps what it starts, and the pool serves on.
        third_backend = FakeBackend()
        third = await replica(stack, store, "third", third_backend)
        await third.acquire(JOBS[2], WANTED)
        await third.sync()
        assert [s.running for s in third_backend.servers] == [True]
        await second.acquire(JOBS[3], WANTED)
        assert [s.running for s in second_backend.servers] == [False, True]


async def test_a_replica_taken_for_dead_records_its_servers_again_and_releases_them(
    store: StateStore,
) -> None:
    """A replica stalled past its heartbeat: another reaped its records and started a second
    server for the job. Both servers are released with the job, wherever it is asked."""
    first_backend, second_backend = FakeBackend(), FakeBackend()
    servers = store.collection(COLLECTION)
    async with AsyncExitStack() as stack:
        first = await replica(stack, store, "first", first_backend)
        second = await replica(stack, store, "second", second_backend)
        await first.acquire(JOBS[0], WANTED)
        # What `second`'s sync did while `first` stalled: its records reaped as a dead one's.
        await servers.delete_many({"owner": "first"})
        await second.acquire(JOBS[0], WANTED)
        await first.sync()
        assert {r["owner"] for r in await servers.find({"job_id": JOBS[0]})} == {
            "first",
            "second",
        }
        await second.release(JOBS[0])
        await first.sync()
        assert first.pool.held_jobs() == second.pool.held_jobs() == set()
