"""Every change a job document goes through, as pure functions: record in, record out.

Each function checks its precondition against the record it is given and raises `Conflict`
(JOB_STATE_CONFLICT) when it does not hold, so a repository that re-applies a change after
losing an optimistic-concurrency race (`JobRepository.modify`) never applies a stale one: an
operator reported twice, a job started by two replicas, a cancel racing a finish. The job's
phase moves only through `domain.next_phase`, the one transition table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from aorta.errors import Conflict, ErrorCode
from aorta.executors import RunOutcome, RunReason
from aorta_services.scheduler.domain import (
    Allocation,
    JobEvent,
    JobPhase,
    JobStatus,
    OperatorStatus,
    next_phase,
    timeline,
)
from aorta_services.scheduler.domain.job_record import JobRecord, OperatorRecord, TritonUris
from aorta_services.scheduler.domain.timeline import JobTrace
from aorta_services.scheduler.domain.waiting import Waits


def _conflict(message: str) -> Conflict:
    return Conflict(message, code=ErrorCode.JOB_STATE_CONFLICT)


def queue(
    record: JobRecord,
    *,
    variables: Mapping[str, str],
    operators: Sequence[OperatorRecord],
    progress: Mapping[str, Any],
    models: Sequence[str],
    timeout: int,
    now: float,
    trace: JobTrace | None = None,
) -> JobRecord:
    """`Jobs.Start`: CREATED -> QUEUED with the resolved pipeline's operators and needs, and
    the job's trace ids when tracing is on."""
    phase = next_phase(record.phase, JobEvent.START, job_id=record.id)
    return replace(
        record,
        trace=trace or JobTrace(),
        phase=phase,
        enqueued=now,
        variables=dict(variables),
        operators=tuple(operators),
        progress=dict(progress),
        models=tuple(models),
        timeout=timeout,
        released=False,
    )


def fault_unplaceable(record: JobRecord, reason: str, *, now: float) -> JobRecord:
    """A job just queued (`queue`) that can never fit this node: QUEUED -> FAULTED at once.

    Its payload was not locked, so there is nothing to release.
    """
    phase = next_phase(record.phase, JobEvent.FAULT, job_id=record.id)
    return replace(
        record,
        phase=phase,
        stopped=now,
        messages=(*record.messages, f"the job can never run on this node: {reason}"),
        released=True,
    )


def admit(
    record: JobRecord,
    *,
    now: float,
    rotation: int,
    triton: TritonUris | None,
    triton_wait: tuple[float, float] | None = None,
) -> JobRecord:
    """The queue chose the job: QUEUED -> RUNNING; `triton_wait` when its Triton server was
    asked for and when it was had."""
    phase = next_phase(record.phase, JobEvent.ADMIT, job_id=record.id)
    trace = record.trace
    if triton_wait is not None:
        requested, acquired = triton_wait
        trace = replace(trace, triton_requested=requested, triton_acquired=acquired)
    return replace(
        record,
        phase=phase,
        started=now,
        rotation=rotation,
        triton=triton,
        trace=trace,
        waiting=Waits(),
    )


def start_operator(
    record: JobRecord,
    name: str,
    *,
    attempt: int,
    run_id: str,
    allocation: Allocation,
    now: float,
    executor: str = "",
) -> JobRecord:
    """Operator `name` starts its `attempt`-th run: the guard written before `executor.start`.

    Holds only while the job RUNs and the operator's stored attempt is `attempt - 1`, and the
    operator is either ready (PENDING, upstream completed) or RUNNING in the store without a
    live run (a re-run after a crash). Of two schedulers trying the same start, one wins.
    """
    if record.phase is not JobPhase.RUNNING:
        raise _conflict(f"operator {name!r} cannot start: job {record.id} is {record.phase}")
    operator = record.operator(name)
    if operator.attempt != attempt - 1:
        raise _conflict(
            f"operator {name!r} of job {record.id} is at attempt {operator.attempt}, "
            f"not {attempt - 1}: another scheduler started it"
        )
    progress = record.job_progress()
    if progress.status(name) is OperatorStatus.PENDING:
        progress.mark_running(name)
    elif progress.status(name) is not OperatorStatus.RUNNING:
        raise _conflict(f"operator {name!r} of job {record.id} is {progress.status(name).name}")
    ready = timeline.ready_time(
        record.started, (record.operator(up).stopped for up in progress.upstream(name))
    )
    started = replace(
        operator,
        attempt=attempt,
        run_id=run_id,
        allocation=allocation,
        started=now,
        stopped=None,
        exit_code=None,
        timeline=timeline.started_attempt(
            operator.timeline, attempt, executor=executor, ready=ready, now=now
        ),
    )
    return replace(
        record.with_operator(started),
        progress=progress.to_document(),
        waiting=record.waiting.with_operator(name, None),
    )


def failure_reason(name: str, outcome: RunOutcome, timeout: float) -> str:
    """What a person reads about a run that did not complete."""
    detail = f": {outcome.message}" if outcome.message else ""
    if outcome.reason is RunReason.TIMEOUT:
        return f"operator {name!r} timed out after {timeout:g} s{detail}"
    if outcome.reason is RunReason.START_FAILED:
        return f"operator {name!r} could not start{detail}"
    if outcome.reason is RunReason.LOST:
        return f"operator {name!r} was lost by the executor{detail}"
    code = f" with exit code {outcome.exit_code}" if outcome.exit_code is not None else ""
    return f"operator {name!r} failed{code}{detail}"


