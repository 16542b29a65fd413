"""`aorta.v1.Jobs/Delete` on a scheduler replica: a stopped job goes with its logs and payload;
a job that has not stopped, or another user's, stays."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aorta import subjects
from aorta.api import aorta_jobs_pb2
from aorta.auth.principal import Principal, Role
from aorta.bus import CloudEvent
from aorta.errors import ErrorCode, Forbidden
from aorta.payload_layout import operator_log_key
from tests.unit.scheduler.job_calls import appender, chain, ids, list_jobs, refused, wait_for
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import Harness, ident

ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
ADMIN = Principal("root", frozenset({Role.ADMIN}))


async def delete(harness: Harness, job_id: str) -> aorta_jobs_pb2.JobsDeleteResponse:
    request = aorta_jobs_pb2.JobsDeleteRequest(job_id=ident(job_id))
    response: aorta_jobs_pb2.JobsDeleteResponse = await harness.call(
        subjects.SCHEDULER_DELETE, request, aorta_jobs_pb2.JobsDeleteResponse
    )
    return response


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_a_stopped_job_goes_with_its_logs_and_payload(harness: Harness) -> None:
    await chain(harness)
    seen: list[CloudEvent] = []
    subscription = await harness.client.subscribe_events(
        "aorta.events.job.>", appender(seen), deliver="all"
    )
    job_id = await harness.run()
    final = await harness.stopped(job_id)
    payload = final.payload_id.value
    await wait_for(lambda: harness.peers.released == [payload])
    blobs = harness.replicas[0].context.blobs
    for operator in ("first", "second"):
        await blobs.put(operator_log_key(job_id, operator), one_chunk(b"a line\n"))
    answer = await delete(harness, job_id)
    assert (answer.job_id.value, answer.payload_id.value) == (job_id, payload)
    assert answer.logs_removed == 2
    assert harness.peers.deleted == [job_id]
    assert [info.key async for info in blobs.list(f"logs/{job_id}/")] == []
    assert ids(await list_jobs(harness)) == []
    gone = await refused(harness.status(job_id))
    assert gone.code == ErrorCode.JOB_NOT_FOUND
    again = await refused(delete(harness, job_id))
    assert again.code == ErrorCode.JOB_NOT_FOUND
    await wait_for(lambda: any(e.event == "deleted" for e in seen))
    await subscription.drain()
    assert [e.event for e in seen if e.subject == job_id][-2:] == ["stopped", "deleted"]


async def test_a_job_that_has_not_stopped_is_refused_and_stays(harness: Harness) -> None:
    await chain(harness, first=Behaviour(hang=True))
    created = await harness.create()
    running = await harness.run()
    for job_id, phase in ((created, "created"), (running, "queued|running")):
        error = await refused(delete(harness, job_id))
        assert error.code == ErrorCode.JOB_STATE_CONFLICT
        assert "not stopped: cancel it first" in error.messages[0]
        assert any(word in error.messages[0] for word in phase.split("|"))
        assert (await harness.status(job_id)).job_id.value == job_id
    assert harness.peers.deleted == []
    await harness.cancel(running)
    await harness.stopped(running)
    await wait_for(lambda: len(harness.peers.released) == 1)
    assert (await delete(harness, running)).job_id.value == running


async def test_only_the_owner_or_an_admin_deletes_a_job(harness: Harness) -> None:
    await chain(harness)
    alice = harness.acting_as(ALICE)
    jobs = [await alice.create(), await alice.create()]
    for job_id in jobs:
        await alice.cancel(job_id)
    with pytest.raises(Forbidden, match=f"job {jobs[0]} belongs to another user"):
        await delete(harness.acting_as(BOB), jobs[0])
    assert harness.peers.deleted == []
    await delete(alice, jobs[0])
    await delete(harness.acting_as(ADMIN), jobs[1])
    assert harness.peers.deleted == jobs
