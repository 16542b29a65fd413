"""`aorta.v1.Jobs/Queue`'s answer: the queued jobs in admission order with their reasons (pure).

Any replica answers it from the store alone: the order is that of a `JobQueue` rebuilt from
the queued jobs (their priorities and enqueue times) with the rotation the last admission
stored, as a new leader rebuilds it, asked what it would admit if everything fitted now. The
reasons are those the leader stored (`domain.waiting`), in words at the time of the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from aorta.api import aorta_jobs_pb2, common_pb2
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.queue import JobQueue
from aorta_services.scheduler.domain.wait_privacy import shown_reason
from aorta_services.scheduler.domain.waiting import WaitKind, WaitReason

QueueResponse = aorta_jobs_pb2.JobsQueueResponse


def admission_order(records: Iterable[JobRecord], queue: JobQueue, now: float) -> list[JobRecord]:
    """`records` (queued jobs) in the order `queue` (empty, with the settings and rotation to
    use) would admit them at `now` if all fitted; pushed oldest first, as the leader does."""
    by_id = {}
    for record in sorted(records, key=lambda r: (r.enqueued or r.created, r.id)):
        queue.push(record.id, record.priority, record.enqueued or record.created)
        by_id[record.id] = record
    return [by_id[job_id] for job_id in queue.snapshot(now)]


def reason_message(reason: WaitReason, now: float) -> aorta_jobs_pb2.JobWaitReason:
    """A reason as `JobWaitReason`, its words made at `now`."""
    message = aorta_jobs_pb2.JobWaitReason(
        kind=reason.kind.value,
        text=reason.text(now),
        position=reason.position,
        ahead=list(reason.ahead),
        ahead_count=reason.ahead_count,
        resource=reason.resource,
        needed=reason.needed,
        capacity=reason.capacity,
        service=reason.service,
        detail=reason.detail,
        models=list(reason.models),
        target_job_id=reason.target,
    )
    for holder in reason.holders:
        added = message.holders.add(job_id=holder.job_id, operator=holder.operator)
        if holder.since is not None:
            added.since = holder.since
    if reason.kind is WaitKind.HELD and reason.target_since is not None:
        message.target_since = reason.target_since
        message.waited_seconds = round(now - reason.target_since, 3)
    return message


def entries(
    ordered: Sequence[JobRecord],
    now: float,
    *,
    viewer: str | None,
    owners: Mapping[str, str] | None = None,
) -> list[QueueResponse]:
    """One message per job of `ordered`, or one without an entry when it is empty. With
    `viewer` (a `user`'s subject), another owner's jobs are shown only by place, priority
    and time (`hidden`), and the jobs the viewer's own reasons name by id only when `owners`
    (job id → owner) says they are the viewer's (`wait_privacy`); None shows every job in
    full."""
    if not ordered:
        return [QueueResponse(header=common_pb2.ResponseHeader(code=0))]
    answers = []
    for position, record in enumerate(ordered, start=1):
        entry = aorta_jobs_pb2.JobsQueueEntry(
            position=position,
            priority=int(record.priority),  # type: ignore[arg-type]
            enqueued=record.enqueued or record.created,
        )
        if viewer is not None and record.owner != viewer:
            entry.hidden = True
        else:
            entry.job_id.value = record.id
            entry.name = record.name
            reason = record.waiting.job
            if reason is not None and viewer is not None:
                reason = shown_reason(reason, viewer, owners or {})
            if reason is not None:
                entry.reason.CopyFrom(reason_message(reason, now))
        answers.append(QueueResponse(header=common_pb2.ResponseHeader(code=0), entry=entry))
    return answers
