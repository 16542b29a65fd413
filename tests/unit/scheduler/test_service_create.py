"""Jobs.Create on one scheduler replica: what it stores, and what it leaves when it fails
midway (nothing listed, and no payload behind)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aorta import subjects
from aorta.api import jobs_pb2
from aorta.errors import ErrorCode, NotFound, Unavailable
from aorta.ids import JobId
from aorta.timestamps import UNIX_EPOCH_IN_CLARA_SECONDS
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.repository import JobRepository
from tests.unit.scheduler.job_calls import OTHER_PIPELINE, chain, ids, list_jobs, refused
from tests.unit.scheduler.scheduler_harness import PIPELINE_ID, Harness


async def test_create_stores_a_pending_job_with_its_own_payload(harness: Harness) -> None:
    await chain(harness)
    job_id = await harness.create("spleen-job", priority=0, metadata={"site": "north"})
    status = await harness.status(job_id)
    assert (status.state, status.status) == (
        jobs_pb2.JOB_STATE_PENDING,
        jobs_pb2.JOB_STATUS_HEALTHY,
    )
    assert status.priority == jobs_pb2.JOB_PRIORITY_NORMAL
    assert status.name == "spleen-job"
    assert status.pipeline_id.value == PIPELINE_ID
    assert harness.peers.payloads == {status.payload_id.value: job_id}
    assert dict(status.metadata) == {"site": "north"}
    assert status.created.value > UNIX_EPOCH_IN_CLARA_SECONDS and status.timestamp_created
    assert [(d.name, d.status) for d in status.operator_details] == [
        (name, jobs_pb2.JOB_OPERATOR_STATUS_PENDING) for name in ("first", "second", "third")
    ]
    assert [(n.name, [d.name for d in n.input_dependencies]) for n in status.dag] == [
        ("first", []),
        ("second", ["first"]),
        ("third", ["second"]),
    ]


async def test_create_refuses_an_unknown_pipeline_and_a_bad_name(harness: Harness) -> None:
    await chain(harness)
    missing = await refused(harness.create(pipeline_id=OTHER_PIPELINE))
    assert missing.code == ErrorCode.PIPELINE_NOT_FOUND
    bad_name = await refused(harness.create("no spaces please"))
    assert bad_name.code == ErrorCode.JOB_NAME_INVALID
    bad_priority = await refused(harness.create(priority=9))
    assert bad_priority.code == ErrorCode.JOB_REQUEST_INVALID
    assert harness.peers.payloads == {}


async def test_create_leaves_nothing_when_the_payload_cannot_be_made(harness: Harness) -> None:
    await chain(harness)
    await harness.peers.stop()
    failure = await refused(harness.create())
    assert failure.code == ErrorCode.SERVICE_UNAVAILABLE
    assert "pipelines service" in failure.messages[0]
    harness.peers.served.clear()
    await harness.peers.serve(harness.client)
    for subscription in harness.peers.served[1:]:
        await subscription.drain()
    failure = await refused(harness.create())
    assert "no payloads service answers" in failure.messages[0]
    listed = await list_jobs(harness)
    assert [item for item in listed if item.job_details.job_id.value] == []


STORE_DOWN = "the state store went away"


def revealing_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The write that reveals a new job fails, after the job's payload was made."""
    modify = JobRepository.modify

    async def failing(
        self: JobRepository, job_id: JobId, change: Any, *, hidden: bool = False
    ) -> JobRecord:
        if hidden:
            raise Unavailable(STORE_DOWN)
        return await modify(self, job_id, change, hidden=hidden)

    monkeypatch.setattr(JobRepository, "modify", failing)


async def stored_jobs(harness: Harness) -> list[JobRecord]:
    """Every job in the store, hidden ones too; each must have its definition."""
    store = harness.replicas[0].context.store
    jobs = [JobRecord.from_document(d) for d in await store.collection("jobs").find({})]
    definitions = await store.collection("job_definitions").find({})
    assert sorted(d["id"] for d in definitions) == sorted(job.id for job in jobs)
    return jobs


