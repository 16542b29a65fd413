"""The audit log: mutating calls recorded before and after (and refused when the record cannot
be written), reads of bytes and refusals recorded once, viewer reads not at all; records
published on `aorta.audit.>`, listed by the Audit API, swept by age."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from aorta import subjects
from aorta.api import (
    aorta_services_pb2,
    audit_pb2,
    audit_pb2_grpc,
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    payloads_pb2,
    payloads_pb2_grpc,
)
from aorta.auth.principal import Role
from aorta.bus import Request
from aorta.errors import Unavailable
from aorta.store import Collection, StateStore
from aorta.store.factory import open_state_store
from aorta.timestamps import utcnow
from aorta_services.gateway.audit import COLLECTION, AuditTrail
from aorta_services.gateway.audit_record import AuditKind, AuditRecord, audit_kind, resource_ids
from tests.unit.gateway.door_harness import (
    Door,
    FakeAuthenticator,
    bearer,
    door_gateway,
    settings_for,
)

JOB = "ab" * 16
PAYLOAD = "cd" * 16
CANCEL = "nvidia.clara.platform.Jobs/Cancel"


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    async with door_gateway(tmp_path, authenticator=FakeAuthenticator()) as serving:
        yield serving


async def _records(door: Door) -> list[AuditRecord]:
    return [record async for record in AuditTrail(door.context.store, door.bus).records()]


async def _cancel(door: Door, role: Role | None) -> jobs_pb2.JobsCancelResponse:
    stub = jobs_pb2_grpc.JobsStub(door.channel)
    request = jobs_pb2.JobsCancelRequest(job_id=common_pb2.Identifier(value=JOB))
    metadata = bearer(role) if role else ()
    reply: jobs_pb2.JobsCancelResponse = await stub.Cancel(
        request, metadata=(*metadata, ("x-request-id", "req-42")), timeout=5
    )
    return reply


async def _serve_cancel(door: Door, calls: list[bytes]) -> Any:
    async def cancel(request: Request) -> bytes:
        calls.append(request.data)
        return jobs_pb2.JobsCancelResponse(header=common_pb2.ResponseHeader()).SerializeToString()

    return await door.bus.serve(subjects.SCHEDULER_CANCEL, cancel, queue="scheduler")


async def test_a_mutating_call_is_recorded_before_and_after_under_one_call(door: Door) -> None:
    published: list[tuple[str, bytes]] = []

    async def listen(data: bytes, subject: str) -> None:
        published.append((subject, data))

    listening = await door.bus.subscribe("aorta.audit.>", listen)
    calls: list[bytes] = []
    serving = await _serve_cancel(door, calls)
    try:
        await _cancel(door, Role.USER)
    finally:
        await serving.drain()
    records = await _records(door)
    assert [record.result for record in records] == ["started", "ok"]
    first, second = records
    assert first.call_id == second.call_id and first.id != second.id
    assert {first.request_id, second.request_id} == {"req-42"}
    for record in records:
        assert record.subject == "alice"
        assert record.method == CANCEL
        assert record.resources == {"job_id": JOB}
        assert record.client.startswith("ipv")
    deadline = time.monotonic() + 30
    while len(published) < 2:
        assert time.monotonic() < deadline, published
        await asyncio.sleep(0.02)
    await listening.drain()
    assert [subject for subject, _ in published] == ["aorta.audit.jobs.cancel"] * 2
    event = json.loads(published[1][1])
    assert event["type"] == "org.aorta.audit.jobs.cancel"
    assert event["data"]["result"] == "ok" and event["data"]["subject"] == "alice"


async def test_a_download_is_recorded_once_with_its_payload(door: Door) -> None:
    stub = payloads_pb2_grpc.PayloadsStub(door.channel)
    request = payloads_pb2.PayloadsDownloadRequest(
        payload_id=common_pb2.Identifier(value=PAYLOAD), name="/input/scan.dcm"
    )
    async for _ in stub.Download(request, metadata=bearer(Role.USER), timeout=5):
        pass
    (record,) = await _records(door)
    assert record.method == "nvidia.clara.platform.Payloads/Download"
    assert record.resources == {"payload_id": PAYLOAD}
    assert record.result != "started" and record.subject == "alice"


async def test_refused_calls_are_recorded_and_viewer_reads_are_not(door: Door) -> None:
    stub = jobs_pb2_grpc.JobsStub(door.channel)
    status = jobs_pb2.JobsStatusRequest(job_id=common_pb2.Identifier(value=JOB))
    await stub.Status(status, metadata=bearer(Role.VIEWER), timeout=5)
    for role in (Role.VIEWER, None):
        with pytest.raises(grpc.aio.AioRpcError):
            await _cancel(door, role)
    records = await _records(door)
    assert [(r.subject, r.result) for r in records] == [
        ("vera", "PERMISSION_DENIED"),
        ("", "UNAUTHENTICATED"),
    ]
    assert {r.method for r in records} == {CANCEL}
    assert [r.resources for r in records] == [{"job_id": JOB}] * 2


class _FailingAudit:
    """A state store whose audit collection takes no record."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def collection(self, name: str) -> Collection:
        found = self._store.collection(name)
        return _Refusing(found) if name == COLLECTION else found

    async def close(self) -> None:
        await self._store.close()


class _Refusing:
    def __init__(self, collection: Collection) -> None:
        self._collection = collection
        self.name = collection.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    async def insert(self, document: Mapping[str, Any]) -> dict[str, Any]:
        raise Unavailable("the state store is down")