def finish_operator(
    record: JobRecord,
    name: str,
    *,
    attempt: int,
    outcome: RunOutcome,
    reason: str,
    now: float,
) -> JobRecord:
    """The `attempt`-th run of `name` ended with `outcome`; `reason` says why if it failed.

    A report for another attempt, or for an operator that is not RUNNING, is a `Conflict`. The
    first real failure of a running job (not a run stopped because the job was stopping) is
    added to the job's messages at once, so Status tells why while the rest stops.
    """
    operator = record.operator(name)
    progress = record.job_progress()
    if operator.attempt != attempt or progress.status(name) is not OperatorStatus.RUNNING:
        raise _conflict(
            f"operator {name!r} of job {record.id}: attempt {attempt} is not the running one"
        )
    messages = record.messages
    if outcome.succeeded:
        progress.mark_completed(name)
    else:
        first_failure = (
            record.phase is JobPhase.RUNNING
            and not progress.faults()
            and not progress.canceled
            and outcome.reason is not RunReason.CANCELLED
        )
        # Whatever ended a run while its job was stopping, the stop did: a cancel's SIGTERM
        # often makes the operator exit non-zero rather than report a cancellation.
        progress.mark_faulted(name, reason, by_job=progress.canceled)
        if first_failure:
            messages = (*messages, reason)
    stopped = replace(
        operator,
        allocation=None,
        stopped=now,
        exit_code=outcome.exit_code,
        timeline=timeline.ended_attempt(operator.timeline, attempt, outcome, now=now),
    )
    return replace(
        record.with_operator(stopped), progress=progress.to_document(), messages=messages
    )


def finish(record: JobRecord, *, now: float) -> JobRecord:
    """Nothing runs and the outcome is known: RUNNING -> SUCCEEDED or FAULTED."""
    outcome = record.job_progress().outcome()
    if record.phase is not JobPhase.RUNNING or outcome is None:
        raise _conflict(f"job {record.id} cannot finish: it is {record.phase}, outcome {outcome}")
    event = JobEvent.SUCCEED if outcome is JobStatus.HEALTHY else JobEvent.FAULT
    phase = next_phase(record.phase, event, job_id=record.id)
    return replace(record, phase=phase, stopped=now, waiting=Waits())


def cancel(
    record: JobRecord, reason: str, *, now: float, trace: JobTrace | None = None
) -> JobRecord:
    """`Jobs.Cancel`: PENDING (created or queued) or RUNNING -> CANCELED.

    A running job's operators are stopped by the leader afterwards; a job that was never
    started holds nothing, so it is released at once, and takes `trace` (the Cancel call's
    ids; a started job has its own from Start) so its stop is traced too.
    """
    stopped = _stop(record, JobEvent.CANCEL, f"canceled: {reason}" if reason else "canceled", now)
    if record.phase is JobPhase.CREATED and trace is not None:
        return replace(stopped, trace=trace)
    return stopped


def terminate(record: JobRecord, reason: str, *, now: float) -> JobRecord:
    """`Clara.Stop` or the job's own timeout: queued or RUNNING -> TERMINATED."""
    return _stop(record, JobEvent.TERMINATE, f"terminated: {reason}", now)


def fault(record: JobRecord, reason: str, *, now: float) -> JobRecord:
    """The job cannot go on (no Triton server for its models, an operator that no longer fits
    the node): queued or RUNNING -> FAULTED, `reason` in its messages."""
    return _stop(record, JobEvent.FAULT, reason, now)


def _stop(record: JobRecord, event: JobEvent, message: str, now: float) -> JobRecord:
    phase = next_phase(record.phase, event, job_id=record.id)
    progress = record.job_progress()
    if record.phase is JobPhase.RUNNING:
        progress.cancel()
    return replace(
        record,
        phase=phase,
        stopped=now,
        progress=progress.to_document(),
        messages=(*record.messages, message),
        released=record.phase is JobPhase.CREATED,
        waiting=Waits(),
    )


def abandon_operator(record: JobRecord, name: str, reason: str, *, now: float) -> JobRecord:
    """An operator RUNNING in the store that runs nowhere, of a job that is stopping (stopped,
    or halted by a failed operator): it FAULTED, for `reason`."""
    progress = record.job_progress()
    stopping = record.phase.stopped or bool(progress.faults()) or progress.canceled
    if progress.status(name) is not OperatorStatus.RUNNING or not stopping:
        raise _conflict(f"operator {name!r} of job {record.id} is not an abandoned run")
    progress.mark_faulted(name, reason, by_job=progress.canceled)
    current = record.operator(name)
    operator = replace(
        current,
        allocation=None,
        stopped=now,
        timeline=timeline.abandoned_attempt(current.timeline, current.attempt, now=now),
    )
    return replace(record.with_operator(operator), progress=progress.to_document())


def release(record: JobRecord) -> JobRecord:
    """The payload lock and the Triton server of a stopped job were given back."""
    if not record.phase.stopped:
        raise _conflict(f"job {record.id} is {record.phase}; only a stopped job is released")
    return replace(record, released=True)
