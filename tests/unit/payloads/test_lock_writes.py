"""A job's payload lock and release in few store calls, with every guarantee kept: the lock's
write removes `created`, the release's removes `locked` (each published already), no copy the
repository kept is read again, each event is published once, and a copy that another replica's
write made stale neither refuses a change nor loses one."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from aorta import contracts
from aorta.bus import CloudEvent
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.errors import AortaError, ErrorCode
from aorta.ids import JobId, PayloadId
from aorta.outbox import OUTBOX_FIELD, Outbox
from aorta.runtime.service import ServiceContext
from aorta_services.payloads.contents import PayloadContents
from aorta_services.payloads.events import EventPublisher
from aorta_services.payloads.internal import InternalVerbs
from aorta_services.payloads.repository import PayloadRepository
from tests.unit.payloads.payload_calls import JOB, OTHER_JOB, Calls

READS = ("get", "find_one", "find")
MARK = "c" * 32
WRITES = ("insert", "update", "delete")


@pytest.fixture
def store_calls(
    context: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> Counter[tuple[str, str]]:
    """(collection, method) -> how often the store's collections were called."""
    counted: Counter[tuple[str, str]] = Counter()
    kind = type(context.store.collection("payloads"))

    def counting(method: str) -> Callable[..., Awaitable[Any]]:
        original = getattr(kind, method)

        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            counted[(self.name, method)] += 1
            return await original(self, *args, **kwargs)

        return wrapper

    for method in (*READS, *WRITES):
        monkeypatch.setattr(kind, method, counting(method))
    return counted


async def test_a_started_job_costs_its_payload_three_writes_and_no_read(
    calls: Calls, store_calls: Counter[tuple[str, str]]
) -> None:
    payload_id = await calls.for_job(JOB, [])
    store_calls.clear()

    await calls.lock(payload_id)
    await calls.release(payload_id)

    payloads = {method: n for (name, method), n in store_calls.items() if name == "payloads"}
    assert payloads == {"update": 3}  # lock, release, the removal of `released`
    document = await calls.store.collection("payloads").get(payload_id)
    assert document[OUTBOX_FIELD] == [] and document["in_use_by_job"] is None
    assert await calls.event_types() == [
        ("created", payload_id),
        ("locked", payload_id),
        ("released", payload_id),
    ]


class Replica:
    """One payloads replica's verbs on the shared store (its own copies and outbox)."""

    def __init__(self, context: ServiceContext, bus: MemoryBus, *, remembered: int = 64) -> None:
        self.repository = PayloadRepository(context.store, remembered=remembered)
        self.outbox = Outbox(bus, context.store, service="payloads")
        self.events = EventPublisher(self.outbox, self.repository)
        contents = PayloadContents(context.blobs)
        self.verbs = InternalVerbs(self.repository, contents, self.events)

    async def prepare(self) -> Replica:
        await self.repository.prepare()
        await self.outbox.watch(self.repository.payloads, written=self.repository.remember)
        return self

    async def mark(self, payload_id: PayloadId, *, commit: str | None, release: str | None) -> None:
        await self.verbs.check_upload(contracts.CheckUpload(payload_id, commit, release))


@pytest.fixture
async def replicas(context: ServiceContext) -> AsyncIterator[tuple[Replica, Replica, list[str]]]:
    network = MemoryNetwork()
    bus = MemoryBus(network)
    received: list[str] = []

    async def collect(event: CloudEvent) -> None:
        received.append(event.event)

    await bus.subscribe_events("aorta.events.payload.>", collect)
    yield await Replica(context, bus).prepare(), await Replica(context, bus).prepare(), received
    await bus.close()


async def test_a_stale_copy_never_refuses_a_lock(
    replicas: tuple[Replica, Replica, list[str]],
) -> None:
    a, b, _ = replicas
    job = JobId(JOB)
    payload_id = (await a.verbs.create_for_job(contracts.CreateForJob(job))).payload_id
    await a.mark(payload_id, commit=MARK, release=None)
    # Replica b ends the mark: a's copy still shows it live.
    await b.mark(payload_id, commit=None, release=MARK)

    await a.verbs.lock(contracts.JobPayload(payload_id, job))

    stored = await a.repository.get(payload_id)
    assert stored.in_use_by_job == job and stored.committing == ()


async def test_a_stale_copy_loses_its_race_and_the_change_is_made_on_a_fresh_read(
    replicas: tuple[Replica, Replica, list[str]],
) -> None:
    a, b, received = replicas
    job = JobId(JOB)
    payload_id = (await a.verbs.create_for_job(contracts.CreateForJob(job))).payload_id
    # Replica b marks an upload in progress: a's copy shows none, and its lock must not win.
    await b.mark(payload_id, commit=MARK, release=None)
    with pytest.raises(AortaError) as refused:
        await a.verbs.lock(contracts.JobPayload(payload_id, job))
    assert refused.value.code == ErrorCode.PAYLOAD_IN_USE

    await b.mark(payload_id, commit=None, release=MARK)
    await b.verbs.lock(contracts.JobPayload(payload_id, job))
    await a.verbs.release(contracts.JobPayload(payload_id, job))

    stored = await a.repository.get(payload_id)
    assert stored.read_only and stored.in_use_by_job is None
    document = await a.repository.get_document(payload_id)
    assert document is not None and document[OUTBOX_FIELD] == []
    # Replica a left `created` staged and b did not know it went out: b published it again
    # under its id (the bus keeps one); every event arrived.
    assert set(received) == {"created", "locked", "released"}


async def test_the_copies_are_bounded(
    context: ServiceContext, store_calls: Counter[tuple[str, str]]
) -> None:
    bus = MemoryBus(MemoryNetwork())
    replica = await Replica(context, bus, remembered=1).prepare()
    first = (await replica.verbs.create_for_job(contracts.CreateForJob(JobId(JOB)))).payload_id
    second = (
        await replica.verbs.create_for_job(contracts.CreateForJob(JobId(OTHER_JOB)))
    ).payload_id
    store_calls.clear()

    await replica.verbs.lock(contracts.JobPayload(second, JobId(OTHER_JOB)))
    assert store_calls[("payloads", "get")] == 0
    await replica.verbs.lock(contracts.JobPayload(first, JobId(JOB)))
    assert store_calls[("payloads", "get")] == 1  # its copy made room for the second's
    await bus.close()
