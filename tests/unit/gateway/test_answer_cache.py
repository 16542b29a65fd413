"""The gateway keeps a settled answer until anything could change it: an event of its thing, a
command for it through the gateway, a gap in what the bus delivered, its age; Jobs.Status
through the gateway (the Details paths: test_kept_details.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aorta import contracts, subjects
from aorta.api import common_pb2, jobs_pb2, jobs_pb2_grpc
from aorta.bus import make_event
from aorta.bus.memory import MemoryBus
from aorta.bus.verbs import answering
from aorta_services.gateway.answer_cache import AnswerCache
from tests.unit.gateway.door_harness import door_gateway

JOB = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


def answer(job_id: str, name: str, *, settled: bool = True) -> contracts.JobStatus:
    status = jobs_pb2.JobsStatusResponse(job_id=common_pb2.Identifier(value=job_id), name=name)
    return contracts.JobStatus(status, owner="alice", settled=settled)


async def until(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Waits for the bus's delivery task to have done what `condition` checks."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.005)


async def job_event(bus: MemoryBus, job_id: str, event: str = "stopped") -> None:
    await bus.publish_event(make_event("scheduler", "job", job_id, event, {"job_id": job_id}))


Cache = AnswerCache[contracts.JobStatus]


def jobs() -> Cache:
    return AnswerCache("job")


def kept(cache: Cache, job_id: str, fetched: contracts.JobStatus, key: bytes = b"") -> None:
    with cache.fetching(job_id) as fetch:
        fetch.keep(fetched, key)


async def test_a_settled_answer_is_kept_until_an_event_of_its_job() -> None:
    bus, cache = MemoryBus(), jobs()
    await cache.start(bus)
    try:
        kept(cache, JOB, answer(JOB, "first"))
        kept(cache, OTHER, answer(OTHER, "other"))
        cached = cache.get(JOB)
        assert cached is not None and cached.status.name == "first"
        await job_event(bus, JOB, "metadata_changed")
        await until(lambda: cache.get(JOB) is None)
        assert cache.get(OTHER) is not None
    finally:
        await cache.stop()
        await bus.close()


async def test_nothing_is_kept_before_the_events_are_followed() -> None:
    bus, cache = MemoryBus(), jobs()
    kept(cache, JOB, answer(JOB, "before"))
    assert cache.get(JOB) is None
    await cache.start(bus)
    try:
        kept(cache, JOB, answer(JOB, "after"))
        assert cache.get(JOB) is not None
    finally:
        await cache.stop()
        await bus.close()
    assert cache.get(JOB) is None


async def test_an_event_drops_every_answer_of_its_thing_and_only_of_its_kind() -> None:
    bus, cache = MemoryBus(), AnswerCache[str]("payload")
    await cache.start(bus)
    try:
        with cache.fetching(JOB) as fetch:
            fetch.keep("asked one way", b"one")
        with cache.fetching(JOB) as fetch:
            fetch.keep("asked another way", b"two")
        assert (cache.get(JOB, b"one"), cache.get(JOB, b"two")) == (
            "asked one way",
            "asked another way",
        )
        with cache.fetching(OTHER) as fetch:
            fetch.keep("a witness")
        # A job with the same id is another thing: its events leave the payload's answers.
        # The other payload's event, published after it, shows it would have arrived.
        await job_event(bus, JOB)
        await bus.publish_event(make_event("payloads", "payload", OTHER, "locked", {}))
        await until(lambda: cache.get(OTHER) is None)
        assert cache.get(JOB, b"one") is not None
        await bus.publish_event(
            make_event("payloads", "payload", JOB, "metadata_changed", {"payload_id": JOB})
        )
        await until(lambda: cache.get(JOB, b"one") is None)
        assert cache.get(JOB, b"two") is None
    finally:
        await cache.stop()
        await bus.close()


async def test_a_gap_on_the_bus_forgets_everything() -> None:
    bus, cache = MemoryBus(), jobs()
    await cache.start(bus)
    try:
        kept(cache, JOB, answer(JOB, "first"))
        kept(cache, OTHER, answer(OTHER, "other"))
        bus.interrupt()
        assert cache.get(JOB) is None and cache.get(OTHER) is None
    finally:
        await cache.stop()
        await bus.close()


async def test_an_answer_fetched_while_its_job_changed_is_not_kept() -> None:
    bus, cache = MemoryBus(), jobs()
    await cache.start(bus)
    try:
        with cache.fetching(JOB) as fetch:
            # The scheduler read the job, then it changed and its event arrived before the
            # answer did: the answer may be the old state.
            await job_event(bus, JOB)
            await until(lambda: fetch.spoiled)
            fetch.keep(answer(JOB, "read before the change"))
        assert cache.get(JOB) is None
        with cache.fetching(JOB) as fetch:
            bus.interrupt()
            fetch.keep(answer(JOB, "read across a gap"))
        assert cache.get(JOB) is None
    finally:
        await cache.stop()
        await bus.close()


async def test_the_cache_is_bounded_and_answers_age_out() -> None:
    now = [0.0]
    bus = MemoryBus()
    cache: Cache = AnswerCache("job", max_entries=2, max_age=5.0, clock=lambda: now[0])
    await cache.start(bus)
    try:
        for job_id in ("a", "b"):
            kept(cache, job_id, answer(job_id, job_id))
        assert cache.get("a") is not None  # "a" is now the most recently read
        kept(cache, "c", answer("c", "c"))
        assert cache.get("b") is None
        assert cache.get("a") is not None and cache.get("c") is not None
        now[0] = 5.1
        assert cache.get("a") is None
    finally:
        await cache.stop()
        await bus.close()


async def test_the_cache_holds_at_most_its_bytes() -> None:
    bus, cache = MemoryBus(), AnswerCache[str]("pipeline", size=len, max_bytes=10)
    await cache.start(bus)
    try:
        with cache.fetching("a") as fetch:
            fetch.keep("x" * 11)
        assert cache.get("a") is None
        for id in ("a", "b"):
            with cache.fetching(id) as fetch:
                fetch.keep("x" * 5)
        with cache.fetching("c") as fetch:
            fetch.keep("x" * 3)
        assert cache.get("a") is None
        assert cache.get("b") == "x" * 5 and cache.get("c") == "x" * 3
    finally:
        await cache.stop()
        await bus.close()


async def test_the_gateway_answers_from_the_cache_and_never_a_changed_job_stale(
    tmp_path: Path,
) -> None:
    state: dict[str, Any] = {"name": "created", "asked": 0}

    async def status(request: jobs_pb2.JobsStatusRequest) -> contracts.JobStatus:
        state["asked"] += 1
        return answer(request.job_id.value, str(state["name"]))

    async def cancel(request: object) -> bytes:
        state["name"] = "canceled"
        return jobs_pb2.JobsCancelResponse().SerializeToString()

    async with door_gateway(tmp_path) as door:
        verb = contracts.SCHEDULER_STATUS
        served = [
            await door.bus.serve(verb.subject, answering(verb, status), queue="scheduler"),
            await door.bus.serve(subjects.SCHEDULER_CANCEL, cancel, queue="scheduler"),
        ]
        jobs = jobs_pb2_grpc.JobsStub(door.channel)
        request = jobs_pb2.JobsStatusRequest(job_id=common_pb2.Identifier(value=JOB))

        async def name() -> str:
            response = await jobs.Status(request)
            assert response.header.code == 0, response.header
            return str(response.name)

        try:
            assert [await name(), await name()] == ["created", "created"]
            assert state["asked"] == 1
            # A change elsewhere (the leader, another gateway) comes with the job's event.
            state["name"] = "started elsewhere"
            await job_event(door.bus, JOB, "queued")
            await until_answered(name, "started elsewhere")
            # A command through this gateway drops the answer itself, event or not.
            await jobs.Cancel(jobs_pb2.JobsCancelRequest(job_id=request.job_id))
            assert await name() == "canceled"
            # After a gap on the bus, the next Status asks the scheduler again.
            asked = int(state["asked"])
            door.bus.interrupt()
            assert await name() == "canceled"
            assert state["asked"] == asked + 1
        finally:
            for subscription in served:
                await subscription.drain()


async def until_answered(name: Callable[[], Awaitable[str]], expected: str) -> None:
    """Waits for the gateway to have heard the event: Status then answers `expected`."""
    deadline = time.monotonic() + 30.0
    while (got := await name()) != expected:
        assert time.monotonic() < deadline, f"Status kept answering {got!r}"
        await asyncio.sleep(0.005)
