"""A job's timeline as `aorta.v1.Jobs/Timeline` answers it: pure, from the job's record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aorta.api import aorta_jobs_pb2, common_pb2
from aorta_services.scheduler.domain.job_record import JobRecord


def timeline(record: JobRecord) -> aorta_jobs_pb2.JobsTimelineResponse:
    """The job's own times, its Triton wait and every attempt of every operator, in the
    pipeline's topological order, then by attempt; absent times stay unset."""
    trace = record.trace
    answer = aorta_jobs_pb2.JobsTimelineResponse(
        header=common_pb2.ResponseHeader(code=0),
        job_id=common_pb2.Identifier(value=record.id),
        name=record.name,
        trace_id=trace.trace_id,
        created=record.created,
    )
    _set_times(
        answer,
        {
            "enqueued": record.enqueued,
            "admitted": record.started,
            "stopped": record.stopped,
            "triton_requested": trace.triton_requested,
            "triton_acquired": trace.triton_acquired,
        },
    )
    for operator in record.operators:
        for times in sorted(operator.timeline, key=lambda t: t.attempt):
            attempt = answer.attempts.add(
                operator=operator.name,
                attempt=times.attempt,
                executor=times.executor,
                outcome=times.outcome,
            )
            stages = ("ready", "admitted", "staging", "running", "exited", "stored")
            _set_times(attempt, {stage: getattr(times, stage) for stage in stages})
    return answer


def _set_times(message: Any, times: Mapping[str, float | None]) -> None:
    """Sets each optional time field of `message` that `times` knows."""
    for field, at in times.items():
        if at is not None:
            setattr(message, field, at)