async def test_a_mutating_call_fails_when_its_record_cannot_be_written(tmp_path: Path) -> None:
    real = await open_state_store(settings_for(tmp_path))
    try:
        async with door_gateway(
            tmp_path, authenticator=FakeAuthenticator(), store=_FailingAudit(real)
        ) as door:
            calls: list[bytes] = []
            serving = await _serve_cancel(door, calls)
            try:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await _cancel(door, Role.USER)
                stub = jobs_pb2_grpc.JobsStub(door.channel)
                status = jobs_pb2.JobsStatusRequest(job_id=common_pb2.Identifier(value=JOB))
                await stub.Status(status, metadata=bearer(Role.VIEWER), timeout=5)
            finally:
                await serving.drain()
    finally:
        await real.close()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "audit log" in str(refused.value.details())
    assert calls == [], "the call went ahead without its record"


async def _list(door: Door, role: Role, **fields: Any) -> list[audit_pb2.AuditRecord]:
    stub = audit_pb2_grpc.AuditStub(door.channel)
    request = audit_pb2.AuditListRequest(**fields)
    return [reply.record async for reply in stub.List(request, metadata=bearer(role), timeout=5)]


async def test_the_audit_api_lists_records_for_admins_only(door: Door) -> None:
    serving = await _serve_cancel(door, [])
    try:
        await _cancel(door, Role.USER)
    finally:
        await serving.drain()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _list(door, Role.USER)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await _list(door, Role.ADMIN, job_id=JOB)
    assert [(r.subject, r.result, dict(r.resources)) for r in listed] == [
        ("alice", "started", {"job_id": JOB}),
        ("alice", "ok", {"job_id": JOB}),
    ]
    assert await _list(door, Role.ADMIN, job_id="ef" * 16) == []
    by_subject = await _list(door, Role.ADMIN, subject="alice")
    assert [(r.method, r.result) for r in by_subject] == [
        (CANCEL, "started"),
        (CANCEL, "ok"),
        ("aorta.v1.Audit/List", "PERMISSION_DENIED"),
    ]
    later = (utcnow() + timedelta(minutes=1)).isoformat()
    assert await _list(door, Role.ADMIN, since=later, subject="alice") == []
    # The user's refused List is on record too, as is the admins' reading of the log.
    everything = await _list(door, Role.ADMIN)
    results: Sequence[tuple[str, str]] = [(r.method, r.result) for r in everything]
    assert ("aorta.v1.Audit/List", "PERMISSION_DENIED") in results
    assert ("aorta.v1.Audit/List", "ok") in results


async def test_a_bad_since_is_reported_in_the_header(door: Door) -> None:
    stub = audit_pb2_grpc.AuditStub(door.channel)
    replies = [
        reply
        async for reply in stub.List(
            audit_pb2.AuditListRequest(since="yesterday"), metadata=bearer(Role.ADMIN), timeout=5
        )
    ]
    assert replies[-1].header.code < 0
    assert "yesterday" in " ".join(replies[-1].header.messages)


async def test_records_older_than_the_retention_are_swept(door: Door) -> None:
    trail = AuditTrail(door.context.store, door.bus)
    for result in ("ok", "PERMISSION_DENIED"):
        await trail.append(
            subject="alice",
            client="ipv4:127.0.0.1:1",
            method=CANCEL,
            result=result,
            request_id="r",
            call_id="c",
            resources={},
        )
    assert await trail.sweep(timedelta(days=30)) == 0
    assert await trail.sweep(timedelta(days=30), now=utcnow() + timedelta(days=31)) == 2
    assert await trail.sweep(timedelta(days=30), now=utcnow() + timedelta(days=31)) == 0
    assert await _records(door) == []


def test_resource_ids_are_read_from_any_request() -> None:
    create = jobs_pb2.JobsCreateRequest(
        pipeline_id=common_pb2.Identifier(value="p1"),
        name="scan",
        input_payloads=[common_pb2.Identifier(value="a"), common_pb2.Identifier(value="b")],
    )
    assert resource_ids(create) == {"pipeline_id": "p1", "input_payloads": "a,b"}
    assert resource_ids(audit_pb2.AuditListRequest(job_id="j1", subject="s")) == {"job_id": "j1"}
    dashed = jobs_pb2.JobsStatusRequest(
        job_id=common_pb2.Identifier(value="ABABABAB-ABAB-ABAB-ABAB-ABABABABABAB")
    )
    assert resource_ids(dashed) == {"job_id": JOB}
    made_up = jobs_pb2.JobsStatusRequest(job_id=common_pb2.Identifier(value="x\x00" * 100))
    assert resource_ids(made_up) == {"job_id": "x" * 64}
    assert resource_ids(None) == {}
    by_name = aorta_services_pb2.ServicesReadLogsRequest(service="trtis")
    assert resource_ids(by_name) == {"service": "trtis"}


def test_a_service_log_is_audited_once_as_a_read_of_logs() -> None:
    assert audit_kind("aorta.v1.Services/ReadLogs") is AuditKind.READ
    assert audit_kind("nvidia.clara.platform.Jobs/ReadLogs") is AuditKind.READ


async def test_the_gateway_sweeps_old_records_when_it_starts(tmp_path: Path) -> None:
    store = await open_state_store(settings_for(tmp_path))
    try:
        old = AuditRecord(
            id="old",
            time="2001-01-01T00:00:00.000000Z",
            subject="alice",
            client="",
            method=CANCEL,
            result="ok",
            request_id="r",
            call_id="c",
        )
        await store.collection(COLLECTION).insert(old.document())
        async with door_gateway(tmp_path, store=store) as door:
            deadline = time.monotonic() + 30
            while records := await _records(door):
                assert time.monotonic() < deadline, records
                await asyncio.sleep(0.02)
            assert await _records(door) == []
    finally:
        await store.close()
