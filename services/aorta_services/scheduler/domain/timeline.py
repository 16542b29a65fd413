"""When each stage of a job happened: pure, the one source of a job's timeline, its trace and its
operator metrics, so the three never disagree.

A job's own times live on its record (`created`, `enqueued`, `started` for its admission,
`stopped`, and the Triton wait in `JobTrace`); every attempt of every operator gets an
`AttemptTimes`: when it became ready (the job was admitted and its upstream operators completed),
was admitted (the node gave it its resources and the scheduler started it), and the executor's
`RunTimes` (staging, running, exited, stored) once it ended. Times are Unix seconds, as the
store's other times; a stage that was never reached (or was written by an Aorta version that did
not record it) is None, which is why every field reads back optional.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from aorta.executors import RunOutcome, RunReason

STAGES = ("staging", "running", "storing")
"""The stages of one run, in order: fetching inputs, the command, storing outputs."""


@dataclass(frozen=True)
class AttemptTimes:
    """One attempt of one operator; `outcome` is the executor's run reason once it ended."""

    attempt: int
    executor: str = ""
    outcome: str = ""
    ready: float | None = None
    admitted: float | None = None
    staging: float | None = None
    running: float | None = None
    exited: float | None = None
    stored: float | None = None
    ended: float | None = None
    """When the scheduler recorded the end (the operator's `stopped`)."""

    def ended_with(self, outcome: RunOutcome, *, now: float) -> AttemptTimes:
        """This attempt once `outcome` is recorded at `now`, with the executor's stage times."""
        times = outcome.times
        return AttemptTimes(
            attempt=self.attempt,
            executor=self.executor,
            outcome=outcome.reason.value,
            ready=self.ready,
            admitted=self.admitted,
            staging=times.staging,
            running=times.running,
            exited=times.exited,
            stored=times.stored,
            ended=now,
        )

    def stages(self) -> dict[str, tuple[float, float]]:
        """The stages this attempt went through, each as (start, end); a stage whose start or
        end the executor did not report is left out."""
        bounds = {
            "staging": (self.staging, self.running),
            "running": (self.running, self.exited),
            "storing": (self.exited, self.stored),
        }
        return {
            stage: (start, max(start, end))
            for stage, (start, end) in bounds.items()
            if start is not None and end is not None
        }

    def durations(self) -> dict[str, float]:
        """Seconds spent in each stage of `stages`."""
        return {stage: end - start for stage, (start, end) in self.stages().items()}

    def wall(self) -> float | None:
        """Seconds from its admission to the end of its last stage (outputs stored), or to its
        recorded end when the executor reported none; None while it runs."""
        end = self.stored if self.stored is not None else self.ended
        if self.admitted is None or end is None:
            return None
        return max(0.0, end - self.admitted)

    def to_document(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> AttemptTimes:
        def at(key: str) -> float | None:
            value = document.get(key)
            return None if value is None else float(value)

        return AttemptTimes(
            attempt=int(document["attempt"]),
            executor=str(document.get("executor", "")),
            outcome=str(document.get("outcome", "")),
            ready=at("ready"),
            admitted=at("admitted"),
            staging=at("staging"),
            running=at("running"),
            exited=at("exited"),
            stored=at("stored"),
            ended=at("ended"),
        )


@dataclass(frozen=True)
class JobTrace:
    """The job's OpenTelemetry identity and its Triton wait.

    `trace_id` (32 hex) and `span_id` (16 hex, the job's own span) are chosen at Jobs.Start, so
    every span of the job, whichever replica emits it, joins one trace; `parent_span_id` is the
    span of the Jobs.Start call that queued it, when the caller sent one. Empty ids: tracing
    was off when the job started. `triton_requested`/`triton_acquired` bound the Triton wait.
    """

    trace_id: str = ""
    span_id: str = ""
    parent_span_id: str = ""
    triton_requested: float | None = None
    triton_acquired: float | None = None

    def to_document(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_document(document: Mapping[str, Any] | None) -> JobTrace:
        if not document:
            return JobTrace()
        requested, acquired = document.get("triton_requested"), document.get("triton_acquired")
        return JobTrace(
            trace_id=str(document.get("trace_id", "")),
            span_id=str(document.get("span_id", "")),
            parent_span_id=str(document.get("parent_span_id", "")),
            triton_requested=None if requested is None else float(requested),
            triton_acquired=None if acquired is None else float(acquired),
        )


def ready_time(admitted: float | None, upstream_ends: Iterable[float | None]) -> float | None:
    """When an operator became ready: its job's admission, or its last upstream's end."""
    known = [at for at in (admitted, *upstream_ends) if at is not None]
    return max(known) if known else None


def started_attempt(
    attempts: tuple[AttemptTimes, ...],
    attempt: int,
    *,
    executor: str,
    ready: float | None,
    now: float,
) -> tuple[AttemptTimes, ...]:
    """`attempts` with attempt `attempt` admitted at `now`. An earlier attempt whose end was
    never recorded was lost (this is its re-run), and is recorded so; a record of the same
    attempt number is replaced."""
    lost = RunOutcome("", RunReason.LOST)
    kept = tuple(
        times.ended_with(lost, now=now) if times.ended is None else times
        for times in attempts
        if times.attempt != attempt
    )
    return (*kept, AttemptTimes(attempt, executor=executor, ready=ready, admitted=now))


def ended_attempt(
    attempts: tuple[AttemptTimes, ...], attempt: int, outcome: RunOutcome, *, now: float
) -> tuple[AttemptTimes, ...]:
    """`attempts` with attempt `attempt` ended with `outcome` at `now` (added when missing,
    as for a record written before timelines were kept)."""
    if not any(times.attempt == attempt for times in attempts):
        attempts = (*attempts, AttemptTimes(attempt))
    return tuple(
        times.ended_with(outcome, now=now) if times.attempt == attempt else times
        for times in attempts
    )


def abandoned_attempt(
    attempts: tuple[AttemptTimes, ...], attempt: int, *, now: float
) -> tuple[AttemptTimes, ...]:
    """`attempts` with attempt `attempt` recorded as lost at `now`: it ran nowhere any more."""
    lost = RunOutcome("", RunReason.LOST)
    return ended_attempt(attempts, attempt, lost, now=now)
