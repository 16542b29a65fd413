"""What a job's recorded timeline tells the operator metrics and the job's trace.

Both are fed from the record just written (`domain.timeline`), never from clocks of their own,
so a metric, a span and `aorta describe job --timeline` show the same numbers. Metrics and
spans are fed once per event, by the leader that wrote it: an operator's end (its run, duration
and stage metrics; its span with one child per stage), an admission (the queue wait and the
Triton wait as spans) and a job's release, the last thing a stopped job goes through (its own
span, the root of the trace, from Jobs.Start to its stop). A crash between the write and the
feed loses that one observation, never the timeline.
"""

from __future__ import annotations

import random

from aorta.executors import RunReason
from aorta.observability import metrics, tracing
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.timeline import AttemptTimes


def _span_id() -> str:
    return f"{random.getrandbits(64) or 1:016x}"


def operator_ended(record: JobRecord, name: str, attempt: int) -> None:
    """Feeds the end of attempt `attempt` of operator `name`, as `record` holds it."""
    times = next((t for t in record.operator(name).timeline if t.attempt == attempt), None)
    if times is None:
        return
    executor = times.executor or "unknown"
    if metrics.recording():
        metrics.OPERATOR_RUNS.labels(executor, times.outcome or "unknown").inc()
        wall = times.wall()
        if wall is not None:
            metrics.OPERATOR_DURATION_SECONDS.labels(executor).observe(wall)
        for stage, seconds in times.durations().items():
            metrics.OPERATOR_STAGE_SECONDS.labels(stage).observe(seconds)
    _operator_spans(record, name, times)


def _operator_spans(record: JobRecord, name: str, times: AttemptTimes) -> None:
    trace = record.trace
    if not tracing.enabled() or not trace.trace_id:
        return
    start = times.admitted if times.admitted is not None else times.staging
    end = times.ended if times.ended is not None else times.stored
    if start is None or end is None:
        return
    span_id = _span_id()
    failed = times.outcome not in ("", RunReason.COMPLETED.value)
    tracing.emit(
        f"operator {name}",
        trace_id=trace.trace_id,
        parent_span_id=trace.span_id,
        span_id=span_id,
        start=start,
        end=end,
        attributes={
            "aorta.job.id": record.id,
            "aorta.operator": name,
            "aorta.attempt": times.attempt,
            "aorta.executor": times.executor,
            "aorta.outcome": times.outcome,
        },
        error=f"the run ended {times.outcome}" if failed else "",
    )
    for stage, (began, ended) in times.stages().items():
        tracing.emit(
            stage,
            trace_id=trace.trace_id,
            parent_span_id=span_id,
            start=began,
            end=ended,
            attributes={"aorta.operator": name, "aorta.stage": stage},
        )


def job_admitted(record: JobRecord) -> None:
    """Feeds a job's admission: its wait in the queue, and its Triton wait when it had one."""
    trace = record.trace
    if not tracing.enabled() or not trace.trace_id:
        return
    if record.enqueued is not None and record.started is not None:
        tracing.emit(
            "admission",
            trace_id=trace.trace_id,
            parent_span_id=trace.span_id,
            start=record.enqueued,
            end=record.started,
            attributes={"aorta.job.id": record.id, "aorta.priority": record.priority.name},
        )
    if trace.triton_requested is not None and trace.triton_acquired is not None:
        tracing.emit(
            "triton acquisition",
            trace_id=trace.trace_id,
            parent_span_id=trace.span_id,
            start=trace.triton_requested,
            end=trace.triton_acquired,
            attributes={"aorta.job.id": record.id, "aorta.models": ",".join(record.models)},
        )


def job_stopped(record: JobRecord) -> None:
    """Feeds a stopped job's own span: from Jobs.Start to its stop, the root of its trace
    (under the Jobs.Start call's span when the caller traced it)."""
    trace = record.trace
    if not tracing.enabled() or not trace.trace_id or record.stopped is None:
        return
    start = record.enqueued if record.enqueued is not None else record.created
    status = record.phase.status.name
    tracing.emit(
        f"job {record.name}",
        trace_id=trace.trace_id,
        parent_span_id=trace.parent_span_id,
        span_id=trace.span_id,
        start=start,
        end=record.stopped,
        attributes={
            "aorta.job.id": record.id,
            "aorta.pipeline.id": record.pipeline_id,
            "aorta.job.status": status,
        },
        error="" if status == "HEALTHY" else f"the job ended {status}",
    )
