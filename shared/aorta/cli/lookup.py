"""Naming a job or a pipeline on the command line as models are named: by its id, by a unique
prefix of its id (at least 4 hex characters), or by its name (the newest of that name).

A full id (dashed UUIDs too) is used as given, without a lookup, so Clara's scripts cost no
extra call. Anything else is looked up in the platform's list: a prefix that several ids share
is a usage error listing them (exit code 2); a value that names nothing is "not found" (3).
`choose` is the rule alone, so it is tested without a platform.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from aorta import ids
from aorta.api import jobs_pb2, pipelines_pb2
from aorta.cli.connection import checked_replies, request_header
from aorta.cli.failures import NotFoundFailure, UsageFailure
from aorta.cli.humanize import NOT_SET, iso, moment
from aorta.cli.session import Session
from aorta.errors import Invalid

MIN_PREFIX = 4
"""The shortest id prefix taken as a prefix (shorter values are only names)."""

_HEX = re.compile(r"^[0-9a-f]+$")
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Candidate:
    """A thing a name or prefix may mean; `created` is None when the platform gives no time
    (pipelines), and then the list's order (oldest first) says which is newer."""

    id: str
    name: str
    created: datetime | None = None


def _full_id(given: str) -> str | None:
    try:
        return ids.canonical_id(given, what="any")
    except Invalid:
        return None


def _listing(kind: str, given: str, found: Sequence[Candidate]) -> str:
    rows = "".join(f"\n  {c.id}  {c.name or NOT_SET}  {iso(c.created) or NOT_SET}" for c in found)
    return f"{given!r} is the start of several {kind} ids; give more of one:{rows}"


def choose(kind: str, given: str, candidates: Sequence[Candidate]) -> Candidate:
    """The one candidate `given` names: its id, a unique id prefix, or (failing those) the
    newest candidate with that name. `candidates` are listed oldest first.

    Raises `UsageFailure` (exit 2) for a prefix of several ids, `NotFoundFailure` (exit 3)
    when nothing matches.
    """
    wanted = given.strip().lower().replace("-", "")
    exact = [c for c in candidates if c.id == wanted]
    if exact:
        return exact[0]
    if len(wanted) >= MIN_PREFIX and _HEX.match(wanted):
        prefixed = [c for c in candidates if c.id.startswith(wanted)]
        if len(prefixed) > 1:
            raise UsageFailure(_listing(kind, given, prefixed))
        if prefixed:
            return prefixed[0]
    named = [(index, c) for index, c in enumerate(candidates) if c.name == given.strip()]
    if named:
        return max(named, key=lambda pair: (pair[1].created or _NEVER, pair[0]))[1]
    raise NotFoundFailure(f"no {kind} has the id, id prefix or name {given!r}")


def job_candidates(session: Session) -> list[Candidate]:
    """Every job the caller may see, oldest first (Jobs.List gives them newest first, and
    its times are whole seconds: jobs made in the same second keep the list's order)."""
    request = jobs_pb2.JobsListRequest(header=request_header())
    found = []
    for response in checked_replies(session.platform.jobs.List(request), "listing jobs"):
        details = response.job_details
        if details.job_id.value:
            found.append(Candidate(details.job_id.value, details.job_name, moment(details.created)))
    return sorted(reversed(found), key=lambda c: c.created or _NEVER)


def pipeline_candidates(session: Session) -> list[Candidate]:
    """Every pipeline, oldest first (the order Pipelines.List gives)."""
    request = pipelines_pb2.PipelinesListRequest(header=request_header())
    found = []
    for response in checked_replies(session.platform.pipelines.List(request), "listing pipelines"):
        details = response.details
        if details.pipeline_id.value:
            found.append(Candidate(details.pipeline_id.value, details.name))
    return found


def job_id(session: Session, given: str) -> str:
    """The id of the job `given` names (see the module docstring)."""
    return _full_id(given) or choose("job", given, job_candidates(session)).id


def pipeline_id(session: Session, given: str) -> str:
    """The id of the pipeline `given` names (see the module docstring)."""
    return _full_id(given) or choose("pipeline", given, pipeline_candidates(session)).id


def named(
    kind: str,
    *flags: str,
    dest: str,
    required: bool = True,
    forms: str = "id, unique id prefix or name",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Lets a command take the thing it acts on as a positional argument (`describe job ID`) or
    through its Clara option (`describe job -j ID`); the command receives it as `dest`.

    The value is passed on as typed: the command resolves it (`job_id`, `pipeline_id`), since
    that may take a call to the platform. `forms` says in the help what may name the thing.
    """
    metavar = kind.upper()

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def merged(*args: Any, **options: Any) -> Any:
            flagged, given = options.pop(f"{dest}_flag"), options.pop(f"{dest}_arg")
            if flagged and given and flagged != given:
                raise click.UsageError(f"two {kind}s named: {given} and {flags[0]} {flagged}")
            value = flagged or given
            if value is None and required:
                raise click.UsageError(f"name the {kind}: {metavar} or {flags[0]} {metavar}")
            options[dest] = value
            return command(*args, **options)

        decorated = click.argument(f"{dest}_arg", metavar=f"[{metavar}]", required=False)(merged)
        return click.option(
            *flags,
            f"{dest}_flag",
            metavar=metavar,
            help=f"The {kind}: {forms} (or give it as the argument).",
        )(decorated)

    return decorate
