"""The Triton pool over an in-memory backend: reservation, reuse, failures, release, expiry."""

from __future__ import annotations

import asyncio

import pytest

from aorta.errors import ErrorCode, Invalid, Unavailable
from aorta_services.models.pool import TritonPool
from aorta_services.models.settings import PoolSettings
from tests.unit.models.model_fakes import FakeBackend, FakeSource

JOB_A = "a" * 32
JOB_B = "b" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool_of(
    backend: FakeBackend, clock: Clock | None = None, **settings: float
) -> tuple[TritonPool, FakeSource]:
    source = FakeSource()
    chosen = PoolSettings(**settings)  # type: ignore[arg-type]
    return TritonPool(backend, source, chosen, clock=clock or Clock()), source


async def test_two_jobs_acquiring_at_once_get_two_servers() -> None:
    backend = FakeBackend(load_delay=0.05, start_delay=0.05)
    pool, source = pool_of(backend)
    first, second = await asyncio.gather(
        pool.acquire(JOB_A, {"seg": "r1"}), pool.acquire(JOB_B, {"seg": "r1"})
    )
    assert first.server_id != second.server_id
    assert first.grpc_uri != second.grpc_uri
    assert [server.loaded for server in backend.servers] == [{"seg"}, {"seg"}]
    # The archive was expanded once, for both.
    assert backend.installs == [("seg", "r1")]
    assert source.written == [("seg", "r1")]
    await pool.close()


async def test_operators_of_one_job_share_its_server() -> None:
    backend = FakeBackend(load_delay=0.02)
    pool, _ = pool_of(backend)
    first, second = await asyncio.gather(
        pool.acquire(JOB_A, {"seg": "r1"}), pool.acquire(JOB_A, {"lung": "r1", "seg": "r1"})
    )
    assert first == second
    assert len(backend.servers) == 1
    assert sorted(backend.servers[0].load_calls) == ["lung", "seg"]
    await pool.close()


async def test_a_released_server_is_reused_without_loading_again() -> None:
    backend = FakeBackend()
    pool, _ = pool_of(backend)
    first = await pool.acquire(JOB_A, {"seg": "r1"})
    assert await pool.release(JOB_A) == 1
    second = await pool.acquire(JOB_B, {"seg": "r1"})
    assert second == first
    assert backend.servers[0].load_calls == ["seg"]
    assert pool.load_count(first.server_id) == 1
    await pool.close()


async def test_a_replaced_model_is_reloaded_on_a_warm_server() -> None:
    backend = FakeBackend()
    pool, _ = pool_of(backend)
    await pool.acquire(JOB_A, {"seg": "r1"})
    await pool.release(JOB_A)
    await pool.acquire(JOB_B, {"seg": "r2"})
    assert backend.servers[0].load_calls == ["seg", "seg"]
    assert backend.installs == [("seg", "r1"), ("seg", "r2")]
    await pool.close()


async def test_a_failing_model_fails_the_acquire_with_tritons_text_and_frees_the_server() -> None:
    backend = FakeBackend(fail={"bad": "ValueError: weights missing"})
    pool, _ = pool_of(backend)
    with pytest.raises(Invalid) as caught:
        await pool.acquire(JOB_A, {"bad": "r1", "seg": "r1"})
    assert caught.value.code == ErrorCode.MODEL_ARCHIVE_INVALID
    assert "ValueError: weights missing" in caught.value.messages[0]
    [view] = pool.views()
    assert view.job is None and dict(view.models) == {"seg": "r1"}
    assert pool.jobs_using("bad") == []
    # The server went back to the pool, warm, and serves the next job.
    again = await pool.acquire(JOB_B, {"seg": "r1"})
    assert again.server_id == view.id and backend.servers[0].load_calls.count("seg") == 1
    await pool.close()


async def test_a_server_that_does_not_start_is_dropped() -> None:
    backend = FakeBackend(fail_start=True)
    pool, _ = pool_of(backend)
    with pytest.raises(Unavailable, match="did not start"):
        await pool.acquire(JOB_A, {"seg": "r1"})
    assert pool.views() == []
    await pool.close()


