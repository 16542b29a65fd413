"""`aorta create|start|list|cancel|stop job`, and the job calls `run` and the watch views share.

Jobs and pipelines are named by id, unique id prefix or name (`aorta.cli.lookup`), as a
positional argument or through Clara's `-j`/`-p`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from aorta import wait_reasons
from aorta.api import aorta_jobs_pb2, aorta_jobs_pb2_grpc, common_pb2, jobs_pb2
from aorta.auth.ownership import owner_from_metadata
from aorta.cli.connection import UNARY_TIMEOUT, check, request_header
from aorta.cli.failures import UsageFailure
from aorta.cli.files import collect
from aorta.cli.humanize import NOT_SET, ago, duration
from aorta.cli.jobview import (
    STATE_STYLES,
    STATUS_STYLES,
    JobSummary,
    JobView,
    priority_name,
    span,
    state_name,
    status_name,
)
from aorta.cli.lookup import job_id as resolve_job
from aorta.cli.lookup import named
from aorta.cli.lookup import pipeline_id as resolve_pipeline
from aorta.cli.output import table
from aorta.cli.params import KEY_VALUE, MOMENT, PRIORITY
from aorta.cli.session import Session, with_session
from aorta.cli.transfers import recorded_sha256, upload
from aorta.observability import TRACE_ID_METADATA
from aorta.timestamps import to_clara_seconds, utcnow

_STATES = ("pending", "running", "stopped")
_STATUSES = ("healthy", "faulted", "canceled", "evicted", "terminated")


def create(
    session: Session,
    pipeline_id: str,
    name: str,
    priority: str = "normal",
    metadata: Sequence[tuple[str, str]] = (),
) -> tuple[str, str]:
    """`Jobs.Create`; returns (job id, payload id)."""
    request = jobs_pb2.JobsCreateRequest(
        header=request_header(),
        pipeline_id=common_pb2.Identifier(value=pipeline_id),
        name=name,
        priority=jobs_pb2.JobPriority.Value(f"JOB_PRIORITY_{priority.upper()}"),
    )
    for key, value in metadata:
        request.metadata[key] = value
    response = session.platform.jobs.Create(request, timeout=UNARY_TIMEOUT)
    check(response, f"creating job {name!r}")
    return response.job_id.value, response.payload_id.value


def start(
    session: Session, job_id: str, variables: Sequence[tuple[str, str]] = ()
) -> jobs_pb2.JobsStartResponse:
    """`Jobs.Start` with pipeline parameters as `Variables`."""
    request = jobs_pb2.JobsStartRequest(
        header=request_header(),
        job_id=common_pb2.Identifier(value=job_id),
        Variables=[jobs_pb2.JobsStartRequest.NamedValue(name=k, value=v) for k, v in variables],
    )
    response = session.platform.jobs.Start(request, timeout=UNARY_TIMEOUT)
    check(response, f"starting job {job_id}")
    return response


def status(session: Session, job_id: str) -> JobView:
    """`Jobs.Status` as a `JobView`, with the job's creator, trace id and typed wait reasons
    when the platform names them."""
    request = jobs_pb2.JobsStatusRequest(
        header=request_header(), job_id=common_pb2.Identifier(value=job_id)
    )
    response, call = session.platform.jobs.Status.with_call(request, timeout=UNARY_TIMEOUT)
    check(response, f"describing job {job_id}")
    metadata = call.initial_metadata()
    trace_id = next((str(v) for k, v in metadata or () if k == TRACE_ID_METADATA), "")
    waiting = wait_reasons.from_metadata(metadata)
    return JobView.from_status(response, owner_from_metadata(metadata), trace_id, waiting)


@click.command("job")
@click.option(
    "-p",
    "--pipeline",
    "pipeline",
    required=True,
    help="The pipeline: id, unique id prefix or name (the newest of that name).",
)
@click.option("-n", "--name", required=True, help="The job's name.")
@click.option(
    "-f",
    "--input",
    "source",
    type=click.Path(exists=True, path_type=Path),
    help="A file or folder uploaded into the job's payload (names relative to the folder).",
)
@click.option("-i", "--priority", type=PRIORITY, default="normal", show_default=True)
@click.option("-s", "--start", "start_now", is_flag=True, help="Start the job once created.")
@click.option(
    "--var",
    "variables",
    type=KEY_VALUE,
    multiple=True,
    help="name=value pipeline parameter for --start (repeatable).",
)
@click.option("--metadata", type=KEY_VALUE, multiple=True, help="key=value (repeatable).")
@with_session()
def create_job(
    session: Session,
    pipeline: str,
    name: str,
    source: Path | None,
    priority: str,
    start_now: bool,
    variables: tuple[tuple[str, str], ...],
    metadata: tuple[tuple[str, str], ...],
) -> None:
    """Create a job, upload its input, optionally start it.

    The first two lines printed are JOB_ID:<id> and PAYLOAD_ID:<id>, as Clara printed them;
    with -q the job id alone (the payload id is in -o json), with -o name `job/<id>`.
    """
    if variables and not start_now:
        raise click.UsageError("--var needs --start (or give it to `aorta start job`)")
    files = collect(source) if source is not None else []
    pipeline_id = resolve_pipeline(session, pipeline)
    job_id, payload_id = create(session, pipeline_id, name, priority, metadata)
    output = session.output
    if output.human:
        output.line(f"JOB_ID:{job_id}")
        output.line(f"PAYLOAD_ID:{payload_id}")
    else:
        output.identify("job", job_id)
    document: dict[str, Any] = {
        "job_id": job_id,
        "payload_id": payload_id,
        "pipeline_id": pipeline_id,
        "name": name,
        "priority": priority.upper(),
        "uploaded": [{"name": f.name, "size": f.size} for f in files],
        "started": False,
    }
    if files:
        transfer = upload(session, payload_id, files)
        output.note(f"Uploaded {transfer.summary()}.")
        digests = recorded_sha256(payload_id, files, transfer)
        document["uploaded"] = [
            {"name": f.name, "size": f.size, "sha256": digest}
            for f, digest in zip(files, digests, strict=True)
        ]
    elif source is not None:
        output.note(f"{source} holds no files; nothing was uploaded.")
    if start_now:
        started = start(session, job_id, variables)
        document |= {
            "started": True,
            "state": state_name(started.state),
            "status": status_name(started.status),
        }
        output.note(f"Started: {state_name(started.state)}, {priority_name(started.priority)}.")
    if output.structured:
        output.document(document)


@click.command("job")
@named("job", "-j", "--job", dest="job")
@click.option(
    "--var",
    "variables",
    type=KEY_VALUE,
    multiple=True,
    help="name=value pipeline parameter (repeatable).",
)
@with_session()
def start_job(session: Session, job: str, variables: tuple[tuple[str, str], ...]) -> None:
    """Start a PENDING job (it is queued until resources are free)."""
    job_id = resolve_job(session, job)
    response = start(session, job_id, variables)
    document = {
        "job_id": job_id,
        "state": state_name(response.state),
        "status": status_name(response.status),
        "priority": priority_name(response.priority),
    }
    session.output.emit(
        human=f"Job {job_id} started: {document['state']}, {document['priority']} priority.",
        document=document,
        ids=[job_id],
        kind="job",
    )


@click.command("job")
@named("job", "-j", "--job", dest="job")
@click.option("--reason", default="", help="Why; kept with the job.")
@with_session()
def cancel_job(session: Session, job: str, reason: str) -> None:
    """Cancel a pending or running job (`stop job` is Clara's name for it)."""
    job_id = resolve_job(session, job)
    request = jobs_pb2.JobsCancelRequest(
        header=request_header(), job_id=common_pb2.Identifier(value=job_id), reason=reason
    )
    response = session.platform.jobs.Cancel(request, timeout=UNARY_TIMEOUT)
    check(response, f"canceling job {job_id}")
    state, outcome = state_name(response.job_state), status_name(response.job_status)
    session.output.emit(
        human=f"Job {job_id} canceled: {state}, {outcome}.",
        document={"job_id": job_id, "state": state, "status": outcome},
        ids=[job_id],
        kind="job",
    )


@click.command("job")
@named("job", "-j", "--job", dest="job")
@click.option("-y", "--yes", is_flag=True, help="Do not ask; needed when not on a terminal.")
@with_session()
def delete_job(session: Session, job: str, yes: bool) -> None:
    """Delete a stopped job with its payload (inputs and outputs) and its operators' logs.

    On a terminal it asks first; elsewhere it needs --yes. A job still running is refused:
    cancel (or stop) it first.
    """
    job_id = resolve_job(session, job)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageFailure(f"deleting job {job_id} cannot be undone: add --yes")
        click.confirm(f"Delete job {job_id}, its payload and its logs?", abort=True, err=True)
    request = aorta_jobs_pb2.JobsDeleteRequest(
        header=request_header(), job_id=common_pb2.Identifier(value=job_id)
    )
    stub = aorta_jobs_pb2_grpc.JobsStub(session.platform.channel)
    response = stub.Delete(request, timeout=UNARY_TIMEOUT)
    check(response, f"deleting job {job_id}")
    payload_id = response.payload_id.value or None
    with_payload = f", its payload {payload_id}" if payload_id else ""
    session.output.emit(
        human=f"Job {job_id} deleted{with_payload} and {response.logs_removed} operator log(s).",
        document={
            "job_id": job_id,
            "deleted": True,
            "payload_id": payload_id,
            "logs_removed": response.logs_removed,
        },
        ids=[job_id],
        kind="job",
    )


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
        for index, response in enumerate(responses):
            if index == 0:
                check(response, "listing jobs")
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
