"""A Start on the leader hands the job it queued to the engine instead of asking for a resync
(`start_handoff`, `Engine.queued`), and keeps the resync's guarantees: a Cancel racing the
hand-off, a resync that began during Start's write, a Start on a follower, a leader change."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from aorta.api import jobs_pb2
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.engine import Engine
from aorta_services.scheduler.start_handoff import StartHandoff
from tests.unit.scheduler.scheduler_harness import PIPELINE_ID, Harness, single

NO_PERIODIC_RESYNC = {"AORTA_SCHEDULER_RESYNC": "600"}


async def resynced(engine: Engine, count: int, within: float = 60.0) -> None:
    """Returns once `count` resyncs have begun."""
    deadline = time.monotonic() + within
    while engine.resyncs_begun < count:
        assert time.monotonic() < deadline, f"only {engine.resyncs_begun} resyncs of {count}"
        await asyncio.sleep(0.02)


def held_handoffs(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[JobRecord, int]], Callable[[], None]]:
    """Holds every hand-off to `engine`; the second value delivers those held, and lets
    later ones through."""
    held: list[tuple[JobRecord, int]] = []
    deliver_to = engine.queued

    def hold(record: JobRecord, *, resyncs_begun: int) -> None:
        held.append((record, resyncs_begun))

    def deliver() -> None:
        monkeypatch.undo()
        for record, resyncs_begun in held:
            deliver_to(record, resyncs_begun=resyncs_begun)

    monkeypatch.setattr(engine, "queued", hold)
    return held, deliver


async def test_a_start_on_the_leader_runs_its_job_without_a_resync(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single()})
    await harness.replica(NO_PERIODIC_RESYNC)
    engine = (await harness.leader()).service.engine
    assert engine is not None
    job_id = await harness.create()
    engine.poke()  # its first pass, which resyncs
    await resynced(engine, 1)
    before = engine.resyncs_begun

    await harness.start(job_id)

    assert (await harness.stopped(job_id)).status == jobs_pb2.JOB_STATUS_HEALTHY
    assert engine.resyncs_begun == before


async def test_a_handoff_that_a_cancels_resync_overtook_is_dropped(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single()})
    replica = await harness.replica(NO_PERIODIC_RESYNC)
    engine = (await harness.leader()).service.engine
    assert engine is not None
    job_id = await harness.create()
    engine.poke()  # its first pass, which resyncs
    await resynced(engine, 1)
    held, deliver = held_handoffs(engine, monkeypatch)
    await harness.start(job_id)
    assert [record.id for record, _ in held] == [job_id]

    resyncs = engine.resyncs_begun
    nudge = engine.poke

    def handed_then_nudged(*, resync: bool = False) -> None:
        # Cancel's nudge comes right after the hand-off: its resync runs before the hand-off
        # is taken, and reads the job canceled.
        deliver()
        nudge(resync=resync)

    monkeypatch.setattr(engine, "poke", handed_then_nudged)
    await harness.cancel(job_id)
    # The engine's passes run in order: once a later job ran, the hand-off was taken.
    later = await harness.run("later")
    assert (await harness.stopped(later)).status == jobs_pb2.JOB_STATUS_HEALTHY

    status = await harness.status(job_id)
    assert status.status == jobs_pb2.JOB_STATUS_CANCELED
    assert [run.job_id for run in replica.executor.starts] == [later]
    # Cancel's resync only: taken, the stale record would have been admitted, and its
    # admission, finding the job stopped, would have asked for another.
    assert engine.resyncs_begun == resyncs + 1


async def test_a_resync_begun_during_starts_write_is_followed_by_another(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single()})
    await harness.replica(NO_PERIODIC_RESYNC)
    engine = (await harness.leader()).service.engine
    assert engine is not None
    job_id = await harness.create()
    engine.poke()  # its first pass, which resyncs
    await resynced(engine, 1)
    held, deliver = held_handoffs(engine, monkeypatch)
    await harness.start(job_id)
    [(_, ticket)] = held

    # A resync that begins before the hand-off, as if while Start wrote: it may have read the
    # job before its write, so the hand-off asks for one more.
    engine.poke(resync=True)
    await resynced(engine, ticket + 1)
    after = engine.resyncs_begun
    deliver()

    await resynced(engine, after + 1)
    assert (await harness.stopped(job_id)).status == jobs_pb2.JOB_STATUS_HEALTHY


async def test_a_start_on_a_follower_nudges_the_leader(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single()})
    await harness.replica(NO_PERIODIC_RESYNC)
    engine = (await harness.leader()).service.engine
    assert engine is not None
    await harness.replica(NO_PERIODIC_RESYNC)
    jobs = [await harness.create("a"), await harness.create("b")]
    engine.poke()  # its first pass, which resyncs
    await resynced(engine, 1)
    before = engine.resyncs_begun

    # The replicas serve Start in turn (the in-process bus's queue groups): one each.
    for job_id in jobs:
        await harness.start(job_id)

    for job_id in jobs:
        assert (await harness.stopped(job_id)).status == jobs_pb2.JOB_STATUS_HEALTHY
    # The follower's nudge, and only that, made the leader resync.
    assert engine.resyncs_begun == before + 1


class FakeEngine:
    """What `StartHandoff` asks of an engine."""

    def __init__(self, resyncs_begun: int) -> None:
        self.resyncs_begun = resyncs_begun
        self.handed: list[tuple[Any, int]] = []

    def queued(self, record: Any, *, resyncs_begun: int) -> None:
        self.handed.append((record, resyncs_begun))


async def test_the_handoff_goes_to_the_engine_that_led_before_the_write() -> None:
    nudges: list[None] = []
    current: list[Any] = [FakeEngine(3)]

    async def notify() -> None:
        nudges.append(None)

    handoff = StartHandoff(lambda: current[0], notify)
    notice = handoff.prepare()
    current[0].resyncs_begun = 5
    await notice("record")

    assert current[0].handed == [("record", 3)] and nudges == []


@pytest.mark.parametrize("after", ["other", "none"])
async def test_a_leader_change_during_the_write_nudges_instead(after: str) -> None:
    nudges: list[None] = []
    before = FakeEngine(3)
    current: list[Any] = [before]

    async def notify() -> None:
        nudges.append(None)

    notice = StartHandoff(lambda: current[0], notify).prepare()
    current[0] = FakeEngine(0) if after == "other" else None
    await notice("record")

    assert before.handed == [] and nudges == [None]
    assert current[0] is None or current[0].handed == []


async def test_a_follower_nudges() -> None:
    nudges: list[None] = []

    async def notify() -> None:
        nudges.append(None)

    await StartHandoff(lambda: None, notify).prepare()("record")

    assert nudges == [None]