async def test_models_in_use_are_those_of_held_servers() -> None:
    pool, _ = pool_of(FakeBackend())
    await pool.acquire(JOB_A, {"seg": "r1"})
    assert pool.jobs_using("seg") == [JOB_A]
    await pool.release(JOB_A)
    assert pool.jobs_using("seg") == []
    await pool.close()


async def test_release_keeps_only_the_pool_size_warm() -> None:
    backend = FakeBackend()
    clock = Clock()
    pool, _ = pool_of(backend, clock, pool_size=1)
    jobs = [f"{i:032x}" for i in range(3)]
    for job in jobs:
        await pool.acquire(job, {"seg": "r1"})
    for job in jobs:
        clock.now += 1
        await pool.release(job)
    await asyncio.sleep(0)
    [kept] = pool.views()
    assert kept.idle_since == clock.now
    assert len(backend.stopped) == 2
    await pool.close()


async def test_idle_servers_expire() -> None:
    backend = FakeBackend()
    clock = Clock()
    pool, _ = pool_of(backend, clock, idle_seconds=60.0)
    await pool.acquire(JOB_A, {"seg": "r1"})
    await pool.release(JOB_A)
    clock.now += 59
    assert await pool.expire() == 0
    clock.now += 1
    assert await pool.expire() == 1
    assert pool.views() == []
    await pool.close()
    assert backend.stopped == [backend.servers[0].id]


async def test_the_reaper_stops_idle_servers_on_time() -> None:
    backend = FakeBackend()
    source = FakeSource()
    pool = TritonPool(backend, source, PoolSettings(idle_seconds=0.1))
    pool.start()
    await pool.acquire(JOB_A, {"seg": "r1"})
    await pool.release(JOB_A)
    # Generous: a loaded machine stalls the event loop for seconds.
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        if backend.stopped:
            break
        await asyncio.sleep(0.02)
    assert pool.views() == [] and len(backend.stopped) == 1
    await pool.close()


async def test_stop_all_stops_held_and_idle_servers() -> None:
    backend = FakeBackend()
    pool, _ = pool_of(backend)
    await pool.acquire(JOB_A, {"seg": "r1"})
    await pool.acquire(JOB_B, {"seg": "r1"})
    await pool.release(JOB_B)
    assert await pool.stop_all() == 2
    assert sorted(backend.stopped) == sorted(server.id for server in backend.servers)
    assert await pool.release(JOB_A) == 0
    # The pool keeps serving after a stop.
    await pool.acquire(JOB_A, {"seg": "r1"})
    assert len(backend.servers) == 3
    await pool.close()


async def test_forget_unloads_a_deleted_model_from_idle_servers() -> None:
    backend = FakeBackend()
    pool, _ = pool_of(backend)
    await pool.acquire(JOB_A, {"seg": "r1", "lung": "r1"})
    await pool.release(JOB_A)
    await pool.forget("seg")
    assert backend.servers[0].unload_calls == ["seg"]
    assert backend.removed == ["seg"]
    assert dict(pool.views()[0].models) == {"lung": "r1"}
    await pool.close()


async def test_a_pool_stopped_while_a_server_starts_leaves_nothing_running() -> None:
    gate = asyncio.Event()
    backend = FakeBackend(start_gate=gate)
    pool, _ = pool_of(backend)
    acquiring = asyncio.create_task(pool.acquire(JOB_A, {"seg": "r1"}))
    await asyncio.wait_for(backend.start_begun.wait(), 30)
    assert await pool.stop_all() == 1
    gate.set()
    with pytest.raises(Unavailable, match="stopped while a server"):
        await acquiring
    assert all(not server.running for server in backend.servers)
    await pool.close()


async def test_a_model_triton_no_longer_reports_ready_is_loaded_again() -> None:
    backend = FakeBackend()
    pool, _ = pool_of(backend)
    await pool.acquire(JOB_A, {"seg": "r1", "lung": "r1"})
    await pool.release(JOB_A)
    backend.servers[0].loaded.discard("seg")  # its backend stub died
    await pool.acquire(JOB_B, {"seg": "r1", "lung": "r1"})
    assert sorted(backend.servers[0].load_calls) == ["lung", "seg", "seg"]
    await pool.close()