async def test_a_create_that_fails_after_the_payload_was_made_discards_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await chain(harness)
    revealing_fails(monkeypatch)
    failure = await refused(harness.create())
    assert failure.code == ErrorCode.SERVICE_UNAVAILABLE
    assert STORE_DOWN in " ".join(failure.messages)
    assert len(harness.peers.discarded) == 1 and harness.peers.payloads == {}
    assert ids(await list_jobs(harness)) == []
    assert await stored_jobs(harness) == []


async def test_a_failed_discard_keeps_the_creates_own_error_and_the_hidden_job(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await chain(harness)
    revealing_fails(monkeypatch)
    harness.peers.discard_error = Unavailable("the payloads service went away too")
    failure = await refused(harness.create())
    assert failure.code == ErrorCode.SERVICE_UNAVAILABLE
    assert STORE_DOWN in " ".join(failure.messages)
    assert "too" not in " ".join(failure.messages)
    assert ids(await list_jobs(harness)) == []
    # The hidden job is the payload's only trace: a leader's sweep discards both later.
    (job_id,) = harness.peers.payloads.values()
    assert [(r.id, r.visible) for r in await stored_jobs(harness)] == [(job_id, False)]


async def test_a_refused_payload_removes_the_job_without_a_discard(harness: Harness) -> None:
    await chain(harness)
    harness.peers.create_error = NotFound(
        "no payload has id 0123", code=ErrorCode.PAYLOAD_NOT_FOUND
    )
    failure = await refused(harness.create())
    assert failure.code == ErrorCode.PAYLOAD_NOT_FOUND
    # A refusal means nothing was made: there is nothing to discard and nothing to keep.
    assert not harness.peers.discarding.is_set()
    assert await stored_jobs(harness) == []


async def test_a_lost_payload_answer_keeps_the_hidden_job_for_the_sweep(harness: Harness) -> None:
    await chain(harness)
    # A timeout: the payload may still be in the making although a discard now finds none.
    harness.peers.create_error = Unavailable("no answer from payloads.create_for_job within 5 s")
    failure = await refused(harness.create())
    assert failure.code == ErrorCode.SERVICE_UNAVAILABLE
    assert ids(await list_jobs(harness)) == []
    # Asked for, none found: the job stays hidden, the only trace of what may yet appear.
    (kept,) = await stored_jobs(harness)
    assert not kept.visible and harness.peers.discarded == [kept.id]


async def test_a_cancelled_create_still_discards_its_payload_and_job(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await chain(harness)
    revealing = asyncio.Event()
    modify = JobRepository.modify

    async def hanging(
        self: JobRepository, job_id: JobId, change: Any, *, hidden: bool = False
    ) -> JobRecord:
        if hidden:
            revealing.set()
            await asyncio.Event().wait()
        return await modify(self, job_id, change, hidden=hidden)

    monkeypatch.setattr(JobRepository, "modify", hanging)
    harness.peers.discard_hold = asyncio.Event()
    creating = asyncio.create_task(harness.create())
    await revealing.wait()
    # The bus cancels a handler that outlives its drain timeout: do as it does.
    (handler,) = [
        task
        for task in asyncio.all_tasks()
        if task.get_name() == f"aorta.bus.serve:{subjects.SCHEDULER_CREATE}"
    ]
    handler.cancel()
    await harness.peers.discarding.wait()
    # Cancelled again while it cleans up: the cleanup still finishes.
    handler.cancel()
    await asyncio.sleep(0.05)  # the second cancellation lands while the discard is held
    harness.peers.discard_hold.set()
    failure = await refused(creating)
    assert "stopped before answering" in " ".join(failure.messages)
    assert len(harness.peers.discarded) == 1 and harness.peers.payloads == {}
    assert await stored_jobs(harness) == []
