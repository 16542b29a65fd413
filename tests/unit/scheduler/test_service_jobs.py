"""The Jobs verbs of one scheduler replica: what each answers, refuses and stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aorta import subjects
from aorta.api import common_pb2, jobs_pb2
from aorta.bus import CloudEvent
from aorta.errors import Conflict, ErrorCode
from aorta.payload_layout import operator_log_key
from tests.unit.scheduler.job_calls import (
    CHAIN_EVENTS,
    OTHER_PIPELINE,
    appender,
    chain,
    ids,
    list_jobs,
    refused,
    wait_for,
)
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import PIPELINE_ID, TEMPLATED, Harness, ident, single


async def test_start_locks_the_payload_and_queues_the_job(harness: Harness) -> None:
    await chain(harness)
    job_id = await harness.create()
    started = await harness.start(job_id)
    assert started.header.code == 0
    assert started.state in (jobs_pb2.JOB_STATE_PENDING, jobs_pb2.JOB_STATE_RUNNING)
    assert started.priority == jobs_pb2.JOB_PRIORITY_NORMAL
    payload = (await harness.status(job_id)).payload_id.value
    assert harness.peers.locked == [payload]
    final = await harness.stopped(job_id)
    assert final.status == jobs_pb2.JOB_STATUS_HEALTHY
    assert final.started.value >= final.created.value > 0
    assert final.stopped.value >= final.started.value
    assert all(d.status == jobs_pb2.JOB_OPERATOR_STATUS_COMPLETED for d in final.operator_details)
    assert all(d.started.value and d.stopped.value for d in final.operator_details)
    await wait_for(lambda: harness.peers.released == [payload])


async def test_starting_twice_is_a_state_conflict(harness: Harness) -> None:
    await chain(harness)
    job_id = await harness.create()
    await harness.start(job_id)
    again = await refused(harness.start(job_id))
    assert again.code == ErrorCode.JOB_STATE_CONFLICT
    assert "can be started once" in again.messages[0]


async def test_bad_variables_leave_the_job_startable(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "templated", {"t.yaml": TEMPLATED})
    replica = await harness.replica()
    job_id = await harness.create()
    undeclared = await refused(harness.start(job_id, {"DEPTH": "3", "COLOUR": "red"}))
    assert undeclared.code == ErrorCode.JOB_VARIABLES_INVALID
    assert "'COLOUR' is not a parameter" in " ".join(undeclared.messages)
    unresolved = await refused(harness.start(job_id))
    assert "DEPTH" in " ".join(unresolved.messages)
    assert (await harness.status(job_id)).state == jobs_pb2.JOB_STATE_PENDING
    assert harness.peers.locked == []
    await harness.start(job_id, {"depth": "3"})
    assert (await harness.stopped(job_id)).status == jobs_pb2.JOB_STATUS_HEALTHY
    assert replica.executor.starts[0].command == ("python", "main.py", "fast", "3")


async def test_a_start_refused_by_an_upload_in_commit_leaves_the_job_startable(
    harness: Harness,
) -> None:
    await chain(harness)
    job_id = await harness.create()
    payload = (await harness.status(job_id)).payload_id.value
    # What the payloads service answers while an upload commits a file into the payload.
    harness.peers.lock_error = Conflict(
        f"payload {payload} is still receiving files; start job {job_id} once its upload ends",
        code=ErrorCode.PAYLOAD_IN_USE,
    )
    busy = await refused(harness.start(job_id))
    assert busy.code == ErrorCode.PAYLOAD_IN_USE
    assert "still receiving files" in " ".join(busy.messages)
    assert (await harness.status(job_id)).state == jobs_pb2.JOB_STATE_PENDING
    assert harness.peers.locked == []
    harness.peers.lock_error = None
    assert (await harness.start(job_id)).header.code == 0
    assert (await harness.stopped(job_id)).status == jobs_pb2.JOB_STATUS_HEALTHY
    assert harness.peers.locked == [payload]


async def test_a_job_that_can_never_fit_is_faulted_at_once(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single(requests="{gpu: 1}")})
    replica = await harness.replica()
    job_id = await harness.create()
    started = await harness.start(job_id)
    assert (started.state, started.status) == (
        jobs_pb2.JOB_STATE_STOPPED,
        jobs_pb2.JOB_STATUS_FAULTED,
    )
    status = await harness.status(job_id)
    assert "requests 1 GPU but this node has 0" in status.messages[0]
    assert harness.peers.locked == [] and replica.executor.starts == []


async def test_cancel_of_a_created_job_and_of_a_stopped_one(harness: Harness) -> None:
    await chain(harness)
    job_id = await harness.create()
    canceled = await harness.cancel(job_id, "entered by mistake")
    assert (canceled.job_id.value, canceled.job_state, canceled.job_status) == (
        job_id,
        jobs_pb2.JOB_STATE_STOPPED,
        jobs_pb2.JOB_STATUS_CANCELED,
    )
    assert list((await harness.status(job_id)).messages) == ["canceled: entered by mistake"]
    again = await refused(harness.cancel(job_id))
    assert again.code == ErrorCode.JOB_STATE_CONFLICT
    assert (await refused(harness.start(job_id))).code == ErrorCode.JOB_STATE_CONFLICT


async def test_unknown_and_malformed_job_ids(harness: Harness) -> None:
    await chain(harness)
    assert (await refused(harness.status("0" * 32))).code == ErrorCode.JOB_NOT_FOUND
    assert (await refused(harness.status("not-an-id"))).code == ErrorCode.JOB_ID_INVALID
    assert (await refused(harness.cancel("f" * 32))).code == ErrorCode.JOB_NOT_FOUND


async def test_list_is_newest_first_and_filters(harness: Harness) -> None:
    await chain(harness, second=Behaviour(exit_code=1))
    harness.peers.add_pipeline(OTHER_PIPELINE, "single", {"s.yaml": single()})
    empty = await list_jobs(harness)
    assert len(empty) == 1 and not empty[0].HasField("job_details")
    created = await harness.create("created-only")
    await asyncio.sleep(0.01)
    faulted = await harness.run("faulted")
    await harness.stopped(faulted)
    await asyncio.sleep(0.01)
    other = await harness.run("other", pipeline_id=OTHER_PIPELINE)
    done = await harness.stopped(other)
    everything = await list_jobs(harness)
    assert ids(everything) == [other, faulted, created]
    assert all(i.header.code == 0 and i.job_details.payload_id.value for i in everything)
    assert everything[0].job_details.timestamp_stopped
    Filter = jobs_pb2.JobsListRequest.JobFilter
    assert ids(await list_jobs(harness, Filter(has_state=[jobs_pb2.JOB_STATE_PENDING]))) == [
        created
    ]
    by_status = Filter(has_status=[jobs_pb2.JOB_STATUS_FAULTED])
    assert ids(await list_jobs(harness, by_status)) == [faulted]
    by_pipeline = Filter(pipeline_id=[ident(OTHER_PIPELINE)])
    assert ids(await list_jobs(harness, by_pipeline)) == [other]
    later = common_pb2.Timestamp(value=done.created.value + 1)
    assert ids(await list_jobs(harness, Filter(created_after=later))) == []
    earlier = common_pb2.Timestamp(value=done.created.value - 60)
    assert ids(await list_jobs(harness, Filter(created_after=earlier))) == ids(everything)
    before = Filter(completed_before=common_pb2.Timestamp(value=done.stopped.value + 2))
    assert ids(await list_jobs(harness, before)) == [other, faulted]


async def test_metadata_is_added_and_removed_by_clara_rules(harness: Harness) -> None:
    await chain(harness)
    job_id = await harness.create(metadata={"Site": "north"})
    add = jobs_pb2.JobsAddMetadataRequest(job_id=ident(job_id))
    add.metadata.update({"owner": "ana"})
    added = await harness.call(
        subjects.SCHEDULER_ADD_METADATA, add, jobs_pb2.JobsAddMetadataResponse
    )
    assert dict(added.metadata) == {"Site": "north", "owner": "ana"}
    clash = jobs_pb2.JobsAddMetadataRequest(job_id=ident(job_id))
    clash.metadata.update({"site": "south"})
    failure = await refused(
        harness.call(subjects.SCHEDULER_ADD_METADATA, clash, jobs_pb2.JobsAddMetadataResponse)
    )
    assert failure.code == ErrorCode.METADATA_INVALID
    remove = jobs_pb2.JobsRemoveMetadataRequest(job_id=ident(job_id), keys=["SITE", "absent"])
    removed = await harness.call(
        subjects.SCHEDULER_REMOVE_METADATA, remove, jobs_pb2.JobsRemoveMetadataResponse
    )
    assert dict(removed.metadata) == {"owner": "ana"}
    assert dict((await harness.status(job_id)).metadata) == {"owner": "ana"}


async def read_logs(harness: Harness, job_id: str, operator: str) -> list[str]:
    request = jobs_pb2.JobsReadLogsRequest(job_id=ident(job_id), operator_name=operator)
    stream = harness.client.request_stream(
        subjects.SCHEDULER_READ_LOGS, request.SerializeToString()
    )
    messages = [jobs_pb2.JobsReadLogsResponse.FromString(item) async for item in stream]
    assert messages and all(m.header.code == 0 for m in messages)
    return [line for message in messages for line in message.logs]


async def bytes_of(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_logs_come_from_the_run_then_from_the_blob_store(harness: Harness) -> None:
    lines = tuple(f"working {n}" for n in range(3))
    await chain(harness, second=Behaviour(hang=True, lines=lines))
    job_id = await harness.run()
    await harness.running(job_id, "second")
    assert await read_logs(harness, job_id, "second") == list(lines)
    assert await read_logs(harness, job_id, "third") == []
    blobs = harness.replicas[0].context.blobs
    await blobs.put(operator_log_key(job_id, "first"), bytes_of(b"one\ntw", b"o\nthree"))
    assert await read_logs(harness, job_id, "FIRST") == ["one", "two", "three"]
    unknown = await refused(read_logs(harness, job_id, "fourth"))
    assert unknown.code == ErrorCode.JOB_OPERATOR_NOT_FOUND
    await harness.cancel(job_id)


async def test_every_change_is_published_after_it_is_stored(harness: Harness) -> None:
    await chain(harness)
    seen: list[CloudEvent] = []
    subscription = await harness.client.subscribe_events(
        "aorta.events.job.>", appender(seen), deliver="all"
    )
    job_id = await harness.run()
    await harness.stopped(job_id)
    await wait_for(lambda: any(e.event == "stopped" for e in seen))
    await subscription.drain()
    names = [(e.event, e.data.get("operator")) for e in seen if e.subject == job_id]
    assert names == CHAIN_EVENTS
    stopped = seen[-1]
    assert stopped.source == "aorta/scheduler"
    assert (stopped.data["state"], stopped.data["status"]) == ("STOPPED", "HEALTHY")
