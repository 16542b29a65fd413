"""The history lines of a watched job: what changed between two polls, one line per change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aorta.cli import dag as dags
from aorta.cli.jobchanges import changes
from aorta.cli.jobview import JobView, OperatorView

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def _view(*operators: OperatorView, state: str = "RUNNING", status: str = "HEALTHY") -> JobView:
    """A job of `reader -> segment -> writer` whose operators are as given (PENDING otherwise)."""
    dag = dags.Dag()
    dag.link("reader", "segment")
    dag.link("segment", "writer")
    given = {op.name: op for op in operators}
    return JobView(
        job_id="1" * 32,
        name="night-run",
        pipeline_id="2" * 32,
        payload_id="3" * 32,
        state=state,
        status=status,
        priority="NORMAL",
        created=START,
        started=START if state != "PENDING" else None,
        stopped=_at(57) if state == "STOPPED" else None,
        messages=(),
        metadata={},
        operators={
            name: given.get(name, OperatorView(name, "PENDING", None, None)) for name in dag.nodes
        },
        dag=dag,
    )


def _running(name: str, since: float) -> OperatorView:
    return OperatorView(name, "RUNNING", _at(since), None)


def _stopped(name: str, since: float, until: float, status: str = "COMPLETED") -> OperatorView:
    return OperatorView(name, status, _at(since), _at(until))


def test_nothing_changed_gives_no_line() -> None:
    view = _view(_running("reader", 0))
    assert changes(view, view) == []


def test_a_ticking_duration_is_no_change() -> None:
    before = _view(_running("reader", 0))
    after = replace(before, created=_at(-5))
    assert changes(before, after) == []


def test_an_operator_that_starts_has_no_duration() -> None:
    before = _view(_stopped("reader", 0, 2))
    after = _view(_stopped("reader", 0, 2), _running("segment", 2))
    assert changes(before, after) == ["operator segment  PENDING -> RUNNING"]


def test_an_operator_that_stops_shows_how_long_it_ran() -> None:
    before = _view(_running("reader", 0))
    assert changes(before, _view(_stopped("reader", 0, 4))) == [
        "operator reader  RUNNING -> COMPLETED (4s)"
    ]
    assert changes(before, _view(_stopped("reader", 0, 125, "FAULTED"))) == [
        "operator reader  RUNNING -> FAULTED (2m 05s)"
    ]


def test_a_job_that_starts_comes_before_its_first_operator() -> None:
    before = _view(state="PENDING")
    after = _view(_running("reader", 0))
    assert changes(before, after) == [
        "job  PENDING -> RUNNING, HEALTHY",
        "operator reader  PENDING -> RUNNING",
    ]


def test_a_job_that_stops_comes_after_its_last_operator_with_its_duration() -> None:
    before = _view(_stopped("reader", 0, 2), _stopped("segment", 2, 40), _running("writer", 40))
    after = _view(
        _stopped("reader", 0, 2),
        _stopped("segment", 2, 40),
        _stopped("writer", 40, 57),
        state="STOPPED",
    )
    assert changes(before, after) == [
        "operator writer  RUNNING -> COMPLETED (17s)",
        "job  RUNNING -> STOPPED, HEALTHY (57s)",
    ]


def test_a_changed_job_status_names_the_old_one_too() -> None:
    before = _view(_running("segment", 2))
    faulted = _view(_stopped("segment", 2, 40, "FAULTED"), state="STOPPED", status="FAULTED")
    assert changes(before, faulted) == [
        "operator segment  RUNNING -> FAULTED (38s)",
        "job  RUNNING, HEALTHY -> STOPPED, FAULTED (57s)",
    ]
    evicted = replace(before, status="EVICTED")
    assert changes(before, evicted) == ["job  RUNNING, HEALTHY -> RUNNING, EVICTED"]


def test_several_operators_changing_in_one_poll_tell_every_step_in_order() -> None:
    before = _view(_running("reader", 0))
    after = _view(_stopped("reader", 0, 1), _stopped("segment", 1, 3), _running("writer", 3))
    assert changes(before, after) == [
        "operator reader  RUNNING -> COMPLETED (1s)",
        "operator segment  PENDING -> RUNNING",
        "operator segment  RUNNING -> COMPLETED (2s)",
        "operator writer  PENDING -> RUNNING",
    ]


def test_a_fast_operator_between_two_polls_still_shows_its_running_step() -> None:
    before = _view(_stopped("reader", 0, 1), _stopped("segment", 1, 3))
    after = _view(
        _stopped("reader", 0, 1),
        _stopped("segment", 1, 3),
        _stopped("writer", 3, 3.2),
        state="STOPPED",
    )
    assert changes(before, after) == [
        "operator writer  PENDING -> RUNNING",
        "operator writer  RUNNING -> COMPLETED (0s)",
        "job  RUNNING -> STOPPED, HEALTHY (57s)",
    ]


def test_steps_of_parallel_operators_are_in_the_order_they_happened() -> None:
    before = _view(_running("reader", 0))
    # `reader` stopped at 5, after `segment` (later in the DAG) started at 1 and stopped at 4.
    after = replace(
        _view(_stopped("reader", 0, 5)),
        operators={
            "reader": _stopped("reader", 0, 5),
            "segment": _stopped("segment", 1, 4),
            "writer": OperatorView("writer", "PENDING", None, None),
        },
    )
    assert changes(before, after) == [
        "operator segment  PENDING -> RUNNING",
        "operator segment  RUNNING -> COMPLETED (3s)",
        "operator reader  RUNNING -> COMPLETED (5s)",
    ]


def test_new_job_messages_are_one_line_each() -> None:
    before = replace(_view(state="PENDING"), messages=("queued",))
    after = replace(before, messages=("queued", "behind 2 jobs", "waiting for a GPU"))
    assert changes(before, after) == [
        "job  message: behind 2 jobs",
        "job  message: waiting for a GPU",
    ]
