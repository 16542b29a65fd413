"""What changed in a job between two polls, one short line per change: the history that
`describe job --watch` and `run` print when stdout is not a terminal.

Nothing here does I/O: the watcher polls, stamps each line with the poll time and prints it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from aorta.cli.humanize import duration
from aorta.cli.jobview import JobView, OperatorView


def changes(before: JobView, after: JobView) -> list[str]:
    """One line per change from `before` to `after`, empty when nothing changed:
    `job  RUNNING -> STOPPED, HEALTHY (57s)`, `job  message: ...` for each new job message, and
    `operator segment  RUNNING -> COMPLETED (41s)` for each step an operator took.

    Every step is told, even those that fell between two polls: an operator found COMPLETED
    that was PENDING before started meanwhile (its start time says when), so it gets
    `PENDING -> RUNNING` and then `RUNNING -> COMPLETED`. Operators' steps are in the order
    they happened (their recorded times), DAG order breaking ties."""
    job = _job_changes(before, after)
    steps: list[tuple[datetime, int, int, str]] = []
    for index, name in enumerate(after.dag.nodes):
        old, new = before.operator(name), after.operator(name)
        if old.status != new.status:
            steps += [(at, index, order, line) for order, (at, line) in enumerate(_steps(old, new))]
    steps.sort(key=lambda step: step[:3])
    operators = [line for *_, line in steps]
    # A job starts before its operators and stops after them: the history reads in that order.
    return operators + job if after.finished else job + operators


def _steps(before: OperatorView, after: OperatorView) -> list[tuple[datetime, str]]:
    """The steps from `before` to `after`, each with when it happened (as far as known)."""
    started = after.started or datetime.max.replace(tzinfo=UTC)
    stopped = after.stopped or started
    if before.status == "PENDING" and after.status not in ("PENDING", "RUNNING") and after.started:
        return [
            (started, f"operator {after.name}  PENDING -> RUNNING"),
            (stopped, _operator_change(replace(before, status="RUNNING"), after)),
        ]
    return [(stopped if after.stopped else started, _operator_change(before, after))]


def _job_changes(before: JobView, after: JobView) -> list[str]:
    lines: list[str] = []
    if (before.state, before.status) != (after.state, after.status):
        # The old status is named only when it changed, so the usual line stays short.
        origin = before.state if before.status == after.status else _condition(before)
        took = _span(after.started, after.stopped)
        lines.append(f"job  {origin} -> {_condition(after)}{took}")
    lines += [
        f"job  message: {message}" for message in after.messages if message not in before.messages
    ]
    return lines


def _operator_change(before: OperatorView, after: OperatorView) -> str:
    took = _span(after.started, after.stopped)
    return f"operator {after.name}  {before.status} -> {after.status}{took}"


def _condition(view: JobView) -> str:
    return f"{view.state}, {view.status}"


def _span(started: datetime | None, stopped: datetime | None) -> str:
    """` (41s)` for something that ran and stopped; empty for anything else."""
    if started is None or stopped is None:
        return ""
    return f" ({duration((stopped - started).total_seconds())})"
