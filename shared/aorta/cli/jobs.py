"""`aorta create|start|cancel|stop|delete job`, and the job calls `run` and the watch views share
(`list job`: `aorta.cli.joblist`).

Jobs and pipelines are named by id, unique id prefix or name (`aorta.cli.lookup`), as a
positional argument or through Clara's `-j`/`-p`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from aorta import wait_reasons
from aorta.api import aorta_jobs_pb2, aorta_jobs_pb2_grpc, common_pb2, jobs_pb2
from aorta.auth.ownership import owner_from_metadata
from aorta.cli.connection import UNARY_TIMEOUT, check, request_header
from aorta.cli.failures import UsageFailure
from aorta.cli.files import collect
from aorta.cli.jobview import JobView, priority_name, state_name, status_name
from aorta.cli.lookup import job_id as resolve_job
from aorta.cli.lookup import named
from aorta.cli.lookup import pipeline_id as resolve_pipeline
from aorta.cli.params import KEY_VALUE, PRIORITY
from aorta.cli.session import Session, with_session
from aorta.cli.transfers import recorded_sha256, upload
from aorta.observability import TRACE_ID_METADATA


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
