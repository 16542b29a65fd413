"""The event hub: every open stream gets the events its user may see, and no more."""

from __future__ import annotations

import asyncio

from aorta.bus.events import CloudEvent, make_event
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta_services.web.events import BUFFERED, EventHub, Stream
from aorta_services.web.platform_client import Caller
from aorta_services.web.problems import ApiError, not_found

ALICE = Caller(True, "alice", ("user",))
VERA = Caller(True, "vera", ("viewer",))
OWNERS = {"a" * 32: "alice", "b" * 32: "bob"}
REFUSED = "f" * 32
"""A job whose owner the token may not read (another user's job, for a `user`)."""


class Owners:
    """The platform's answer to "whose job is this?", counting the questions."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, job_id: str, token: str | None) -> str:
        self.asked.append(job_id)
        if job_id == REFUSED:
            raise ApiError(403, "PERMISSION_DENIED", f"job {job_id} belongs to another user")
        if job_id not in OWNERS:
            raise not_found(f"job {job_id} was not found")
        return OWNERS[job_id]


def job_event(job_id: str, event: str = "started") -> CloudEvent:
    return make_event("scheduler", "job", job_id, event, {"job_id": job_id})


async def received(hub: EventHub, stream: Stream, count: int) -> list[CloudEvent]:
    """The next `count` events of `stream` its user may see."""
    seen: list[CloudEvent] = []
    while len(seen) < count:
        event = await asyncio.wait_for(stream.queue.get(), 5)
        assert event is not None
        if await hub.visible(stream, event):
            seen.append(event)
    return seen


async def test_a_user_sees_its_own_jobs_never_payloads_or_services_and_a_viewer_all() -> None:
    network = MemoryNetwork()
    publisher, console_bus = MemoryBus(network), MemoryBus(network)
    owners = Owners()
    hub = EventHub(owners)
    await hub.start(console_bus)
    try:
        alice, vera = hub.open(ALICE, "t-alice", None), hub.open(VERA, "t-vera", None)
        events = [
            job_event("b" * 32),
            job_event("c" * 32),
            make_event("payloads", "payload", "d" * 32, "created", {}),
            job_event("a" * 32),
            make_event("scheduler", "service", "svc-1", "failed", {"users": ["b" * 32]}),
            make_event("pipelines", "pipeline", "e" * 32, "created", {}),
            job_event("a" * 32, "stopped"),
        ]
        for event in events:
            await publisher.publish(event.nats_subject, event.to_json())
        seen = await received(hub, alice, 3)
        assert [(e.subject, e.type) for e in seen] == [
            ("a" * 32, "org.aorta.job.started"),
            ("e" * 32, "org.aorta.pipeline.created"),
            ("a" * 32, "org.aorta.job.stopped"),
        ]
        assert [e.id for e in await received(hub, vera, len(events))] == [e.id for e in events]
        assert sorted(owners.asked) == ["a" * 32, "b" * 32, "c" * 32]
    finally:
        await hub.stop()
        await console_bus.close()
        await publisher.close()


async def test_a_jobs_owner_is_asked_once_and_none_when_the_token_may_not_read_it() -> None:
    owners = Owners()
    hub = EventHub(owners)
    assert await hub.job_owner("b" * 32, "t-alice") == "bob"
    assert await hub.job_owner("b" * 32, "t-alice") == "bob"
    assert await hub.job_owner("c" * 32, "t-alice") is None
    assert owners.asked == ["b" * 32, "c" * 32]


async def test_a_refusal_is_remembered_per_token_and_forgotten_with_the_job() -> None:
    network = MemoryNetwork()
    publisher, console_bus = MemoryBus(network), MemoryBus(network)
    owners = Owners()
    hub = EventHub(owners)
    await hub.start(console_bus)
    try:
        for _ in range(3):
            assert await hub.job_owner(REFUSED, "t-alice") is None
        assert await hub.job_owner(REFUSED, "t-carol") is None
        assert owners.asked == [REFUSED, REFUSED]
        alice = hub.open(ALICE, "t-alice", None)
        deleted = job_event(REFUSED, "deleted")
        await publisher.publish(deleted.nats_subject, deleted.to_json())
        assert await asyncio.wait_for(alice.queue.get(), 5) == deleted
        assert await hub.job_owner(REFUSED, "t-alice") is None
        assert owners.asked == [REFUSED, REFUSED, REFUSED]
    finally:
        await hub.stop()
        await console_bus.close()
        await publisher.close()


async def test_a_stream_of_one_job_gets_that_job_only() -> None:
    stream = Stream(VERA, None, job_id="a" * 32)
    stream.offer(job_event("b" * 32))
    stream.offer(job_event("a" * 32))
    assert stream.queue.qsize() == 1


async def test_a_stream_that_falls_behind_keeps_the_newest_and_is_told() -> None:
    stream = Stream(VERA, None)
    events = [job_event("a" * 32) for _ in range(BUFFERED + 10)]
    for event in events:
        stream.offer(event)
    assert stream.lagged and stream.queue.qsize() == BUFFERED
    assert stream.queue.get_nowait() is events[10]
    stream.end()
    while (last := stream.queue.get_nowait()) is not None:
        assert last in events
