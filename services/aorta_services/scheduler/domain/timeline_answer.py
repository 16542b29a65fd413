"""A job's timeline as `aorta.v1.Jobs/Timeline` answers it: pure, from the job's record."""

from __future__ import annotations

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
    job_times = {
        "enqueued": record.enqueued,
        "admitted": record.started,
        "stopped": record.stopped,
        "triton_requested": trace.triton_requested,
        "triton_acquired": trace.triton_acquired,
    }
    for field, at in job_times.items():
        if at is not None:
            setattr(answer, field, at)
    for operator in record.operators:
        for times in sorted(operator.timeline, key=lambda t: t.attempt):
            attempt = answer.attempts.add(
                operator=operator.name,
                attempt=times.attempt,
                executor=times.executor,
                outcome=times.outcome,
            )
            stages = {
                "ready": times.ready,
                "admitted": times.admitted,
                "staging": times.staging,
                "running": times.running,
                "exited": times.exited,
                "stored": times.stored,
            }
            for field, at in stages.items():
                if at is not None:
                    setattr(attempt, field, at)
    return answer
