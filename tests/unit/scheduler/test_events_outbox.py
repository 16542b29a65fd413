"""`job.deleted` is at least once like every job event: a scheduler killed between removing
the job's record and publishing it leaves the event staged apart, and the leader's replay
publishes it."""

from __future__ import annotations

from typing import Any, cast

import pytest

from aorta.bus import Bus, CloudEvent
from aorta.ids import JobId
from aorta.outbox import APART_COLLECTION
from aorta_services.scheduler.deletion import JobDeletion
from aorta_services.scheduler.events import JobEvents
from aorta_services.scheduler.peers import Peers
from aorta_services.scheduler.repository import JobRepository
from tests.unit.event_outage import Collected, Killed
from tests.unit.scheduler.job_calls import chain, wait_for
from tests.unit.scheduler.scheduler_harness import RPC_TIMEOUT, Harness


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
