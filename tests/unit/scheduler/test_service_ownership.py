"""Jobs record who created them: Start, Cancel, ReadLogs and the metadata verbs are the
owner's or an admin's, Status the owner's, a viewer's and an admin's, and List answers a `user`
with its own jobs. Callers ride in the bus header the gateway sets."""

from __future__ import annotations

from typing import Any

import pytest

from aorta import subjects
from aorta.api import jobs_pb2
from aorta.auth.principal import ANONYMOUS, Principal, Role
from aorta.errors import Forbidden
from tests.unit.scheduler.job_calls import chain, ids, list_jobs
from tests.unit.scheduler.scheduler_harness import Harness, ident

ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
VIEWER = Principal("vera", frozenset({Role.VIEWER}))
ADMIN = Principal("root", frozenset({Role.ADMIN}))


async def read_logs(harness: Harness, job_id: str) -> list[jobs_pb2.JobsReadLogsResponse]:
    request = jobs_pb2.JobsReadLogsRequest(job_id=ident(job_id), operator_name="first")
    stream = harness.client.request_stream(
        subjects.SCHEDULER_READ_LOGS, request.SerializeToString(), headers=harness.headers
    )
    return [jobs_pb2.JobsReadLogsResponse.FromString(item) async for item in stream]


async def add_metadata(harness: Harness, job_id: str) -> Any:
    request = jobs_pb2.JobsAddMetadataRequest(job_id=ident(job_id), metadata={"k": "v"})
    return await harness.call(
        subjects.SCHEDULER_ADD_METADATA, request, jobs_pb2.JobsAddMetadataResponse
    )


async def remove_metadata(harness: Harness, job_id: str) -> Any:
    request = jobs_pb2.JobsRemoveMetadataRequest(job_id=ident(job_id), keys=["k"])
    return await harness.call(
        subjects.SCHEDULER_REMOVE_METADATA, request, jobs_pb2.JobsRemoveMetadataResponse
    )


ATTEMPTS = {
    "start": lambda harness, job_id: harness.start(job_id),
    "cancel": lambda harness, job_id: harness.cancel(job_id, "mine now"),
    "read_logs": read_logs,
    "add_metadata": add_metadata,
    "remove_metadata": remove_metadata,
}


async def test_the_creator_is_recorded_and_passed_to_the_jobs_payload(harness: Harness) -> None:
    await chain(harness)
    job_id = await harness.acting_as(ALICE).create()
    for caller in (ALICE, VIEWER, ADMIN):
        answer = await harness.acting_as(caller).owned_status(job_id)
        assert answer.owner == "alice" and answer.status.job_id.value == job_id
    assert list(harness.peers.owners.values()) == ["alice"]
    assert harness.peers.callers == [ALICE]


async def test_another_user_may_not_read_a_jobs_status(harness: Harness) -> None:
    await chain(harness)
    job_id = await harness.acting_as(ALICE).create("patient-1234", metadata={"mrn": "1234"})
    with pytest.raises(Forbidden) as caught:
        await harness.acting_as(BOB).owned_status(job_id)
    assert caught.value.messages == (f"job {job_id} belongs to another user",)
    unowned = await harness.create()
    with pytest.raises(Forbidden, match="created before authentication was turned on"):
        await harness.acting_as(ALICE).owned_status(unowned)
    for caller in (VIEWER, ADMIN):
        assert (await harness.acting_as(caller).owned_status(unowned)).owner == ""


async def test_inputs_the_caller_may_not_use_refuse_the_create_and_leave_nothing(
    harness: Harness,
) -> None:
    await chain(harness)
    payload = "0123456789abcdef0123456789abcdef"
    harness.peers.create_error = Forbidden(f"payload {payload} belongs to another user")
    with pytest.raises(Forbidden, match=f"payload {payload} belongs to another user"):
        await harness.acting_as(BOB).create()
    assert not harness.peers.discarding.is_set()
    assert await harness.replicas[0].context.store.collection("jobs").find({}) == []


@pytest.mark.parametrize("verb", ATTEMPTS, ids=str)
async def test_another_user_is_refused_and_nothing_changes(harness: Harness, verb: str) -> None:
    await chain(harness)
    job_id = await harness.acting_as(ALICE).create()
    with pytest.raises(Forbidden) as caught:
        await ATTEMPTS[verb](harness.acting_as(BOB), job_id)
    assert caught.value.messages == (f"job {job_id} belongs to another user",)
    status = await harness.status(job_id)
    assert status.state == jobs_pb2.JOB_STATE_PENDING and dict(status.metadata) == {}
    assert harness.peers.locked == []


async def test_the_owner_may_act_on_its_job(harness: Harness) -> None:
    await chain(harness)
    alice = harness.acting_as(ALICE)
    job_id = await alice.create()
    await add_metadata(alice, job_id)
    await remove_metadata(alice, job_id)
    await alice.start(job_id)
    assert (await alice.stopped(job_id)).status == jobs_pb2.JOB_STATUS_HEALTHY
    assert [message.header.code for message in await read_logs(alice, job_id)] == [0]


async def test_an_admin_may_act_on_any_job(harness: Harness) -> None:
    await chain(harness)
    job_id = await harness.acting_as(ALICE).create()
    admin = harness.acting_as(ADMIN)
    await add_metadata(admin, job_id)
    await remove_metadata(admin, job_id)
    await read_logs(admin, job_id)
    canceled = await admin.cancel(job_id, "an admin stopped it")
    assert canceled.job_status == jobs_pb2.JOB_STATUS_CANCELED


async def test_list_answers_a_user_with_its_own_jobs_only(harness: Harness) -> None:
    await chain(harness)
    alices = [await harness.acting_as(ALICE).create(f"a{n}") for n in range(2)]
    bobs = await harness.acting_as(BOB).create("b")
    everyone = {*alices, bobs}
    assert set(ids(await list_jobs(harness.acting_as(ALICE)))) == set(alices)
    assert ids(await list_jobs(harness.acting_as(BOB))) == [bobs]
    for caller in (VIEWER, ADMIN, ANONYMOUS):
        assert set(ids(await list_jobs(harness.acting_as(caller)))) == everyone
    filtered = jobs_pb2.JobsListRequest.JobFilter(has_state=[jobs_pb2.JOB_STATE_PENDING])
    assert set(ids(await list_jobs(harness.acting_as(ALICE), filtered))) == set(alices)


async def test_a_job_made_without_authentication_is_an_admins(harness: Harness) -> None:
    await chain(harness)
    job_id = await harness.create()
    assert (await harness.owned_status(job_id)).owner == ""
    assert ids(await list_jobs(harness.acting_as(ALICE))) == []
    with pytest.raises(Forbidden, match="created before authentication was turned on"):
        await harness.acting_as(ALICE).cancel(job_id)
    await harness.acting_as(ADMIN).cancel(job_id)


async def test_a_job_stored_before_owners_loads_as_an_admins(harness: Harness) -> None:
    await chain(harness)
    job_id = await harness.acting_as(ALICE).create()
    jobs = harness.replicas[0].context.store.collection("jobs")
    document = await jobs.get(job_id)
    await jobs.delete(job_id)
    store_fields = ("owner", "version", "created_at", "updated_at")
    await jobs.insert({key: value for key, value in document.items() if key not in store_fields})
    with pytest.raises(Forbidden):
        await harness.acting_as(ALICE).start(job_id)
    assert (await harness.owned_status(job_id)).owner == ""
