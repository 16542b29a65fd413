"""The scheduler's events are at least once: `job.deleted`, when a scheduler is killed between
removing the job's record and publishing it, is left staged apart and the leader's replay
publishes it; pipeline services' lifecycle events, staged in the service's record, are
published by the replay once the bus is back."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, cast

import pytest

from aorta.bus import Bus, CloudEvent
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.ids import JobId
from aorta.outbox import APART_COLLECTION, Outbox
from aorta.settings import Settings
from aorta.store.factory import open_state_store
from aorta_services.scheduler.deletion import JobDeletion
from aorta_services.scheduler.domain import Request
from aorta_services.scheduler.domain.services import ServiceRecord, ServiceState
from aorta_services.scheduler.events import JobEvents
from aorta_services.scheduler.peers import Peers
from aorta_services.scheduler.pipeline_services import service_event
from aorta_services.scheduler.repository import JobRepository
from aorta_services.scheduler.service_records import ServiceRepository
from tests.unit.event_outage import Collected, Killed, Mode, OutageBus
from tests.unit.scheduler.job_calls import chain, wait_for
from tests.unit.scheduler.scheduler_harness import RPC_TIMEOUT, Harness
from tests.unit.scheduler.staged_events import job_with_created_event


class _KilledAtDeleted:
    """The replica's bus, but a publish of `job.deleted` kills its caller."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)

    async def publish_event(self, event: CloudEvent) -> None:
        if event.type == "org.aorta.job.deleted":
            raise Killed("killed before publishing job.deleted")
        await self._bus.publish_event(event)


async def test_a_deletion_killed_before_its_event_is_published_by_the_replay(
    harness: Harness,
) -> None:
    await chain(harness)
    collected = Collected()
    await harness.client.subscribe_events("aorta.events.job.>", collected, deliver="all")
    job_id = await harness.run()
    await harness.stopped(job_id)
    context = harness.replicas[0].context
    repository = JobRepository(context.store)
    killed = JobEvents(cast(Bus, _KilledAtDeleted(context.bus)), repository)
    deletion = JobDeletion(repository, Peers(context.bus, RPC_TIMEOUT), killed, context.blobs)

    with pytest.raises(Killed):
        await deletion.remove(await repository.get(JobId(job_id)))
    assert await repository.document(JobId(job_id)) is None
    assert await context.store.collection(APART_COLLECTION).count() == 1

    await JobEvents(context.bus, repository, apart_grace=0).replay()

    await wait_for(lambda: any(e.event == "deleted" for e in collected.received))
    deleted = [e for e in collected.unique.values() if e.event == "deleted"]
    assert [e.subject for e in deleted] == [job_id]
    assert await context.store.collection(APART_COLLECTION).count() == 0


@pytest.mark.parametrize("mode", ["down", "kill"])
async def testservice_events_staged_while_the_bus_fails_are_published_by_the_replay(
    tmp_path: Path, mode: Mode
) -> None:
    store = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)}))
    bus = OutageBus(MemoryNetwork(), default_timeout=RPC_TIMEOUT)
    collected = Collected()
    await bus.subscribe_events("aorta.events.service.>", collected)
    repository = ServiceRepository(store)
    outbox = Outbox(bus, store, service="scheduler.services")
    await outbox.watch(repository.collection)
    record = ServiceRecord(
        "s1", "trtis", "nvcr.io/triton", "1", (), ServiceState.STOPPED, Request(1, 0, 64)
    )
    await repository.put("s1", lambda r: r, lambda: record)
    bus.mode = mode

    for state, event in ((ServiceState.STARTING, "started"), (ServiceState.READY, "ready")):
        document = await repository.modify_staged(
            "s1", partial(replace, state=state), partial(service_event, event=event)
        )
        with contextlib.suppress(Killed):
            assert not await outbox.flush(repository.collection, document)

    bus.mode = "up"
    await outbox.replay()

    assert await collected.types(["started", "ready"]) == ["started", "ready"]
    await bus.close()
    await store.close()


async def test_the_replay_leaves_a_job_whose_writer_is_flushing_to_that_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader that creates a job as its takeover replay runs: the replay does not publish
    the job's events beside the writer's flush, nor remove them with a write of its own."""
    store = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)}))
    bus = MemoryBus()
    publishing = asyncio.Event()
    release = asyncio.Event()
    published: list[str] = []

    async def publish(event: CloudEvent) -> None:
        published.append(event.id)
        if not publishing.is_set():
            publishing.set()  # the writer's publish, held until the replay has run
            await release.wait()

    monkeypatch.setattr(bus, "publish_event", publish)
    repository = JobRepository(store)
    events = JobEvents(bus, repository)
    try:
        job, event = await job_with_created_event(repository)
        writer = asyncio.create_task(events.flush(job))
        await publishing.wait()
        await events.replay()
        assert published == [event.id]
        assert (await repository.get(job.id)).outbox != ()
        release.set()
        assert await writer
        assert published == [event.id]
        assert (await repository.get(job.id)).outbox == ()
    finally:
        await store.close()
