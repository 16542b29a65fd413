"""`aorta logs JOB [OPERATOR]`: a job's operator logs, all of them or one, once or following.

Without an operator every operator's log is printed in DAG order, each line prefixed with its
operator as `kubectl logs --prefix` does (`[reader] loaded 12 slices`); with one (`-o OP`, or
the second argument) its lines alone. `--follow` keeps printing the lines that arrive, of one
operator or of all of them interleaved as they come, until the job stops. An operator the job
does not have is "not found" (exit 3) with the names it has; an operator that has not run is
said to have not run, with its status, rather than printing nothing: alone, that is exit 3.

Following polls `Jobs.ReadLogs` and prints only the lines not printed before, which relies on
the server returning an operator's whole log on every call.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import click

from aorta.api import common_pb2, jobs_pb2
from aorta.cli.connection import checked_replies, request_header
from aorta.cli.failures import ExitCode, NotFoundFailure
from aorta.cli.jobs import status
from aorta.cli.jobview import JobView
from aorta.cli.lookup import job_id as resolve_job
from aorta.cli.services import print_service_logs
from aorta.cli.session import Session, with_session

DEFAULT_INTERVAL = 1.0
NOUNS = ("job", "jobs")
NEVER_RAN = "PENDING"
FORMATS = ("json", "yaml", "wide", "name")
"""What `-o` means for other commands: here it names an operator."""


def read_logs(session: Session, job_id: str, operator: str) -> list[str]:
    """Every log line of one operator, joined over the streamed messages."""
    request = jobs_pb2.JobsReadLogsRequest(
        header=request_header(),
        job_id=common_pb2.Identifier(value=job_id),
        operator_name=operator,
    )
    lines: list[str] = []
    for response in checked_replies(
        session.platform.jobs.ReadLogs(request), f"reading the logs of {operator!r} in job {job_id}"
    ):
        lines.extend(line.rstrip("\n") for line in response.logs)
    return lines


def split_targets(
    targets: Sequence[str], job_flag: str | None, operator_flag: str | None
) -> tuple[str, str | None]:
    """The job and the operator (None: every operator) the command line names, positionally
    (`[job] JOB [OPERATOR]`) or by option (`-j JOB`, `-o OPERATOR`); `click.UsageError` when
    they are missing, too many, or named twice differently."""
    given = list(targets)
    if given and given[0] in NOUNS:
        given.pop(0)
    if len(given) > 2:
        raise click.UsageError(f"too many arguments: {' '.join(given[2:])}; give JOB [OPERATOR]")
    job = _one("job", given[0] if given else None, job_flag, "-j")
    operator = _one("operator", given[1] if len(given) > 1 else None, operator_flag, "-o")
    if job is None:
        raise click.UsageError("name the job: aorta logs JOB [OPERATOR] (or -j JOB)")
    return job, operator


def _one(kind: str, positional: str | None, flagged: str | None, flag: str) -> str | None:
    if positional and flagged and positional != flagged:
        raise click.UsageError(f"two {kind}s named: {positional} and {flag} {flagged}")
    return positional or flagged


def choose_operators(view: JobView, operator: str | None) -> list[str]:
    """The operators to print, in DAG order: every one, or the one `operator` names (compared
    ignoring case, as the platform does). `NotFoundFailure` (exit 3) naming the job's
    operators when it has no such one."""
    names = list(view.operators)
    if operator is None:
        return names
    for name in names:
        if name.casefold() == operator.casefold():
            return [name]
    # `-o` names an operator here, as in Clara's CLI: say how to ask for a format instead.
    hint = f" (for the output format: --output {operator})" if operator in FORMATS else ""
    raise NotFoundFailure(
        f"job {view.job_id} has no operator {operator!r}; its operators: "
        + (", ".join(names) or "none")
        + hint
    )


def not_run(view: JobView, operator: str) -> str:
    """What to say of an operator that has not run (`operator writer has not run (PENDING)`),
    naming how the job ended when it will not run any more."""
    ended = f"; the job is {view.state}, {view.status}" if view.finished else ""
    return f"operator {operator} has not run ({view.operator(operator).status}{ended})"


@dataclass
class LogCursor:
    """How much of each operator's log was printed, and which logs are complete."""

    printed: dict[str, int] = field(default_factory=dict)
    complete: set[str] = field(default_factory=set)

    def new_lines(self, operator: str, lines: Sequence[str]) -> Sequence[str]:
        """The lines of `lines` (the whole log so far) not printed yet; a log that got shorter
        (rotated by the server) restarts from its new end."""
        start = self.printed.get(operator, 0)
        self.printed[operator] = len(lines)
        return lines[start:]


