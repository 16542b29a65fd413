"""Which GPUs the pool gives its servers: the job's own devices, else the least used; none means
the CPU. The rules as pure logic, in placement, and through the pool to the backend."""

from __future__ import annotations

from aorta_services.models.domain.gpus import job_devices, spread_devices
from aorta_services.models.domain.placement import Placement, ServerView, place
from aorta_services.models.pool import TritonPool
from aorta_services.models.settings import PoolSettings
from tests.unit.models.model_fakes import FakeBackend, FakeSource

JOB_A, JOB_B, JOB_C = ("a" * 32, "b" * 32, "c" * 32)


def test_a_job_given_gpus_gets_those_triton_may_use_at_most_per_server() -> None:
    assert job_devices((2,), (0, 1, 2, 3), 1) == (2,)
    assert job_devices((3, 1), (0, 1, 2, 3), 2) == (1, 3)
    assert job_devices((3, 1), (0, 1, 2, 3), 1) == (1,)
    assert job_devices((1, 2), (2,), 4) == (2,)


def test_a_job_without_usable_gpus_leaves_the_choice_to_the_pool() -> None:
    assert job_devices((), (0, 1), 1) is None
    assert job_devices((5,), (0, 1), 1) is None
    assert job_devices((0,), (0, 1), 0) is None


def test_servers_spread_over_the_least_used_devices_lowest_first() -> None:
    assert spread_devices((0, 1, 2), [], 1) == (0,)
    assert spread_devices((0, 1, 2), [(0,)], 1) == (1,)
    assert spread_devices((0, 1, 2), [(0,), (1,), (0, 2)], 2) == (1, 2)
    assert spread_devices((2, 5), [(2,), (7,)], 1) == (5,)


def test_no_device_or_none_per_server_means_the_cpu() -> None:
    assert spread_devices((), [], 1) == ()
    assert spread_devices((0, 1), [], 0) == ()


def test_an_idle_server_on_the_jobs_devices_is_preferred_to_a_warmer_one_elsewhere() -> None:
    servers = [
        ServerView("warm", None, {"seg": "r1"}, 5.0, (0,)),
        ServerView("mine", None, {}, 1.0, (1,)),
    ]
    chosen = place(JOB_A, {"seg": "r1"}, servers, models_per_server=8, max_servers=4, gpus=(1,))
    assert chosen == Placement("mine", ("seg",))
    anywhere = place(JOB_A, {"seg": "r1"}, servers, models_per_server=8, max_servers=4)
    assert anywhere == Placement("warm", ())


def test_a_new_server_is_started_on_the_jobs_devices_before_one_elsewhere_is_taken() -> None:
    servers = [ServerView("warm", None, {"seg": "r1"}, 5.0, (0,))]
    new = place(JOB_A, {"seg": "r1"}, servers, models_per_server=8, max_servers=2, gpus=(1,))
    assert new == Placement(None, ("seg",))
    full = place(JOB_A, {"seg": "r1"}, servers, models_per_server=8, max_servers=1, gpus=(1,))
    assert full == Placement("warm", ())


def pool(backend: FakeBackend, devices: tuple[int, ...], per_server: int = 1) -> TritonPool:
    settings = PoolSettings(gpus_per_server=per_server, pool_size=4)
    return TritonPool(backend, FakeSource(), settings, devices=devices)


async def test_the_server_of_a_job_given_gpus_runs_on_them() -> None:
    backend = FakeBackend()
    triton = pool(backend, (0, 1, 2, 3))
    got = await triton.acquire(JOB_A, {"seg": "r1"}, (2,))
    assert backend.devices[got.server_id] == (2,)
    two = pool(backend, (0, 1, 2, 3), per_server=2)
    both = await two.acquire(JOB_B, {"seg": "r1"}, (3, 1))
    assert backend.devices[both.server_id] == (1, 3)
    await triton.close()
    await two.close()


async def test_servers_of_jobs_without_gpus_spread_over_the_devices() -> None:
    backend = FakeBackend()
    triton = pool(backend, (0, 1))
    first = await triton.acquire(JOB_A, {"seg": "r1"})
    second = await triton.acquire(JOB_B, {"seg": "r1"})
    third = await triton.acquire(JOB_C, {"seg": "r1"})
    assert [backend.devices[a.server_id] for a in (first, second, third)] == [(0,), (1,), (0,)]
    await triton.close()


async def test_without_gpus_for_triton_every_server_runs_on_the_cpu() -> None:
    backend = FakeBackend()
    for triton in (pool(backend, ()), pool(backend, (0, 1), per_server=0)):
        got = await triton.acquire(JOB_A, {"seg": "r1"}, (0,))
        assert backend.devices[got.server_id] == ()
        await triton.close()


async def test_a_released_server_is_reused_by_a_job_on_the_same_device() -> None:
    backend = FakeBackend()
    triton = pool(backend, (0, 1))
    first = await triton.acquire(JOB_A, {"seg": "r1"}, (1,))
    await triton.release(JOB_A)
    again = await triton.acquire(JOB_B, {"seg": "r1"}, (1,))
    assert again.server_id == first.server_id
    await triton.release(JOB_B)
    other = await triton.acquire(JOB_C, {"seg": "r1"}, (0,))
    assert other.server_id != first.server_id
    assert backend.devices[other.server_id] == (0,)
    await triton.close()
