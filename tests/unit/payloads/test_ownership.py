"""Payloads record who created them (a job's PIPELINE payload: the job's owner); every verb
but Create and Details is the owner's or an admin's, Details the owner's, a viewer's and an
admin's. Callers ride in the bus header the
gateway (or the scheduler, for a job's payload) sets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aorta import subjects
from aorta.api import payloads_pb2
from aorta.auth.principal import ANONYMOUS, Principal, Role
from aorta.errors import Forbidden
from tests.unit.payloads.payload_calls import JOB, Calls, ident

ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
VIEWER = Principal("vera", frozenset({Role.VIEWER}))
ADMIN = Principal("root", frozenset({Role.ADMIN}))

Attempt = Callable[[Calls, str], Awaitable[Any]]


async def add_metadata(calls: Calls, payload_id: str) -> None:
    request = payloads_pb2.PayloadsAddMetadataRequest(
        payload_id=ident(payload_id), metadata={"k": "v"}
    )
    await calls.bus.request(
        subjects.PAYLOADS_ADD_METADATA, request.SerializeToString(), headers=calls.headers
    )


async def remove_metadata(calls: Calls, payload_id: str) -> None:
    request = payloads_pb2.PayloadsRemoveMetadataRequest(payload_id=ident(payload_id), keys=["k"])
    await calls.bus.request(
        subjects.PAYLOADS_REMOVE_METADATA, request.SerializeToString(), headers=calls.headers
    )


ATTEMPTS: dict[str, Attempt] = {
    "upload": lambda calls, payload: calls.upload(payload, "more.txt", b"more"),
    "check_upload": lambda calls, payload: calls.json(
        subjects.PAYLOADS_CHECK_UPLOAD, {"payload_id": payload}
    ),
    "file_added": lambda calls, payload: calls.file_added(payload, "in.txt", 2, None),
    "download": lambda calls, payload: calls.json(
        subjects.PAYLOADS_LOCATE, {"payload_id": payload, "name": "/input/in.txt"}
    ),
    "remove": lambda calls, payload: calls.remove(payload, "/input/in.txt"),
    "delete": lambda calls, payload: calls.delete(payload),
    "add_metadata": add_metadata,
    "remove_metadata": remove_metadata,
}


async def alices_payload(calls: Calls) -> str:
    alice = calls.acting_as(ALICE)
    payload_id = await alice.create()
    await alice.upload(payload_id, "in.txt", b"hi")
    return payload_id


async def test_the_creator_is_recorded_and_details_name_it_to_who_may_read(
    calls: Calls,
) -> None:
    payload_id = await alices_payload(calls)
    for caller in (ALICE, VIEWER, ADMIN):
        items = await calls.acting_as(caller).details_items(payload_id)
        assert [item.owner for item in items] == ["alice"]
        assert items[0].details.file.name == "/input/in.txt"


async def test_another_user_may_not_read_a_payloads_details(calls: Calls) -> None:
    payload_id = await alices_payload(calls)
    with pytest.raises(Forbidden) as caught:
        await calls.acting_as(BOB).details_items(payload_id)
    assert caught.value.messages == (f"payload {payload_id} belongs to another user",)


@pytest.mark.parametrize("verb", ATTEMPTS, ids=str)
async def test_another_user_is_refused_and_nothing_changes(calls: Calls, verb: str) -> None:
    payload_id = await alices_payload(calls)
    with pytest.raises(Forbidden) as caught:
        await ATTEMPTS[verb](calls.acting_as(BOB), payload_id)
    assert caught.value.messages == (f"payload {payload_id} belongs to another user",)
    assert await calls.files(payload_id) == {"/input/in.txt": 2}


@pytest.mark.parametrize("caller", [ALICE, ADMIN], ids=["owner", "admin"])
async def test_the_owner_and_an_admin_may(calls: Calls, caller: Principal) -> None:
    payload_id = await alices_payload(calls)
    acting = calls.acting_as(caller)
    await acting.upload(payload_id, "more.txt", b"more")
    located = await ATTEMPTS["download"](acting, payload_id)
    assert located["name"] == "/input/in.txt"
    await add_metadata(acting, payload_id)
    await remove_metadata(acting, payload_id)
    await acting.remove(payload_id, "/input/more.txt")
    await acting.delete(payload_id)


async def test_a_jobs_payload_is_its_owners_and_takes_only_its_own_inputs(calls: Calls) -> None:
    payload_id = await alices_payload(calls)
    with pytest.raises(Forbidden, match=f"payload {payload_id} belongs to another user"):
        await calls.acting_as(BOB).for_job(JOB, [payload_id])
    job_payload = await calls.acting_as(ALICE).for_job(JOB, [payload_id])
    [item] = await calls.acting_as(VIEWER).details_items(job_payload)
    assert item.owner == "alice" and item.details.file.name == "/input/in.txt"
    with pytest.raises(Forbidden):
        await calls.acting_as(BOB).upload(job_payload, "x.txt", b"x")


async def test_an_admin_may_give_a_users_inputs_to_a_job_it_creates(calls: Calls) -> None:
    payload_id = await alices_payload(calls)
    job_payload = await calls.acting_as(ADMIN).for_job(JOB, [payload_id])
    [item] = await calls.details_items(job_payload)
    assert item.owner == "root"


async def test_a_payload_made_without_authentication_is_an_admins(calls: Calls) -> None:
    payload_id = await calls.acting_as(ANONYMOUS).create()
    [item] = await calls.details_items(payload_id)
    assert item.owner == ""
    with pytest.raises(Forbidden, match="created before authentication was turned on"):
        await calls.acting_as(ALICE).upload(payload_id, "in.txt", b"hi")
    with pytest.raises(Forbidden, match="created before authentication was turned on"):
        await calls.acting_as(ALICE).details_items(payload_id)
    await calls.acting_as(VIEWER).details_items(payload_id)
    await calls.acting_as(ADMIN).upload(payload_id, "in.txt", b"hi")


async def test_a_record_stored_before_owners_loads_as_an_admins(calls: Calls) -> None:
    payload_id = await alices_payload(calls)
    collection = calls.store.collection("payloads")
    document = dict(await collection.get(payload_id))
    del document["owner"]
    await collection.delete(payload_id)
    await collection.insert(
        {k: v for k, v in document.items() if k not in ("version", "created_at", "updated_at")}
    )
    [item] = await calls.details_items(payload_id)
    assert item.owner == ""
    with pytest.raises(Forbidden):
        await calls.acting_as(ALICE).delete(payload_id)


async def test_only_the_owner_or_an_admin_deletes_a_payload_with_its_job(calls: Calls) -> None:
    alice = calls.acting_as(ALICE)
    job_payload = await alice.for_job(JOB, [])
    with pytest.raises(Forbidden, match=f"payload {job_payload} belongs to another user"):
        await calls.acting_as(BOB).delete_for_job(JOB)
    assert await calls.acting_as(ADMIN).delete_for_job(JOB) == {"payload_id": job_payload}


async def test_only_an_admin_forces_the_deletion_of_a_stopped_jobs_payload(calls: Calls) -> None:
    alice = calls.acting_as(ALICE)
    job_payload = await alice.for_job(JOB, [])
    document = {"payload_id": job_payload, "job_id": JOB}
    await calls.json(subjects.PAYLOADS_LOCK, document)
    await calls.json(subjects.PAYLOADS_RELEASE, document)
    with pytest.raises(
        Forbidden, match=f"only an admin may force the deletion of payload {job_payload}"
    ):
        await alice.delete(job_payload, force=True)
    await calls.acting_as(ADMIN).delete(job_payload, force=True)
    assert await calls.acting_as(ADMIN).delete_for_job(JOB) == {"payload_id": None}
