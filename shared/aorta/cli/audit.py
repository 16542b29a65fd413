"""`aorta audit`: who did what on the platform, from the audit log the gateway keeps.

The log holds every mutating call, every read of payload or model bytes and logs, and every
refused call; reading it takes the admin role. Records are listed oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import click

from aorta.api import audit_pb2, audit_pb2_grpc
from aorta.cli.connection import check
from aorta.cli.lookup import job_id as resolve_job
from aorta.cli.output import table
from aorta.cli.params import MOMENT
from aorta.cli.session import Session, with_session
from aorta.timestamps import to_iso


def _document(record: audit_pb2.AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "time": record.time,
        "subject": record.subject,
        "client": record.client,
        "method": record.method,
        "resources": dict(record.resources),
        "result": record.result,
        "request_id": record.request_id,
        "call_id": record.call_id,
    }


def _resources(record: audit_pb2.AuditRecord) -> str:
    return " ".join(f"{name}={value}" for name, value in sorted(record.resources.items())) or "-"


def _method(record: audit_pb2.AuditRecord) -> str:
    service, _, name = record.method.partition("/")
    return f"{service.rsplit('.', 1)[-1]}.{name}"


def _rows(records: Iterable[audit_pb2.AuditRecord]) -> list[tuple[str, ...]]:
    return [
        (
            record.time,
            record.subject or "(anonymous)",
            record.client,
            _method(record),
            _resources(record),
            record.result,
        )
        for record in records
    ]


def _records(session: Session, request: audit_pb2.AuditListRequest) -> list[audit_pb2.AuditRecord]:
    stub = audit_pb2_grpc.AuditStub(session.platform.channel)
    records = []
    for reply in stub.List(request):
        check(reply, "reading the audit log")
        records.append(reply.record)
    return records


@click.command("audit")
@click.option(
    "--since",
    type=MOMENT,
    help="Only records from this time on: 2024-05-01T10:30Z, or an age such as 30m, 1h, 7d.",
)
@click.option("--subject", help="Only the records of this subject (a token's name, an OIDC sub).")
@click.option("--job", "job", help="Only the records that name this job (id, id prefix or name).")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="At most this many (0: all).")
@with_session(quiet=False)
def audit(
    session: Session,
    since: datetime | None,
    subject: str | None,
    job: str | None,
    limit: int,
) -> None:
    """Show the audit log: time, subject, client, method, resources and result (admin only).

    -o wide adds the request and call ids.
    """
    request = audit_pb2.AuditListRequest(
        since=to_iso(since) if since else "",
        subject=subject or "",
        job_id=resolve_job(session, job) if job else "",
        limit=limit,
    )
    records = _records(session, request)
    columns = ["TIME", "SUBJECT", "CLIENT", "METHOD", "RESOURCES", "RESULT"]
    rows = _rows(records)
    session.output.emit(
        human=table(columns, rows),
        wide=table(
            [*columns, "REQUEST ID", "CALL ID"],
            [
                (*row, record.request_id or "-", record.call_id or "-")
                for row, record in zip(rows, records, strict=True)
            ],
        ),
        document=[_document(record) for record in records],
        ids=[record.id for record in records],
        kind="audit",
    )
