"""`aorta logs`: which job and operators a command line names, and what is said of each."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import click
import pytest

from aorta.cli import dag as dags
from aorta.cli.failures import ExitCode, NotFoundFailure
from aorta.cli.jobview import JobView, OperatorView
from aorta.cli.logs import LogCursor, choose_operators, not_run, split_targets

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def _view(state: str = "RUNNING", status: str = "HEALTHY") -> JobView:
    dag = dags.Dag()
    dag.link("reader", "segment")
    dag.link("segment", "writer")
    return JobView(
        job_id="1" * 32,
        name="night-run",
        pipeline_id="2" * 32,
        payload_id="3" * 32,
        state=state,
        status=status,
        priority="NORMAL",
        created=START,
        started=START,
        stopped=None,
        messages=(),
        metadata={},
        operators={
            "reader": OperatorView("reader", "COMPLETED", START, START),
            "segment": OperatorView("segment", "RUNNING", START, None),
            "writer": OperatorView("writer", "PENDING", None, None),
        },
        dag=dag,
    )


@pytest.mark.parametrize(
    ("targets", "job_flag", "operator_flag", "expected"),
    [
        (("night-run",), None, None, ("night-run", None)),
        (("job", "night-run", "writer"), None, None, ("night-run", "writer")),
        (("jobs",), "night-run", "writer", ("night-run", "writer")),
        ((), "night-run", None, ("night-run", None)),
        (("night-run", "writer"), "night-run", "writer", ("night-run", "writer")),
    ],
)
def test_the_job_and_operator_come_as_arguments_or_options(
    targets: tuple[str, ...],
    job_flag: str | None,
    operator_flag: str | None,
    expected: tuple[str, str | None],
) -> None:
    assert split_targets(targets, job_flag, operator_flag) == expected


def test_a_job_named_twice_differently_is_a_usage_error() -> None:
    with pytest.raises(click.UsageError, match="two jobs named: a and -j b"):
        split_targets(("a",), "b", None)


def test_every_operator_in_dag_order_or_one_by_its_name_in_any_case() -> None:
    view = _view()
    assert choose_operators(view, None) == ["reader", "segment", "writer"]
    assert choose_operators(view, "WRITER") == ["writer"]


def test_an_unknown_operator_is_not_found_and_names_the_jobs_operators() -> None:
    with pytest.raises(NotFoundFailure) as caught:
        choose_operators(_view(), "writter")
    assert caught.value.exit_code == ExitCode.NOT_FOUND
    assert caught.value.message == (
        f"job {'1' * 32} has no operator 'writter'; its operators: reader, segment, writer"
    )


def test_an_output_format_given_as_the_operator_is_pointed_to_output() -> None:
    with pytest.raises(NotFoundFailure, match=r"\(for the output format: --output json\)"):
        choose_operators(_view(), "json")


def test_an_operator_that_has_not_run_is_said_so_with_how_the_job_ended() -> None:
    assert not_run(_view(), "writer") == "operator writer has not run (PENDING)"
    stopped = replace(_view("STOPPED", "CANCELED"), stopped=START)
    assert not_run(stopped, "writer") == (
        "operator writer has not run (PENDING; the job is STOPPED, CANCELED)"
    )


def test_the_cursor_hands_out_each_line_once_and_restarts_after_a_rotation() -> None:
    cursor = LogCursor()
    assert cursor.new_lines("a", ["1", "2"]) == ["1", "2"]
    assert cursor.new_lines("a", ["1", "2", "3"]) == ["3"]
    assert cursor.new_lines("b", ["x"]) == ["x"]
    assert cursor.new_lines("a", ["3"]) == []
    assert cursor.new_lines("a", ["3", "4"]) == ["4"]