class LogPrinter:
    """Prints log lines as the output mode asks: raw lines (prefixed `[operator] ` when
    `prefix`), or one `{"operator", "line"}` document per line with `-o json|yaml`."""

    def __init__(self, session: Session, prefix: bool) -> None:
        self._output = session.output
        self._prefix = prefix

    def lines(self, operator: str, lines: Iterable[str]) -> None:
        if self._output.structured:
            for line in lines:
                self._output.document({"operator": operator, "line": line}, stream=True)
            return
        lead = f"[{operator}] " if self._prefix else ""
        # Raw lines: a log is the operator's text, never markup to render or wrap.
        sys.stdout.writelines(f"{lead}{line}\n" for line in lines)
        sys.stdout.flush()


def print_logs(
    session: Session,
    job_id: str,
    operator: str | None,
    *,
    follow: bool,
    interval: float,
    prefix: bool | None,
) -> int:
    """Prints the logs (module docstring); returns the exit code."""
    view = status(session, job_id)
    chosen = choose_operators(view, operator)
    printer = LogPrinter(session, len(chosen) > 1 if prefix is None else prefix)
    cursor = LogCursor()
    while True:
        # The state first: lines logged before the job stopped are then all in the reads.
        for name in chosen:
            if name in cursor.complete or view.operator(name).status == NEVER_RAN:
                continue
            settled = view.operator(name).status != "RUNNING"
            printer.lines(name, cursor.new_lines(name, read_logs(session, job_id, name)))
            if settled:
                cursor.complete.add(name)
        if not follow or view.finished:
            break
        time.sleep(interval)
        view = status(session, job_id)
    never = [name for name in chosen if view.operator(name).status == NEVER_RAN]
    if operator is not None and never:
        raise NotFoundFailure(not_run(view, never[0]))
    for name in never:
        session.output.note(not_run(view, name))
    return ExitCode.OK


@click.command("logs")
@click.argument("targets", nargs=-1, metavar="[job] JOB [OPERATOR]")
@click.option("-j", "--job", "job_flag", metavar="JOB", help="The job: id, prefix or name.")
@click.option(
    "-o",
    "--operator",
    "operator_flag",
    metavar="OPERATOR",
    help="Only this operator's log (every operator's, prefixed, when not given).",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the job stops.")
@click.option(
    "--prefix/--no-prefix",
    default=None,
    help="Start each line with [operator] (the default when printing several operators).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=DEFAULT_INTERVAL,
    show_default=True,
    help="Seconds between polls with --follow.",
)
@click.option(
    "--service",
    metavar="SERVICE",
    help="Print this pipeline service's log instead (its name or id; see aorta list services).",
)
@with_session(short_output=False, quiet=False)
def logs(
    session: Session,
    targets: tuple[str, ...],
    job_flag: str | None,
    operator_flag: str | None,
    follow: bool,
    prefix: bool | None,
    interval: float,
    service: str | None,
) -> int:
    """Print a job's logs, every operator's or one (`aorta logs JOB [OP]`).

    Without an operator, every operator's log in DAG order, each line prefixed with its
    operator (`[reader] ...`); with one (`aorta logs JOB OPERATOR`, `aorta logs -j JOB -o
    OPERATOR`), its lines alone. With --output json|yaml, one {"operator", "line"} document per
    line.

    Exit 3 when the job has no such operator (its operators are named) or the operator has not
    run.

    `aorta logs --service NAME` prints a pipeline service's log (by its name or id) instead."""
    if service is not None:
        if targets or job_flag or operator_flag:
            raise click.UsageError("--service prints a service's log: name no job or operator")
        return print_service_logs(session, service)
    job, operator = split_targets(targets, job_flag, operator_flag)
    return print_logs(
        session,
        resolve_job(session, job),
        operator,
        follow=follow,
        interval=interval,
        prefix=prefix,
    )
