"""The scheduler lease on a real SQLite store, with a hand-driven clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.settings import Settings
from aorta.store import StateStore
from aorta.store.factory import open_state_store
from aorta_services.scheduler.lease import Leadership, Lease, Led


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    opened = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)}))
    yield opened
    await opened.close()


async def test_one_of_two_replicas_takes_a_free_lease(store: StateStore) -> None:
    clock = Clock()
    first, second = (Lease(store, name, 10.0, clock=clock) for name in ("a", "b"))
    results = await asyncio.gather(first.acquire(), second.acquire())
    assert sorted(results) == [False, True]
    winner = first if results[0] else second
    assert winner.held and winner.expires_at == 1010.0


async def test_a_live_lease_is_kept_and_renewed_by_its_holder(store: StateStore) -> None:
    clock = Clock()
    holder, other = Lease(store, "a", 10.0, clock=clock), Lease(store, "b", 10.0, clock=clock)
    assert await holder.acquire()
    clock.now += 9
    assert not await other.acquire()
    assert await holder.renew()
    clock.now += 9
    assert not await other.acquire()
    assert holder.expires_at == 1019.0 and holder.held


async def test_an_expired_lease_passes_on_and_the_old_holder_learns_it(store: StateStore) -> None:
    clock = Clock()
    holder, other = Lease(store, "a", 10.0, clock=clock), Lease(store, "b", 10.0, clock=clock)
    assert await holder.acquire()
    clock.now += 10
    assert not holder.held
    assert await other.acquire()
    assert not await holder.renew()
    assert not holder.held and other.held


async def test_a_released_lease_is_free_at_once(store: StateStore) -> None:
    clock = Clock()
    holder, other = Lease(store, "a", 10.0, clock=clock), Lease(store, "b", 10.0, clock=clock)
    assert await holder.acquire()
    await holder.release()
    assert await other.acquire()


class Recorder:
    """A led object that records how it was started and stopped."""

    def __init__(self, log: list[str]) -> None:
        self._log = log

    async def start(self) -> None:
        self._log.append("start")

    async def stop(self, *, kill_runs: bool) -> None:
        self._log.append(f"stop kill_runs={kill_runs}")


async def test_leadership_leads_and_steps_down_when_another_holder_took_over(
    store: StateStore,
) -> None:
    events: list[str] = []
    changes: list[bool] = []
    led, left = asyncio.Event(), asyncio.Event()

    async def on_change(now: Led | None) -> None:
        changes.append(now is not None)
        (led if now is not None else left).set()

    lease = Lease(store, "a", 0.6)
    leadership = Leadership(lease, lambda: Recorder(events), on_change=on_change)
    loop = asyncio.create_task(leadership.run())
    try:
        await asyncio.wait_for(led.wait(), 5)
        # Another replica overwrites the lease, as one would after it expired.
        await store.collection("leases").update("scheduler", {"holder": "b"})
        await asyncio.wait_for(left.wait(), 5)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await leadership.close()
    assert events == ["start", "stop kill_runs=True"]
    assert changes == [True, False]


async def test_closing_leadership_leaves_runs_and_frees_the_lease(store: StateStore) -> None:
    events: list[str] = []
    led = asyncio.Event()

    async def on_change(now: Led | None) -> None:
        led.set()

    leadership = Leadership(Lease(store, "a", 30.0), lambda: Recorder(events), on_change=on_change)
    loop = asyncio.create_task(leadership.run())
    await asyncio.wait_for(led.wait(), 5)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    await leadership.close()
    assert events == ["start", "stop kill_runs=False"]
    assert await Lease(store, "b", 30.0).acquire()
