"""`aorta.v1.Audit`: the audit log, read through the gateway (admins only, per the policy)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from aorta.api import audit_pb2
from aorta.errors import Invalid
from aorta.timestamps import from_iso, to_iso
from aorta_services.gateway.audit import AuditTrail
from aorta_services.gateway.audit_record import AuditRecord
from aorta_services.gateway.rpc import Context, Handler


def record_message(record: AuditRecord) -> audit_pb2.AuditRecord:
    """The wire form of one record."""
    return audit_pb2.AuditRecord(
        id=record.id,
        time=record.time,
        subject=record.subject,
        client=record.client,
        method=record.method,
        resources=dict(record.resources),
        result=record.result,
        request_id=record.request_id,
        call_id=record.call_id,
    )


def _since(text: str) -> str:
    """`text` as the stored form of a time, so that it compares with stored ones."""
    if not text:
        return ""
    try:
        return to_iso(from_iso(text))
    except ValueError:
        raise Invalid(
            f"since {text!r} is not an RFC 3339 time such as 2026-01-31T12:00:00Z"
        ) from None


def handlers(trail: AuditTrail) -> Mapping[str, Handler]:
    """The `Audit` service's handlers over `trail`."""

    async def list_records(
        request: audit_pb2.AuditListRequest, context: Context
    ) -> AsyncIterator[audit_pb2.AuditListResponse]:
        records = trail.records(
            since=_since(request.since),
            subject=request.subject,
            job_id=request.job_id,
            limit=request.limit,
        )
        async for record in records:
            yield audit_pb2.AuditListResponse(record=record_message(record))

    return {"List": list_records}
