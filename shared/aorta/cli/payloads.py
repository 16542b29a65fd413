"""`aorta create|list|describe|delete payload`, `aorta upload` and `aorta download`.

Clara's Payloads service has no List call. `aorta list payloads` therefore lists the payloads
of all jobs (from `Jobs.List`), one row per job; REUSABLE payloads made with `aorta create
payload` belong to no job and cannot be listed through the API, so keep their ids.

A payload is named by its full id, as a positional argument or through `--payload`; a job (for
`download -j` and `download job`) also by id prefix or name (`aorta.cli.lookup`).

Uploads and downloads take the direct path to the blob store where the platform offers it
(docs/payloads.md); `--via-gateway` keeps every byte on the gRPC path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Group
from rich.text import Text

from aorta.api import payloads_pb2
from aorta.cli import joblist, jobs
from aorta.cli.connection import UNARY_TIMEOUT, check, request_header
from aorta.cli.failures import ExitCode, NotFoundFailure, PlatformFailure, UsageFailure
from aorta.cli.files import collect
from aorta.cli.humanize import ago, size
from aorta.cli.lookup import job_id as resolve_job
from aorta.cli.lookup import named
from aorta.cli.output import key_values, table
from aorta.cli.params import KEY_VALUE, PAYLOAD_ID
from aorta.cli.selection import EVERYTHING, split_clara_source
from aorta.cli.session import Session, with_session
from aorta.cli.transfers import delete, download, listing, recorded_sha256, upload
from aorta.ids import payload_id as canonical_payload
from aorta.timestamps import utcnow


@click.command("payload")
@click.option("--metadata", type=KEY_VALUE, multiple=True, help="key=value (repeatable).")
@with_session()
def create_payload(session: Session, metadata: tuple[tuple[str, str], ...]) -> None:
    """Create an empty REUSABLE payload; prints PAYLOAD_ID:<id>."""
    request = payloads_pb2.PayloadsCreateRequest(header=request_header())
    for key, value in metadata:
        request.metadata[key] = value
    response = session.platform.payloads.Create(request, timeout=UNARY_TIMEOUT)
    check(response, "creating a payload")
    payload_id = response.payload_id.value
    session.output.emit(
        human=f"PAYLOAD_ID:{payload_id}",
        document={"payload_id": payload_id},
        ids=[payload_id],
        kind="payload",
    )


def _upload_arguments(payload_id: str | None, words: Sequence[str]) -> tuple[str, Path, str | None]:
    """(payload, source, name) from `--payload P SOURCE [NAME]` or `P SOURCE [NAME]`."""
    if payload_id is None:
        if not 2 <= len(words) <= 3:
            raise click.UsageError("give PAYLOAD SOURCE [NAME], or --payload PAYLOAD SOURCE [NAME]")
        payload_id, *words = canonical_payload(words[0]), *words[1:]
    elif not 1 <= len(words) <= 2:
        raise click.UsageError("give SOURCE [NAME] after --payload PAYLOAD")
    source = Path(words[0])
    if not source.exists():
        raise UsageFailure(f"{source} does not exist")
    return payload_id, source, words[1] if len(words) > 1 else None


VIA_GATEWAY = click.option(
    "--via-gateway",
    is_flag=True,
    help="Send the bytes through the platform's gRPC API, never straight to its blob store.",
)


@click.command("upload")
@click.option("--payload", "payload_id", type=PAYLOAD_ID, help="The payload (or give it first).")
@click.argument("words", nargs=-1, required=True, metavar="[PAYLOAD] SOURCE [NAME]")
@VIA_GATEWAY
@with_session()
def upload_command(
    session: Session, payload_id: str | None, words: tuple[str, ...], via_gateway: bool
) -> None:
    """Upload a file or a folder into a payload's input.

    `upload PAYLOAD SOURCE [NAME]`, or `upload --payload PAYLOAD SOURCE [NAME]`. NAME renames
    a single file; for a folder it is a folder inside the payload to upload into.
    """
    payload_id, source, name = _upload_arguments(payload_id, words)
    if name is not None and source.is_file():
        files = [dataclasses.replace(f, name=name.strip("/")) for f in collect(source)]
    else:
        files = collect(source, prefix=name or "")
    if not files:
        raise UsageFailure(f"{source} holds no files to upload")
    transfer = upload(session, payload_id, files, via_gateway=via_gateway)
    session.output.note(f"Uploaded {transfer.summary()}.")
    uploaded = list(zip(files, recorded_sha256(payload_id, files, transfer), strict=True))
    session.output.emit(
        human=table(
            ["NAME", "SIZE", "SHA-256"], [(f.name, size(f.size), sha or "-") for f, sha in uploaded]
        ),
        document={
            "payload_id": payload_id,
            "uploaded": [{"name": f.name, "size": f.size, "sha256": sha} for f, sha in uploaded],
        },
        ids=[payload_id],
        kind="payload",
    )


@click.command("payload")
@with_session()
def list_payloads(session: Session) -> None:
    """List the payloads of all jobs (Clara has no call that lists payloads themselves).

    -o wide adds each job's status and pipeline.
    """
    found = joblist.list_jobs_matching(session, joblist.list_request((), (), (), None, None))
    now = utcnow()
    rows = [
        (job.payload_id, job.job_id, job.name, job.state, ago(job.created, now)) for job in found
    ]
    columns = ["PAYLOAD ID", "JOB ID", "JOB NAME", "JOB STATE", "CREATED"]
    wide = [(*row, job.status, job.pipeline_id) for row, job in zip(rows, found, strict=True)]
    session.output.emit(
        human=table(columns, rows),
        wide=table([*columns, "JOB STATUS", "PIPELINE ID"], wide),
        document=[
            {
                "payload_id": job.payload_id,
                "job_id": job.job_id,
                "job_name": job.name,
                "job_state": job.state,
            }
            for job in found
        ],
        ids=[job.payload_id for job in found],
        kind="payload",
    )


@click.command("payload")
@named("payload", "--payload", dest="payload", forms="its id")
@with_session(quiet=False)
def describe_payload(session: Session, payload: str) -> None:
    """Show a payload: type, job, metadata, and its files with their sizes."""
    payload_id = canonical_payload(payload)
    found = listing(session, payload_id)
    total = sum(file.size for file in found.files)
    pairs = [
        ("id", payload_id),
        ("type", found.kind),
        ("job", found.job_id or "-"),
        *([("created by", found.owner)] if found.owner else []),
        ("files", f"{len(found.files)} ({size(total)})"),
    ]
    pairs += [(f"metadata.{key}", value) for key, value in sorted(found.metadata.items())]
    rows = [
        (file.name, size(file.size), f"{file.mode:o}" if file.mode else "-", file.sha256 or "-")
        for file in found.files
    ]
    session.output.emit(
        human=Group(key_values(pairs), Text(), table(["NAME", "SIZE", "MODE", "SHA-256"], rows)),
        document=found.document(),
        ids=[payload_id],
        kind="payload",
    )


@click.command("payload")
@named("payload", "--payload", dest="payload", forms="its id")
@click.option(
    "--force",
    is_flag=True,
    help="Admins only: delete a stopped job's read-only payload without the job.",
)
@with_session()
def delete_payload(session: Session, payload: str, force: bool) -> None:
    """Delete a payload and its files.

    A job's own payload goes with its job (`aorta delete job`): the platform refuses to delete
    it alone while the job can still run, and once it stopped unless an admin adds --force.
    """
    payload_id = canonical_payload(payload)
    delete(session, payload_id, force=force)
    session.output.emit(
        human=f"Payload {payload_id} deleted.",
        document={"payload_id": payload_id, "deleted": True},
        ids=[payload_id],
        kind="payload",
    )


def _payload_of(session: Session, job_id: str, *, or_payload: bool) -> str:
    """The payload of job `job_id`; with `or_payload`, an id that names no job may name a
    payload itself (Clara users pass either in `ID:/path`)."""
    try:
        return jobs.status(session, job_id).payload_id
    except PlatformFailure as failure:
        if not or_payload or failure.exit_code != ExitCode.NOT_FOUND:
            raise
    try:
        listing(session, job_id)
    except PlatformFailure as failure:
        if failure.exit_code != ExitCode.NOT_FOUND:
            raise
        raise NotFoundFailure(f"{job_id} names neither a job nor a payload") from failure
    return job_id


def _pattern_and_dest(paths: Sequence[str]) -> tuple[str, str]:
    if len(paths) > 2:
        raise click.UsageError("give at most a PATH_OR_GLOB and a DEST")
    *sources, dest = paths
    return (sources[0] if sources else EVERYTHING), dest


@click.command("files")
@click.option(
    "-j", "--job", "job", help="Download from this job's payload (id, id prefix or name)."
)
@click.option("--payload", "payload_id", type=PAYLOAD_ID, help="Download from this payload.")
@click.argument("paths", nargs=-1, required=True, metavar="[PATH_OR_GLOB] DEST")
@VIA_GATEWAY
@with_session()
def download_files(
    session: Session,
    job: str | None,
    payload_id: str | None,
    paths: tuple[str, ...],
    via_gateway: bool,
) -> None:
    """Download payload files: `download -j JOB '/operators/seg/*' out/`, or Clara's
    `download JOB:/operators/seg/* out/`. Without a pattern, everything is downloaded."""
    pattern, dest = _pattern_and_dest(paths)
    clara_form = split_clara_source(pattern) if len(paths) == 2 else None
    if (job is not None) + (payload_id is not None) + (clara_form is not None) != 1:
        raise click.UsageError("name exactly one source: -j JOB, --payload ID, or JOB:/PATH")
    if clara_form is not None:
        source_id = _payload_of(session, clara_form[0], or_payload=True)
        pattern = clara_form[1]
    elif job is not None:
        source_id = _payload_of(session, resolve_job(session, job), or_payload=False)
    else:
        source_id = str(payload_id)
    _fetch(session, source_id, pattern, dest, via_gateway)


@click.command("payload")
@click.argument("payload", metavar="PAYLOAD")
@click.argument("paths", nargs=-1, required=True, metavar="[PATH_OR_GLOB] DEST")
@VIA_GATEWAY
@with_session()
def download_payload(
    session: Session, payload: str, paths: tuple[str, ...], via_gateway: bool
) -> None:
    """Download a payload's files: `download payload ID [PATH_OR_GLOB] DEST`."""
    pattern, dest = _pattern_and_dest(paths)
    _fetch(session, canonical_payload(payload), pattern, dest, via_gateway)


