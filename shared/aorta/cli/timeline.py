"""`aorta describe job --timeline`: where a job's time went, as a text Gantt chart or numbers.

The numbers come from Aorta's own `aorta.v1.Jobs/Timeline` (Clara's Status has no field for
them), the same ones the job's trace and the operator metrics are made of. One bar per phase of
the job (the queue, the Triton wait) and per attempt of each operator, on one time axis from
Jobs.Start to the stop (or now, for a job still going):

    job ct-seg (0b9c...e2)                      0s          4.1s
    queued                  ██                                      0.21s
    triton                    ▒▒▒▒                                  0.54s
    convert #1                    ·░████▓                           1.10s  staging 0.12s ...
    segment #1                           ░██████████████▓           2.20s  ...

A bar's marks are the stages of an attempt: `·` ready but waiting for resources, `░` staging
its inputs, `█` running, `▓` storing its outputs. Only `fetch` talks to the platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aorta.api import aorta_jobs_pb2, aorta_jobs_pb2_grpc, common_pb2

WIDTH = 48
"""Columns of the chart's time axis."""
MARKS = {"waiting": "·", "staging": "░", "running": "█", "storing": "▓"}
"""The mark of each stage of an operator attempt."""
QUEUED_MARK = "█"
TRITON_MARK = "▒"
STAGES = ("waiting", "staging", "running", "storing")
_STAGE_BOUNDS = {
    "waiting": ("ready", "admitted"),
    "staging": ("staging", "running"),
    "running": ("running", "exited"),
    "storing": ("exited", "stored"),
}
_ATTEMPT_TIMES = ("ready", "admitted", "staging", "running", "exited", "stored")


def _at(message: Any, field: str) -> float | None:
    return float(getattr(message, field)) if message.HasField(field) else None


