"""`aorta describe job [--watch | --timeline]`: looking at one job, once or until it stops (its
logs are `aorta.cli.logs`, its timeline `aorta.cli.timeline`).

Watching polls `Jobs.Status`: on a terminal a rich Live view redraws the description in place
(durations tick between polls). Elsewhere (a CI log, a pipe) the description is printed once,
then one line per change stamped with the poll's UTC time (see jobchanges), such as

    10:15:45  operator segment  RUNNING -> COMPLETED (41s)

then the final description once the job stops, so a log reads as a compact history however
many operators the pipeline has. With `--json` each change is one JSON line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import click
from rich.console import Group
from rich.live import Live

from aorta.cli.connection import UNARY_TIMEOUT, check, request_header
from aorta.cli.failures import ExitCode
from aorta.cli.jobchanges import changes
from aorta.cli.jobs import status
from aorta.cli.jobview import JobView
from aorta.cli.lookup import job_id as resolve_job
from aorta.cli.lookup import named
from aorta.cli.output import Output
from aorta.cli.services import job_services, service_document, services_table
from aorta.cli.session import Session, with_session
from aorta.cli.timeline import Timeline
from aorta.cli.timeline import fetch as fetch_timeline
from aorta.timestamps import utcnow

DEFAULT_INTERVAL = 1.0
_INTERVAL = click.FloatRange(min=0.05)


def watch_job(session: Session, job_id: str, interval: float) -> JobView:
    """Shows the job until it is STOPPED and returns its final view."""
    output = session.output
    if output.live:
        return _watch_live(session, job_id, interval)
    views = _polls(session, job_id, interval)
    if output.human:
        return _print_history(output, views)
    return _print_documents(output, views)


def _polls(session: Session, job_id: str, interval: float) -> Iterator[JobView]:
    """The job's view every `interval` seconds, up to and including the first STOPPED one."""
    while True:
        view = status(session, job_id)
        yield view
        if view.finished:
            return
        time.sleep(interval)


def _watch_live(session: Session, job_id: str, interval: float) -> JobView:
    view = status(session, job_id)
    with Live(
        get_renderable=lambda: view.renderable(utcnow()),
        console=session.output.out,
        refresh_per_second=4,
    ):
        while not view.finished:
            time.sleep(interval)
            view = status(session, job_id)
    return view


def _print_history(output: Output, views: Iterator[JobView]) -> JobView:
    """The description, a stamped line per change while the job runs, the final description."""
    first = next(views)
    output.show(first.renderable(utcnow()))
    if first.finished:
        return first
    output.line()
    last = first
    for view in views:
        stamp = f"{utcnow():%H:%M:%S}"
        for change in changes(last, view):
            output.line(f"{stamp}  {change}")
        last = view
    output.line()
    output.show(last.renderable(utcnow()))
    return last


def _print_documents(output: Output, views: Iterator[JobView]) -> JobView:
    """With -o json one compact document per change (-o yaml: a YAML stream); nothing in the
    quiet and name modes."""
    last = next(views)
    if output.structured:
        output.document(last.document(), stream=True)
    for view in views:
        if output.structured and view.signature() != last.signature():
            output.document(view.document(), stream=True)
        last = view
    return last


@click.command("job")
@named("job", "-j", "--job", dest="job")
@click.option(
    "-w", "--watch", is_flag=True, help="Refresh until the job stops; exit 1 unless HEALTHY."
)
@click.option(
    "--interval",
    type=_INTERVAL,
    default=DEFAULT_INTERVAL,
    show_default=True,
    help="Seconds between polls with --watch.",
)
@click.option(
    "--timeline",
    is_flag=True,
    help="Show where the job's time went: a Gantt chart of its queue and Triton waits and of "
    "each operator attempt's stages (-o json: the numbers).",
)
@with_session()
def describe_job(session: Session, job: str, watch: bool, interval: float, timeline: bool) -> int:
    """Show a job: key lines, then its operators as a tree with status and duration."""
    job_id = resolve_job(session, job)
    if timeline:
        if watch:
            raise click.UsageError("--timeline shows the job once; it cannot be combined with -w")
        response = fetch_timeline(session.platform.channel, job_id, request_header(), UNARY_TIMEOUT)
        check(response, f"reading the timeline of job {job_id}")
        chart = Timeline.from_response(response)
        session.output.emit(
            human="\n".join(chart.lines(time.time())),
            document=chart.document(),
            ids=[job_id],
            kind="job",
        )
        return ExitCode.OK
    if watch:
        view = watch_job(session, job_id, interval)
        session.output.identify("job", job_id)
        return view.exit_code
    view = status(session, job_id)
    used = job_services(session, job_id, view.pipeline_id)
    human = view.renderable(utcnow())
    if used:
        human = Group(human, "", services_table(used))
    document = view.document() | {"services": [service_document(s) for s in used]}
    session.output.emit(human=human, document=document, ids=[job_id], kind="job")
    return ExitCode.OK
