"""`aorta list job`, and the `Jobs.List` calls behind it, which `list payload` makes too."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import click
from rich.text import Text

from aorta.api import common_pb2, jobs_pb2
from aorta.cli.connection import checked_replies, request_header
from aorta.cli.humanize import NOT_SET, ago, duration
from aorta.cli.jobs import status
from aorta.cli.jobview import STATE_STYLES, STATUS_STYLES, JobSummary, JobView, span
from aorta.cli.lookup import pipeline_id as resolve_pipeline
from aorta.cli.output import table
from aorta.cli.params import MOMENT
from aorta.cli.session import Session, with_session
from aorta.timestamps import to_clara_seconds, utcnow

_STATES = ("pending", "running", "stopped")
_STATUSES = ("healthy", "faulted", "canceled", "evicted", "terminated")


def list_request(
    states: Sequence[str],
    statuses: Sequence[str],
    pipelines: Sequence[str],
    created_after: datetime | None,
    completed_before: datetime | None,
) -> jobs_pb2.JobsListRequest:
    """A `Jobs.List` request with the filter the options describe (no filter: every job)."""
    request = jobs_pb2.JobsListRequest(header=request_header())
    job_filter = request.filter
    job_filter.has_state.extend(jobs_pb2.JobState.Value(f"JOB_STATE_{s.upper()}") for s in states)
    job_filter.has_status.extend(
        jobs_pb2.JobStatus.Value(f"JOB_STATUS_{s.upper()}") for s in statuses
    )
    job_filter.pipeline_id.extend(common_pb2.Identifier(value=p) for p in pipelines)
    if created_after is not None:
        job_filter.created_after.value = to_clara_seconds(created_after)
    if completed_before is not None:
        job_filter.completed_before.value = to_clara_seconds(completed_before)
    return request


def jobs_matching(
    session: Session, request: jobs_pb2.JobsListRequest, *, limit: int = 0
) -> Iterator[JobSummary]:
    """`Jobs.List` as it streams; messages without a job id are skipped, as Clara's client
    skips them.

    With a `limit`, the call is cancelled once that many jobs arrived: the platform reads its
    store a page at a time as the stream is consumed, so the rest is never read."""
    responses = session.platform.jobs.List(request)
    listed = 0
    try:
        for response in checked_replies(responses, "listing jobs"):
            if response.job_details.job_id.value:
                listed += 1
                yield JobSummary.from_details(response.job_details)
            if limit and listed >= limit:
                break
    finally:
        responses.cancel()


def list_jobs_matching(
    session: Session, request: jobs_pb2.JobsListRequest, *, limit: int = 0
) -> list[JobSummary]:
    """Every job `jobs_matching` lists, held for a table or document that needs them all."""
    return list(jobs_matching(session, request, limit=limit))


@click.command("job")
@click.option(
    "--state",
    "states",
    type=click.Choice(_STATES, case_sensitive=False),
    multiple=True,
    help="Only jobs in this state (repeatable).",
)
@click.option(
    "--status",
    "statuses",
    type=click.Choice(_STATUSES, case_sensitive=False),
    multiple=True,
    help="Only jobs with this status (repeatable).",
)
@click.option(
    "--pipeline",
    "pipelines",
    multiple=True,
    help="Only jobs of this pipeline: id, id prefix or name (repeatable).",
)
@click.option("--created-after", type=MOMENT, help="2024-05-01, 2024-05-01T10:30Z or 2h (ago).")
@click.option("--completed-before", type=MOMENT, help="As --created-after.")
@click.option(
    "--limit", type=click.IntRange(min=0), default=0, help="At most this many, newest (0: all)."
)
@with_session()
def list_jobs(
    session: Session,
    states: tuple[str, ...],
    statuses: tuple[str, ...],
    pipelines: tuple[str, ...],
    created_after: datetime | None,
    completed_before: datetime | None,
    limit: int,
) -> None:
    """List jobs, newest first.

    -o wide adds each job's pipeline, payload, creator, number of operators and, for a job
    that waits, why (one more call per job).
    """
    chosen = [resolve_pipeline(session, pipeline) for pipeline in pipelines]
    request = list_request(states, statuses, chosen, created_after, completed_before)
    if session.output.quiet or session.output.names:
        # Ids are printed as they stream, so a history of any length is never held; a table
        # needs every row first (its column widths) and a JSON or YAML document is one list.
        for job in jobs_matching(session, request, limit=limit):
            session.output.identify("job", job.job_id)
        return
    found = list_jobs_matching(session, request, limit=limit)
    now = utcnow()
    rows = [_row(job, now) for job in found]
    columns = ["JOB ID", "NAME", "STATE", "STATUS", "PRIORITY", "CREATED", "DURATION"]
    wide = None
    if session.output.wide:
        views = [_wide_columns(status(session, job.job_id)) for job in found]
        wide = table(
            [*columns, "PIPELINE", "PAYLOAD ID", "CREATED BY", "OPERATORS", "REASON"],
            [
                (*row, job.pipeline_id, job.payload_id, *more)
                for row, job, more in zip(rows, found, views, strict=True)
            ],
        )
    session.output.emit(
        human=table(columns, rows),
        wide=wide,
        document=[job.document() for job in found],
        ids=[job.job_id for job in found],
        kind="job",
    )


def _wide_columns(view: JobView) -> tuple[str, str, str]:
    """CREATED BY, OPERATORS and REASON of `list jobs -o wide`."""
    return view.owner or NOT_SET, str(len(view.operators)), view.reason() or NOT_SET


def _row(job: JobSummary, now: datetime) -> tuple[str | Text, ...]:
    seconds = span(job.started, job.stopped, now)
    return (
        job.job_id,
        job.name,
        Text(job.state, style=STATE_STYLES.get(job.state, "")),
        Text(job.status, style=STATUS_STYLES.get(job.status, "")),
        job.priority,
        ago(job.created, now),
        duration(seconds) if seconds is not None else NOT_SET,
    )