def _seconds(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else max(0.0, end - start)


@dataclass(frozen=True)
class Attempt:
    """One attempt of one operator: its times (Unix seconds, None when not reached)."""

    operator: str
    attempt: int
    executor: str
    outcome: str
    times: dict[str, float | None]

    def stages(self) -> dict[str, float]:
        """Seconds in each stage it went through (`STAGES`), in order."""
        found = {}
        for stage in STAGES:
            start, end = (self.times[name] for name in _STAGE_BOUNDS[stage])
            seconds = _seconds(start, end)
            if seconds is not None:
                found[stage] = seconds
        return found

    def wall(self) -> float | None:
        """Seconds from its admission to the end of its last stage (outputs stored)."""
        return _seconds(self.times["admitted"], self.times["stored"])

    def document(self) -> dict[str, Any]:
        stages = self.stages()
        return {
            "operator": self.operator,
            "attempt": self.attempt,
            "executor": self.executor,
            "outcome": self.outcome or None,
            **self.times,
            "stages": {stage: stages.get(stage) for stage in STAGES},
            "wall": self.wall(),
        }


@dataclass(frozen=True)
class Timeline:
    """A job's timeline as `aorta.v1.Jobs/Timeline` answered it."""

    job_id: str
    name: str
    trace_id: str
    times: dict[str, float | None]
    attempts: tuple[Attempt, ...]

    @classmethod
    def from_response(cls, response: aorta_jobs_pb2.JobsTimelineResponse) -> Timeline:
        job_fields = ("created", "enqueued", "admitted", "stopped")
        triton = ("triton_requested", "triton_acquired")
        return cls(
            job_id=response.job_id.value,
            name=response.name,
            trace_id=response.trace_id,
            times={field: _at(response, field) for field in (*job_fields, *triton)},
            attempts=tuple(
                Attempt(
                    item.operator,
                    item.attempt,
                    item.executor,
                    item.outcome,
                    {field: _at(item, field) for field in _ATTEMPT_TIMES},
                )
                for item in response.attempts
            ),
        )

    def queue_wait(self) -> float | None:
        return _seconds(self.times["enqueued"], self.times["admitted"])

    def triton_wait(self) -> float | None:
        return _seconds(self.times["triton_requested"], self.times["triton_acquired"])

    def document(self) -> dict[str, Any]:
        """The JSON form: Unix seconds for every time (null when not reached), seconds for
        every duration."""
        return {
            "job_id": self.job_id,
            "name": self.name,
            "trace_id": self.trace_id or None,
            **self.times,
            "queue_wait": self.queue_wait(),
            "triton_wait": self.triton_wait(),
            "operators": [attempt.document() for attempt in self.attempts],
        }

    def lines(self, now: float, *, width: int = WIDTH) -> list[str]:
        """The chart, one string per line; `now` ends the axis of a job still going."""
        times = [t for t in self.times.values() if t is not None]
        times += [t for a in self.attempts for t in a.times.values() if t is not None]
        origin = self.times["enqueued"] or (min(times) if times else now)
        end = self.times["stopped"] or max([now, *times])
        axis = _Axis(origin, max(end, origin), width)
        labels = ["queued", "triton", *(f"{a.operator} #{a.attempt}" for a in self.attempts)]
        pad = max(len(label) for label in labels) + 2
        trace = f" (trace {self.trace_id})" if self.trace_id else ""
        header = f"job {self.name}{trace}"
        scale = f"{'0s':<{width // 2}}{_short(axis.span):>{width - width // 2}}"
        rows = [header, f"{'':<{pad}}{scale}"]
        queued = axis.bar([(self.times["enqueued"], self.times["admitted"], QUEUED_MARK)])
        rows.append(f"{'queued':<{pad}}{queued}  {_short(self.queue_wait())}")
        if self.triton_wait() is not None:
            triton = axis.bar(
                [(self.times["triton_requested"], self.times["triton_acquired"], TRITON_MARK)]
            )
            rows.append(f"{'triton':<{pad}}{triton}  {_short(self.triton_wait())}")
        for attempt in self.attempts:
            # The stage an attempt is in now runs to the chart's end.
            open_end = None if attempt.outcome else end
            bounds = [
                (
                    attempt.times[_STAGE_BOUNDS[s][0]],
                    attempt.times[_STAGE_BOUNDS[s][1]] or open_end,
                    MARKS[s],
                )
                for s in STAGES
            ]
            stages = ", ".join(f"{s} {_short(v)}" for s, v in attempt.stages().items())
            outcome = f" [{attempt.outcome}]" if attempt.outcome else " [running]"
            label = f"{attempt.operator} #{attempt.attempt}"
            rows.append(
                f"{label:<{pad}}{axis.bar(bounds)}  {_short(attempt.wall())}"
                f"{outcome}  {stages}".rstrip()
            )
        rows.append("marks: " + "  ".join(f"{mark} {stage}" for stage, mark in MARKS.items()))
        return rows


class _Axis:
    """Maps times onto `width` columns from `origin` over `span` seconds."""

    def __init__(self, origin: float, end: float, width: int) -> None:
        self.origin, self.span, self.width = origin, end - origin, width

    def position(self, at: float) -> float:
        """Where `at` falls on the axis, in columns (0 to `width`)."""
        if self.span <= 0:
            return 0.0
        return min(float(self.width), max(0.0, (at - self.origin) / self.span * self.width))

    def bar(self, segments: list[tuple[float | None, float | None, str]]) -> str:
        """A row with each (start, end, mark) drawn over the columns it covers, at least one
        for a segment that happened, so a short stage still shows."""
        cells = [" "] * self.width
        for start, end, mark in segments:
            if start is None or end is None:
                continue
            first = min(self.width - 1, int(self.position(start)))
            last = max(first + 1, round(self.position(end)))
            for index in range(first, min(last, self.width)):
                cells[index] = mark
        return "".join(cells)


def _short(seconds: float | None) -> str:
    """`0.21s`, `4.1s`, `2m 05s`; `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def fetch(channel: Any, job_id: str, header: common_pb2.RequestHeader, timeout: float) -> Any:
    """The `JobsTimelineResponse` of `job_id` over `channel`."""
    request = aorta_jobs_pb2.JobsTimelineRequest(
        header=header, job_id=common_pb2.Identifier(value=job_id)
    )
    return aorta_jobs_pb2_grpc.JobsStub(channel).Timeline(request, timeout=timeout)
