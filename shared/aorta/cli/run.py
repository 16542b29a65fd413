"""`aorta run`: a pipeline on some input in one command.

It registers the definition (or takes a registered pipeline's id), creates a job, uploads the
input, starts it, watches the DAG until the job stops, downloads every operator output into
`-o`, prints the last log lines of a faulted operator, and exits 0 for HEALTHY, 1 otherwise.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import click

from aorta.cli import jobs, lookup, pipelines
from aorta.cli.definitions import collect_definition, pipeline_name
from aorta.cli.failures import NotFoundFailure, PlatformFailure, UsageFailure
from aorta.cli.files import collect
from aorta.cli.jobview import JobView
from aorta.cli.logs import read_logs
from aorta.cli.params import KEY_VALUE, PRIORITY
from aorta.cli.session import Session, with_session
from aorta.cli.transfers import Downloaded, download, upload
from aorta.cli.watch import DEFAULT_INTERVAL, watch_job
from aorta.timestamps import utcnow

OUTPUTS = "/operators"
_LOG_TAIL = 20
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _pipeline(session: Session, given: str) -> tuple[str, str]:
    """(pipeline id, name for the job) for a definition file, or a registered pipeline's id."""
    path = Path(given)
    if path.is_file():
        name = pipeline_name(collect_definition(path)) or path.stem
        return pipelines.create(session, path), name
    if path.suffix in (".yml", ".yaml") or "/" in given:
        raise UsageFailure(f"{given} is neither a definition file nor a pipeline id or name")
    return lookup.pipeline_id(session, given), "run"


def _job_name(base: str) -> str:
    """`<pipeline>-<UTC time>`, within Clara's name rules (letters, digits, `-`, `_`)."""
    cleaned = _NAME_UNSAFE.sub("-", base).strip("-") or "run"
    return f"{cleaned[:200]}-{utcnow():%Y%m%d-%H%M%S}"


@click.command("run")
@click.option(
    "-p",
    "--pipeline",
    "pipeline",
    required=True,
    help="A definition file (registered now) or the id of a registered pipeline.",
)
@click.option(
    "-f",
    "--input",
    "source",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="The input file or folder.",
)
@click.option(
    "--results",
    "results",
    type=click.Path(file_okay=False, path_type=Path),
    help="Download every operator output here (as <operator>/...); -o FOLDER says the same.",
)
@click.option("-n", "--name", help="Job name [default: <pipeline name>-<time>].")
@click.option("-i", "--priority", type=PRIORITY, default="normal", show_default=True)
@click.option(
    "--var",
    "variables",
    type=KEY_VALUE,
    multiple=True,
    help="name=value pipeline parameter (repeatable).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=DEFAULT_INTERVAL,
    show_default=True,
    help="Seconds between status polls.",
)
@with_session(folder_option="results")
def run(
    session: Session,
    pipeline: str,
    source: Path,
    results: Path | None,
    name: str | None,
    priority: str,
    variables: tuple[tuple[str, str], ...],
    interval: float,
) -> int:
    """Run a pipeline on an input and fetch its results: create, upload, start, watch, download."""
    output = session.output
    files = collect(source)
    pipeline_id, base_name = _pipeline(session, pipeline)
    job_name = name or _job_name(base_name)
    job_id, payload_id = jobs.create(session, pipeline_id, job_name, priority)
    if output.human:
        for label, value in (
            ("PIPELINE_ID", pipeline_id),
            ("JOB_ID", job_id),
            ("PAYLOAD_ID", payload_id),
        ):
            output.line(f"{label}:{value}")
    elif not output.structured:
        output.emit(human="", document=None, ids=[job_id], kind="job")
    if files:
        output.note(f"Uploaded {upload(session, payload_id, files).summary()}.")
    jobs.start(session, job_id, variables)
    final = (
        watch_job(session, job_id, interval) if output.human else _wait(session, job_id, interval)
    )
    downloaded: list[Downloaded] = []
    if results is not None:
        try:
            downloaded = download(session, payload_id, OUTPUTS + "/*", results)
            output.note(f"Downloaded {len(downloaded)} output file(s) to {results}.")
        except NotFoundFailure:
            output.note("The job wrote no outputs.")
    for operator in final.operators.values():
        if operator.status == "FAULTED":
            _show_log_tail(session, job_id, operator.name)
    if output.structured:
        output.document(final.document() | {"downloaded": [file.document() for file in downloaded]})
    return final.exit_code


def _wait(session: Session, job_id: str, interval: float) -> JobView:
    """Polls without printing (JSON and quiet modes print only the outcome)."""
    while not (view := jobs.status(session, job_id)).finished:
        time.sleep(interval)
    return view


def _show_log_tail(session: Session, job_id: str, operator: str) -> None:
    try:
        lines = read_logs(session, job_id, operator)
    except PlatformFailure as failure:
        session.output.error(f"no log for {operator}: {failure.message}")
        return
    tail = "".join(f"\n  {line}" for line in lines[-_LOG_TAIL:])
    session.output.error(f"operator {operator} FAULTED; the last lines of its log:{tail}")
