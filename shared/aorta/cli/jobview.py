"""One job as the CLI shows it: `Jobs.Status` turned into stable `key: value` lines, the DAG
with each operator's status and duration, and a JSON document.

The key lines come first and in a fixed order (name, id, pipeline, payload, state, status,
priority, created, started, stopped), because scripts written for Clara parse them.

An operator that a cancel (or a termination) stopped is FAULTED on Clara's wire; Aorta's
scheduler names it in the Status header (`operator writer CANCELED`), and it is shown with that
status, its wire status kept in the JSON document as `clara_status`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.text import Text

from aorta.api import jobs_pb2
from aorta.cli import dag as dags
from aorta.cli.failures import ExitCode
from aorta.cli.humanize import duration, iso, moment, short_name, stamp
from aorta.cli.output import key_values
from aorta.wait_reasons import parse_line

STATE_STYLES = {"PENDING": "cyan", "RUNNING": "yellow", "STOPPED": "bold"}
STATUS_STYLES = {
    "HEALTHY": "green",
    "FAULTED": "red",
    "CANCELED": "magenta",
    "EVICTED": "red",
    "TERMINATED": "red",
}
_OPERATOR_MARKS = {
    "PENDING": ("○", "dim"),
    "RUNNING": ("●", "yellow"),
    "COMPLETED": ("✓", "green"),
    "FAULTED": ("✗", "red"),
    "CANCELED": ("⊘", "magenta"),
    "TERMINATED": ("⊘", "red"),
}
_STOPPED_BY_JOB = re.compile(r"operator (\S+) (CANCELED|TERMINATED)")


def stopped_by_job(header_messages: Iterable[str]) -> dict[str, str]:
    """The operators a Status header names as stopped by their job's stop, with the status to
    show for each (`operator writer CANCELED` -> {"writer": "CANCELED"})."""
    found: dict[str, str] = {}
    for line in header_messages:
        matched = _STOPPED_BY_JOB.fullmatch(line)
        if matched:
            found[matched.group(1)] = matched.group(2)
    return found


def state_name(value: jobs_pb2.JobState.ValueType) -> str:
    return short_name(jobs_pb2.JobState.Name(value), "JOB_STATE_")


def status_name(value: jobs_pb2.JobStatus.ValueType) -> str:
    return short_name(jobs_pb2.JobStatus.Name(value), "JOB_STATUS_")


def priority_name(value: jobs_pb2.JobPriority.ValueType) -> str:
    return short_name(jobs_pb2.JobPriority.Name(value), "JOB_PRIORITY_")


def operator_status_name(value: jobs_pb2.JobOperatorStatus.ValueType) -> str:
    return short_name(jobs_pb2.JobOperatorStatus.Name(value), "JOB_OPERATOR_STATUS_")


def span(started: datetime | None, stopped: datetime | None, now: datetime) -> float | None:
    """Seconds from `started` to `stopped` (or to `now` while running); None if not started."""
    if started is None:
        return None
    return ((stopped or now) - started).total_seconds()


@dataclass(frozen=True)
class OperatorView:
    """One operator of a job: the status to show and its times; `clara_status` is the wire's
    when it differs from `status` (FAULTED for an operator a cancel stopped), else ""."""

    name: str
    status: str
    started: datetime | None
    stopped: datetime | None
    clara_status: str = ""

    def label(self, now: datetime) -> Text:
        mark, style = _OPERATOR_MARKS.get(self.status, ("?", "dim"))
        text = Text(f"{mark} ", style=style)
        text.append(self.name, style="bold" if self.status == "RUNNING" else "")
        text.append(f"  {self.status}", style=style)
        seconds = span(self.started, self.stopped, now)
        if seconds is not None:
            text.append(f"  {duration(seconds)}", style="dim")
        return text


def _described(
    message: jobs_pb2.JobsListResponse.JobDetails | jobs_pb2.JobsStatusResponse, name: str
) -> dict[str, Any]:
    """The fields a `Jobs.List` item and `Jobs.Status` share, as `JobSummary` holds them."""
    return {
        "job_id": message.job_id.value,
        "name": name,
        "pipeline_id": message.pipeline_id.value,
        "payload_id": message.payload_id.value,
        "state": state_name(message.state),
        "status": status_name(message.status),
        "priority": priority_name(message.priority),
        "created": moment(message.created),
        "started": moment(message.started),
        "stopped": moment(message.stopped),
        "metadata": dict(message.metadata),
    }


@dataclass(frozen=True)
class JobSummary:
    """A job as one `Jobs.List` message describes it."""

    job_id: str
    name: str
    pipeline_id: str
    payload_id: str
    state: str
    status: str
    priority: str
    created: datetime | None
    started: datetime | None
    stopped: datetime | None
    metadata: dict[str, str]

    @classmethod
    def from_details(cls, job: jobs_pb2.JobsListResponse.JobDetails) -> JobSummary:
        return cls(**_described(job, job.job_name))

    def document(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "name": self.name,
            "pipeline_id": self.pipeline_id,
            "payload_id": self.payload_id,
            "state": self.state,
            "status": self.status,
            "priority": self.priority,
            "created": iso(self.created),
            "started": iso(self.started),
            "stopped": iso(self.stopped),
            "metadata": self.metadata,
        }


def _message_pair(line: str) -> tuple[str, str]:
    """A Status message as a key line: `waiting` for a wait reason (an operator's prefixed
    with its name), `message` for any other."""
    parsed = parse_line(line)
    if parsed is None:
        return "message", line
    operator, words = parsed
    return "waiting", f"{operator}: {words}" if operator else words


@dataclass(frozen=True)
class JobView(JobSummary):
    """A job as `Jobs.Status` described it: the summary, its messages, and its operators with
    the DAG they form; `owner` is the subject that created it and `trace_id` the job's
    OpenTelemetry trace, which the platform sends beside the response, "" when it sent none;
    `waiting` the typed wait reasons sent beside it (`aorta.wait_reasons`), empty when none."""

    messages: tuple[str, ...]
    operators: dict[str, OperatorView]
    dag: dags.Dag
    owner: str = ""
    trace_id: str = ""
    waiting: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_status(
        cls,
        response: jobs_pb2.JobsStatusResponse,
        owner: str = "",
        trace_id: str = "",
        waiting: Mapping[str, Any] | None = None,
    ) -> JobView:
        shown = stopped_by_job(response.header.messages)
        operators = {}
        for detail in response.operator_details:
            wire = operator_status_name(detail.status)
            status = shown.get(detail.name, wire) if wire == "FAULTED" else wire
            operators[detail.name] = OperatorView(
                detail.name,
                status,
                moment(detail.started),
                moment(detail.stopped),
                clara_status=wire if status != wire else "",
            )
        return cls(
            **_described(response, response.name),
            messages=tuple(response.messages),
            operators=operators,
            dag=dags.from_job(response.dag, operators),
            owner=owner,
            trace_id=trace_id,
            waiting=dict(waiting or {}),
        )

    def reason(self) -> str:
        """Why the job waits, in words: its own reason, else its first waiting operator's
        (`seg: needs 1 GPU; ...`); "" when nothing waits."""
        for line in self.messages:
            parsed = parse_line(line)
            if parsed is not None:
                operator, words = parsed
                return f"{operator}: {words}" if operator else words
        return ""

    @property
    def finished(self) -> bool:
        return self.state == "STOPPED"

    @property
    def exit_code(self) -> ExitCode:
        """0 for a job that ended HEALTHY, 1 for any other end."""
        return ExitCode.OK if self.status == "HEALTHY" else ExitCode.FAILED

    def signature(self) -> tuple[str, ...]:
        """What a change worth printing again is made of (not the ticking durations)."""
        return (
            self.state,
            self.status,
            *self.messages,
            *(f"{op.name}={op.status}" for op in self.operators.values()),
        )

    def operator(self, name: str) -> OperatorView:
        return self.operators.get(name) or OperatorView(name, "UNKNOWN", None, None)

    def document(self) -> dict[str, Any]:
        """The JSON form: ids, enum names without their prefix, RFC 3339 times (or null)."""
        return {
            **super().document(),
            "created_by": self.owner or None,
            "trace_id": self.trace_id or None,
            "messages": list(self.messages),
            "waiting": dict(self.waiting) or None,
            "operators": [
                {
                    "name": name,
                    "status": self.operator(name).status,
                    "clara_status": self.operator(name).clara_status or self.operator(name).status,
                    "started": iso(self.operator(name).started),
                    "stopped": iso(self.operator(name).stopped),
                    "upstream": self.dag.parents[name],
                }
                for name in self.dag.nodes
            ],
        }

    def renderable(self, now: datetime) -> Group:
        """The key lines, then the DAG tree."""
        pairs: list[tuple[str, str | Text]] = [
            ("name", self.name),
            ("id", self.job_id),
            ("pipeline", self.pipeline_id),
            ("payload", self.payload_id),
            ("state", Text(self.state, style=STATE_STYLES.get(self.state, ""))),
            ("status", Text(self.status, style=STATUS_STYLES.get(self.status, ""))),
            ("priority", self.priority),
            ("created", stamp(self.created)),
            *([("created by", self.owner)] if self.owner else []),
            ("started", stamp(self.started)),
            ("stopped", stamp(self.stopped)),
        ]
        seconds = span(self.started, self.stopped, now)
        if seconds is not None:
            pairs.append(("duration", duration(seconds)))
        if self.trace_id:
            pairs.append(("trace", self.trace_id))
        pairs += [_message_pair(message) for message in self.messages]
        pairs += [(f"metadata.{key}", value) for key, value in sorted(self.metadata.items())]
        title = Text("operators", style="bold")
        tree = dags.tree(self.dag, title, lambda name: self.operator(name).label(now))
        return Group(key_values(pairs), tree)
