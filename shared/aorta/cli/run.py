"""`aorta run`: a pipeline on some input in one command.

It registers the definition (or takes a registered pipeline's id), creates a job, uploads the
input, starts it, watches the DAG until the job stops, downloads every operator output into
`-o`, prints the last log lines of a faulted operator, and exits 0 for HEALTHY, 1 otherwise.

A definition file is registered only when it changed: the newest registered pipeline of the
same name whose files are the same (paths and contents) is used instead, so running one file
again and again leaves one pipeline. The job is named `<pipeline name>-<UTC time>`, whether the
pipeline came as a file or as an id, prefix or name.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import click

from aorta.cli import jobs, lookup, pipelines
from aorta.cli.definitions import DefinitionFile, collect_definition, pipeline_name
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
    """(pipeline id, name for the job) for a definition file (registered unless an identical
    one is), or a registered pipeline's id, prefix or name."""
    path = Path(given)
    if path.is_file():
        files = collect_definition(path)
        declared = pipeline_name(files)
        unchanged = _registered_copy(session, declared, files) if declared else None
        if unchanged is not None:
            session.output.note(f"using pipeline {unchanged} (unchanged)")
            return unchanged, declared or path.stem
        created = pipelines.create(session, path)
        session.output.note(f"registered pipeline {created} from {path}")
        return created, declared or path.stem
    if path.suffix in (".yml", ".yaml") or "/" in given:
        raise UsageFailure(f"{given} is neither a definition file nor a pipeline id or name")
    pipeline_id = lookup.pipeline_id(session, given)
    document, _ = pipelines.details(session, pipeline_id)
    return pipeline_id, str(document["name"]) or "run"


def same_definition(files: list[DefinitionFile], registered: list[dict[str, str]]) -> bool:
    """Whether a registered pipeline's definition (`pipelines.details`' `definition`) is made
    of exactly `files`: the same paths (ignoring case, as the platform does) and contents."""
    mine = {file.path.casefold(): file.text for file in files}
    theirs = {item["path"].casefold(): item["content"] for item in registered}
    return mine == theirs


def _registered_copy(session: Session, name: str, files: list[DefinitionFile]) -> str | None:
    """The newest registered pipeline named `name` whose definition is `files`, if any."""
    for candidate in reversed(lookup.pipeline_candidates(session)):
        if candidate.name != name:
            continue
        document, _ = pipelines.details(session, candidate.id)
        if same_definition(files, document["definition"]):
            return candidate.id
    return None


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
    else:
        output.identify("job", job_id)
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
            checked = sum(file.verified for file in downloaded)
            output.note(
                f"Downloaded {len(downloaded)} output file(s) to {results}; {checked} checked "
                "against the SHA-256 recorded when they were stored."
            )
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
