"""At-least-once job events: each is stored in the job's document with the change it describes
and stays there until published, so neither a bus outage nor a crash between the write and the
publish loses it; the leader publishes what is left, under the event's stored id."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from aorta import subjects
from aorta.api import jobs_pb2
from aorta.bus import CloudEvent, Subscription
from aorta.errors import Invalid, Unavailable
from aorta.ids import JobId
from aorta.store.sqlite_collection import SqliteCollection
from aorta_services.scheduler.repository import JobRepository
from tests.unit.scheduler.job_calls import CHAIN_EVENTS, appender, chain, wait_for
from tests.unit.scheduler.scheduler_harness import (
    CHAIN,
    PIPELINE_ID,
    Harness,
    Replica,
    ident,
    single,
)


async def follow(harness: Harness) -> tuple[list[CloudEvent], Subscription]:
    """Every job event stored on the stream, from the first."""
    seen: list[CloudEvent] = []
    subscription = await harness.client.subscribe_events(
        "aorta.events.job.>", appender(seen), deliver="all"
    )
    return seen, subscription


async def outbox(replica: Replica, job_id: str) -> tuple[Mapping[str, Any], ...]:
    """The events job `job_id` keeps pending in its document."""
    return (await JobRepository(replica.context.store).get(JobId(job_id), hidden=True)).outbox


async def until_published(replica: Replica) -> None:
    """Returns once no job keeps a pending event (the removal follows the publish)."""
    jobs = replica.context.store.collection("jobs")
    deadline = asyncio.get_running_loop().time() + 60
    while await jobs.count({"outbox_pending": True}):
        assert asyncio.get_running_loop().time() < deadline, "events stayed pending"
        await asyncio.sleep(0.02)


async def test_an_event_the_bus_refuses_is_kept_until_the_leader_publishes_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single()})
    replica = await harness.replica()
    seen, subscription = await follow(harness)
    bus = replica.context.bus
    publish = bus.publish_event
    down = True
    refused: list[str] = []

    async def flaky(event: CloudEvent) -> None:
        if down:
            refused.append(event.id)
            raise Unavailable("the event stream is unreachable")
        await publish(event)

    monkeypatch.setattr(bus, "publish_event", flaky)
    job_id = await harness.create()
    [pending] = await outbox(replica, job_id)
    assert pending["type"] == "org.aorta.job.created"
    # The leader's resync tries it again, under the same id, while the bus still refuses.
    await wait_for(lambda: refused.count(pending["id"]) >= 2)
    assert seen == [] and await outbox(replica, job_id) == (pending,)
    down = False
    await wait_for(lambda: len(seen) == 1)
    await until_published(replica)
    await subscription.drain()
    [created] = seen
    assert (created.id, created.event, created.subject) == (pending["id"], "created", job_id)
    assert created.data["state"] == "PENDING" and created.data["payload_id"]
    assert await outbox(replica, job_id) == ()


async def test_an_event_a_crash_left_unpublished_is_published_by_the_next_leader(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single()})
    first = await harness.replica(name="first")
    seen, subscription = await follow(harness)
    publish = first.context.bus.publish_event
    dying = asyncio.Event()

    async def die_before_publishing_the_end(event: CloudEvent) -> None:
        if event.event == "stopped":
            dying.set()
            # The process dies here: the job's end is stored, its event never sent.
            await asyncio.Event().wait()
        await publish(event)

    monkeypatch.setattr(first.context.bus, "publish_event", die_before_publishing_the_end)
    job_id = await harness.run()
    await asyncio.wait_for(dying.wait(), 5)
    # The operator's end, published, was left for the job's next write; the job's end,
    # stored in that same write after it, was not published.
    published, pending = await outbox(first, job_id)
    assert published["type"] == "org.aorta.job.operator.stopped"
    assert pending["type"] == "org.aorta.job.stopped"
    await harness.crash(first)
    second = await harness.replica(name="second")
    await wait_for(lambda: any(e.event == "stopped" for e in seen))
    await until_published(second)
    await subscription.drain()
    assert [(e.event, e.data.get("operator")) for e in seen] == [
        ("created", None),
        ("queued", None),
        ("started", None),
        ("operator.started", "only"),
        ("operator.stopped", "only"),
        ("stopped", None),
    ]
    assert seen[-1].id == pending["id"]
    assert (seen[-1].data["state"], seen[-1].data["status"]) == ("STOPPED", "HEALTHY")
    assert second.executor.starts == []


async def test_every_event_of_a_run_is_published_once_and_none_stays_pending(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await chain(harness)
    [replica] = harness.replicas
    seen, subscription = await follow(harness)
    publish = replica.context.bus.publish_event
    published: list[str] = []
    unstaged: list[str] = []

    async def checked(event: CloudEvent) -> None:
        # The first publish of an event must find it stored in its job's document.
        if event.id not in published:
            published.append(event.id)
            if event.id not in {e["id"] for e in await outbox(replica, event.subject)}:
                unstaged.append(event.id)
        await publish(event)

    monkeypatch.setattr(replica.context.bus, "publish_event", checked)
    jobs = await asyncio.gather(*(harness.run(f"job{n}") for n in range(3)))
    for job_id in jobs:
        await harness.stopped(job_id)
    await wait_for(lambda: sum(e.event == "stopped" for e in seen) == len(jobs))
    await until_published(replica)
    await subscription.drain()
    for job_id in jobs:
        names = [(e.event, e.data.get("operator")) for e in seen if e.subject == job_id]
        assert names == CHAIN_EVENTS
    assert len({e.id for e in seen}) == len(seen) == 10 * len(jobs)
    # A publish repeated by the leader's replay reaches the stream once; nothing else is sent.
    assert set(published) == {e.id for e in seen}
    assert unstaged == []
    assert [await outbox(replica, job_id) for job_id in jobs] == [()] * len(jobs)


async def test_a_chain_removes_published_events_with_its_next_write_not_one_of_their_own(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without resyncs, so no replay removes a pending event between two of the job's writes.
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"chain.yaml": CHAIN})
    replica = await harness.replica(env={"AORTA_SCHEDULER_RESYNC": "600"})
    seen, subscription = await follow(harness)
    writes: list[frozenset[str]] = []
    update = SqliteCollection.update

    async def recorded(
        self: SqliteCollection, id: str, changes: Mapping[str, Any], **kw: Any
    ) -> Mapping[str, Any]:
        if self.name == "jobs":
            writes.append(frozenset(changes))
        return await update(self, id, changes, **kw)

    monkeypatch.setattr(SqliteCollection, "update", recorded)
    job_id = await harness.run()
    await harness.stopped(job_id)
    await wait_for(lambda: sum(e.event == "stopped" for e in seen) == 1)
    await until_published(replica)
    await subscription.drain()
    assert [(e.event, e.data.get("operator")) for e in seen] == CHAIN_EVENTS
    # Writes that only remove published events: `created`'s; `queued` (Start on the leader),
    # the admission's, every operator's start and end events and `stopped`'s went with the
    # job's next write (the last operator's end with the job's finish, `stopped` with its
    # release).
    removals = [w for w in writes if w <= {"outbox", "outbox_pending", "updated_at"}]
    assert len(removals) == 1
    assert await outbox(replica, job_id) == ()


async def test_an_event_the_bus_can_never_take_is_dropped_not_kept_forever(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await chain(harness)
    [replica] = harness.replicas
    seen, subscription = await follow(harness)
    publish = replica.context.bus.publish_event

    async def too_large(event: CloudEvent) -> None:
        if event.event == "created":
            raise Invalid(f"event {event.id} is above the bus message limit")
        await publish(event)

    monkeypatch.setattr(replica.context.bus, "publish_event", too_large)
    job_id = await harness.create()
    assert await outbox(replica, job_id) == ()
    await harness.start(job_id)
    await wait_for(lambda: any(e.event == "queued" for e in seen))
    await subscription.drain()
    # The job's later events are not held back by the one that could never be published.
    assert seen[0].event == "queued" and "created" not in {e.event for e in seen}
    await harness.cancel(job_id)


async def test_metadata_changes_publish_an_event_and_only_created_or_stopped_jobs_settle(
    harness: Harness,
) -> None:
    """A gateway keeps a settled Status answer until the job's next event, so every change of
    a created or stopped job's answer, metadata included, must come with one."""
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single()})
    await harness.replica()
    seen, subscription = await follow(harness)
    job_id = await harness.create()
    assert (await harness.owned_status(job_id)).settled
    add = jobs_pb2.JobsAddMetadataRequest(job_id=ident(job_id), metadata={"k": "v"})
    await harness.call(subjects.SCHEDULER_ADD_METADATA, add, jobs_pb2.JobsAddMetadataResponse)
    remove = jobs_pb2.JobsRemoveMetadataRequest(job_id=ident(job_id), keys=["k"])
    await harness.call(
        subjects.SCHEDULER_REMOVE_METADATA, remove, jobs_pb2.JobsRemoveMetadataResponse
    )
    await wait_for(lambda: len(seen) == 3)
    assert [event.event for event in seen] == ["created", "metadata_changed", "metadata_changed"]
    await harness.start(job_id)
    status = await harness.owned_status(job_id)
    assert status.settled == (status.status.state == jobs_pb2.JOB_STATE_STOPPED)
    await harness.stopped(job_id)
    assert (await harness.owned_status(job_id)).settled
    await subscription.drain()