@click.command("job")
@click.argument("job", metavar="JOB")
@click.argument("paths", nargs=-1, required=True, metavar="[PATH_OR_GLOB] DEST")
@VIA_GATEWAY
@with_session()
def download_job(session: Session, job: str, paths: tuple[str, ...], via_gateway: bool) -> None:
    """Download a job's payload files: `download job JOB [PATH_OR_GLOB] DEST`."""
    pattern, dest = _pattern_and_dest(paths)
    source_id = _payload_of(session, resolve_job(session, job), or_payload=False)
    _fetch(session, source_id, pattern, dest, via_gateway)


def _fetch(session: Session, source_id: str, pattern: str, dest: str, via_gateway: bool) -> None:
    chosen = download(session, source_id, pattern, Path(dest), via_gateway=via_gateway)
    verified = sum(file.verified for file in chosen)
    direct = sum(file.direct for file in chosen)
    straight = f" ({direct} straight from the blob store)" if direct else ""
    session.output.note(
        f"Downloaded {len(chosen)} file(s) to {dest}{straight}; {verified} checked against the "
        "SHA-256 recorded when stored."
    )
    session.output.emit(
        human=table(
            ["PATH", "SHA-256", "CHECKED"],
            [(str(f.target), f.sha256, "yes" if f.verified else "-") for f in chosen],
        ),
        document={"payload_id": source_id, "downloaded": [f.document() for f in chosen]},
        ids=[str(f.target) for f in chosen],
    )
