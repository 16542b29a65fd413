"""Every change that can alter a payload's Details comes with one of its events, and Details
says when it is settled: the gateway keeps only such answers, until the payload's next event
(docs/events.md; docs/performance.md, "Read paths under load")."""

from __future__ import annotations

import asyncio
import time

from aorta import subjects
from aorta.api import payloads_pb2
from aorta.bus import CloudEvent
from aorta.payload_layout import input_key
from tests.unit.payloads.payload_calls import JOB, Calls, chunks, ident


async def events_of(calls: Calls, payload_id: str, count: int) -> list[CloudEvent]:
    """The first `count` events of the payload, once they all arrived (30 s at most)."""
    deadline = time.monotonic() + 30
    while len(found := [e for e in calls.events if e.subject == payload_id]) < count:
        assert time.monotonic() < deadline, [event.event for event in found]
        await asyncio.sleep(0.01)
    return found[:count]


async def settled(calls: Calls, payload_id: str) -> list[bool]:
    return [item.settled for item in await calls.details_items(payload_id)]


async def test_metadata_changes_publish_metadata_changed(calls: Calls) -> None:
    payload_id = await calls.create({"a": "1"})
    add = payloads_pb2.PayloadsAddMetadataRequest(
        payload_id=ident(payload_id), metadata={"b": "2", "c": "3"}
    )
    await calls.bus.request(subjects.PAYLOADS_ADD_METADATA, add.SerializeToString())
    remove = payloads_pb2.PayloadsRemoveMetadataRequest(payload_id=ident(payload_id), keys=["b"])
    await calls.bus.request(subjects.PAYLOADS_REMOVE_METADATA, remove.SerializeToString())
    created, added, removed = await events_of(calls, payload_id, 3)
    assert (created.event, added.event, removed.event) == (
        "created",
        "metadata_changed",
        "metadata_changed",
    )
    assert added.data == {"payload_id": payload_id, "change": "added", "keys": 2}
    assert removed.data == {"payload_id": payload_id, "change": "removed", "keys": 1}
    assert await calls.store.collection("payloads").count({"outbox_pending": True}) == 0


async def test_a_job_payload_publishes_locked_and_released(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    await calls.lock(payload_id)
    await calls.release(payload_id)
    events = await events_of(calls, payload_id, 3)
    assert [event.event for event in events] == ["created", "locked", "released"]
    assert events[1].data == {"payload_id": payload_id, "job_id": JOB}


async def test_details_is_settled_only_while_every_change_comes_with_an_event(
    calls: Calls,
) -> None:
    payload_id = await calls.create()
    assert await settled(calls, payload_id) == [True]
    await calls.upload(payload_id, "a", b"a")
    assert await settled(calls, payload_id) == [True]
    # An upload's object before its record (and its event), or one refused and about to go.
    await calls.blobs.put(input_key(payload_id, "b"), chunks(b"b"))
    assert await settled(calls, payload_id) == [True, False]
    # Replaced at another size, the record not yet updated.
    await calls.blobs.put(input_key(payload_id, "a"), chunks(b"aa"))
    assert await settled(calls, payload_id) == [False, False]


async def test_a_job_payload_in_use_is_not_settled(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    assert await settled(calls, payload_id) == [True]
    await calls.lock(payload_id)
    # The job's outputs appear now, with no event of the payload.
    await calls.push_output(payload_id, "op", {"out.txt": b"out"})
    assert await settled(calls, payload_id) == [False]
    await calls.release(payload_id)
    assert await settled(calls, payload_id) == [True]
