"""`aorta queue`: every started job not admitted yet, in the order the platform would admit
them, with why each waits (`aorta.v1.Jobs/Queue`).

A `user` sees another user's jobs only as places in the queue: their rows show no id, name or
reason. A job started a moment ago may show no reason yet: the scheduler's next pass gives it
one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import click
from google.protobuf.json_format import MessageToDict

from aorta.api import aorta_jobs_pb2, aorta_jobs_pb2_grpc
from aorta.cli.connection import checked_replies, request_header
from aorta.cli.humanize import NOT_SET, ago, iso
from aorta.cli.jobview import priority_name
from aorta.cli.output import table
from aorta.cli.session import Session, with_session
from aorta.timestamps import utcnow

HIDDEN = "(another user's job)"


def queued(session: Session) -> list[aorta_jobs_pb2.JobsQueueEntry]:
    """The queue's entries, in admission order (none when the queue is empty)."""
    stub = aorta_jobs_pb2_grpc.JobsStub(session.platform.channel)
    request = aorta_jobs_pb2.JobsQueueRequest(header=request_header())
    entries = []
    for reply in checked_replies(stub.Queue(request), "reading the queue"):
        if reply.HasField("entry"):
            entries.append(reply.entry)
    return entries


def reason_document(reason: aorta_jobs_pb2.JobWaitReason) -> dict[str, Any] | None:
    """A reason's fields that are set, by their proto names; None when there is none."""
    if not reason.kind:
        return None
    return MessageToDict(reason, preserving_proto_field_name=True)


def _enqueued(entry: aorta_jobs_pb2.JobsQueueEntry) -> datetime:
    return datetime.fromtimestamp(entry.enqueued, UTC)


def _document(entry: aorta_jobs_pb2.JobsQueueEntry) -> dict[str, Any]:
    return {
        "position": entry.position,
        "job_id": entry.job_id.value or None,
        "name": entry.name or None,
        "priority": priority_name(entry.priority),
        "enqueued": iso(_enqueued(entry)),
        "hidden": entry.hidden,
        "reason": reason_document(entry.reason),
    }


def _rows(entries: Iterable[aorta_jobs_pb2.JobsQueueEntry], now: datetime) -> list[tuple[str, ...]]:
    return [
        (
            str(entry.position),
            entry.job_id.value or HIDDEN,
            entry.name or NOT_SET,
            priority_name(entry.priority),
            ago(_enqueued(entry), now),
            entry.reason.text or NOT_SET,
        )
        for entry in entries
    ]


@click.command("queue")
@with_session()
def queue(session: Session) -> None:
    """Show the queue: every started job not admitted yet, in admission order, with why it
    waits.

    -o wide adds the kind of each reason (queued, resources, service, triton, held); -o json
    gives every reason's facts (the jobs ahead, the resource and who holds it, the job the
    node drains for and how long it has waited).
    """
    entries = queued(session)
    now = utcnow()
    rows = _rows(entries, now)
    columns = ["#", "JOB ID", "NAME", "PRIORITY", "QUEUED", "REASON"]
    session.output.emit(
        human=table(columns, rows),
        wide=table(
            [*columns[:5], "KIND", "REASON"],
            [
                (*row[:5], entry.reason.kind or NOT_SET, row[5])
                for row, entry in zip(rows, entries, strict=True)
            ],
        ),
        document=[_document(entry) for entry in entries],
        ids=[entry.job_id.value for entry in entries if entry.job_id.value],
        kind="job",
    )
