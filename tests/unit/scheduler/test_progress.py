"""DAG bookkeeping for one job: sequencing, faults, cancel, outcome, persistence."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aorta.errors import Conflict, ErrorCode, Invalid, NotFound
from aorta_services.scheduler.domain import JobProgress, JobStatus, OperatorStatus

PENDING, RUNNING = OperatorStatus.PENDING, OperatorStatus.RUNNING
COMPLETED, FAULTED = OperatorStatus.COMPLETED, OperatorStatus.FAULTED


def chain() -> JobProgress:
    return JobProgress(["a", "b", "c"], {"b": frozenset({"a"}), "c": frozenset({"b"})})


def diamond() -> JobProgress:
    return JobProgress(
        ["a", "b", "c", "d"],
        {"b": frozenset({"a"}), "c": frozenset({"a"}), "d": frozenset({"b", "c"})},
    )


def run(progress: JobProgress, *operators: str) -> None:
    for operator in operators:
        progress.mark_running(operator)
        progress.mark_completed(operator)


def test_a_chain_runs_one_operator_at_a_time() -> None:
    progress = chain()
    assert progress.ready() == ["a"]
    progress.mark_running("a")
    assert progress.ready() == []
    assert progress.running() == ["a"]
    progress.mark_completed("a")
    assert progress.ready() == ["b"]
    run(progress, "b")
    assert progress.ready() == ["c"]
    assert progress.outcome() is None
    run(progress, "c")
    assert progress.ready() == []
    assert progress.outcome() is JobStatus.HEALTHY
    assert progress.is_finished()


def test_a_diamond_fans_out_and_waits_for_both_branches() -> None:
    progress = diamond()
    run(progress, "a")
    assert progress.ready() == ["b", "c"]
    progress.mark_running("b")
    progress.mark_running("c")
    progress.mark_completed("c")
    assert progress.ready() == []
    with pytest.raises(Conflict, match="upstream 'b' not completed"):
        progress.mark_running("d")
    progress.mark_completed("b")
    assert progress.ready() == ["d"]
    run(progress, "d")
    assert progress.outcome() is JobStatus.HEALTHY


def test_independent_branches_are_ready_together() -> None:
    progress = JobProgress(["x1", "y1", "x2", "y2"], {"x2": {"x1"}, "y2": {"y1"}})
    assert progress.ready() == ["x1", "y1"]
    run(progress, "y1")
    assert progress.ready() == ["x1", "y2"]


def test_a_fault_starts_nothing_more_and_ends_faulted_once_nothing_runs() -> None:
    progress = diamond()
    run(progress, "a")
    progress.mark_running("b")
    progress.mark_running("c")
    progress.mark_faulted("b", "exit code 1")
    assert progress.ready() == []
    assert progress.outcome() is None
    assert not progress.is_finished()
    progress.mark_completed("c")
    assert progress.outcome() is JobStatus.FAULTED
    assert progress.statuses() == {"a": COMPLETED, "b": FAULTED, "c": COMPLETED, "d": PENDING}
    assert progress.faults() == {"b": "exit code 1"}


def test_a_fault_refuses_to_start_an_operator_that_was_ready() -> None:
    progress = diamond()
    run(progress, "a")
    progress.mark_running("b")
    progress.mark_faulted("b", "exit code 1")
    assert progress.ready() == []
    with pytest.raises(Conflict, match=r"the job has faulted \(operator 'b' failed\)"):
        progress.mark_running("c")
    assert progress.outcome() is JobStatus.FAULTED


def test_a_fault_with_nothing_else_running_ends_at_once() -> None:
    progress = chain()
    progress.mark_running("a")
    progress.mark_faulted("a", "timed out after 600 s")
    assert progress.outcome() is JobStatus.FAULTED


def test_cancel_starts_nothing_more_and_ends_canceled_once_nothing_runs() -> None:
    progress = diamond()
    run(progress, "a")
    progress.mark_running("b")
    progress.cancel()
    assert progress.canceled
    assert progress.ready() == []
    assert progress.running() == ["b"]
    assert progress.outcome() is None
    with pytest.raises(Conflict, match="canceled"):
        progress.mark_running("c")
    progress.mark_faulted("b", "terminated")
    assert progress.outcome() is JobStatus.CANCELED


def test_operators_the_jobs_stop_faulted_are_told_apart_and_kept() -> None:
    progress = diamond()
    run(progress, "a")
    progress.mark_running("b")
    progress.mark_running("c")
    progress.mark_faulted("b", "exit code 2")
    progress.cancel()
    progress.mark_faulted("c", "stopped", by_job=True)
    assert progress.stopped_by_job() == ["c"]
    document = json.loads(json.dumps(progress.to_document()))
    assert JobProgress.from_document(document).stopped_by_job() == ["c"]


def test_cancel_after_a_fault_while_work_runs_ends_canceled() -> None:
    progress = diamond()
    run(progress, "a")
    progress.mark_running("b")
    progress.mark_running("c")
    progress.mark_faulted("b", "exit code 2")
    progress.cancel()
    progress.mark_completed("c")
    assert progress.outcome() is JobStatus.CANCELED


def test_cancel_before_anything_ran_ends_at_once() -> None:
    progress = chain()
    progress.cancel()
    assert progress.outcome() is JobStatus.CANCELED


def test_cancel_twice_or_after_the_end_is_a_conflict() -> None:
    progress = chain()
    progress.cancel()
    with pytest.raises(Conflict, match="already canceled"):
        progress.cancel()
    finished = JobProgress(["a"], {})
    run(finished, "a")
    with pytest.raises(Conflict, match="already finished") as caught:
        finished.cancel()
    assert caught.value.code == ErrorCode.JOB_STATE_CONFLICT


Step = tuple[str, str]

_ILLEGAL: list[tuple[str, list[Step], Step]] = [
    ("complete a PENDING operator", [], ("complete", "a")),
    ("fault a PENDING operator", [], ("fault", "a")),
    ("start an operator that is not ready", [], ("start", "b")),
    ("start twice", [("start", "a")], ("start", "a")),
    ("complete twice", [("start", "a"), ("complete", "a")], ("complete", "a")),
    ("fault a completed operator", [("start", "a"), ("complete", "a")], ("fault", "a")),
    ("restart a completed operator", [("start", "a"), ("complete", "a")], ("start", "a")),
    ("complete a faulted operator", [("start", "a"), ("fault", "a")], ("complete", "a")),
]


def apply(progress: JobProgress, step: Step) -> None:
    verb, operator = step
    if verb == "start":
        progress.mark_running(operator)
    elif verb == "complete":
        progress.mark_completed(operator)
    else:
        progress.mark_faulted(operator, "exit code 1")


@pytest.mark.parametrize(("what", "before", "step"), _ILLEGAL, ids=[c[0] for c in _ILLEGAL])
def test_illegal_marks_are_state_conflicts(what: str, before: list[Step], step: Step) -> None:
    progress = chain()
    for earlier in before:
        apply(progress, earlier)
    statuses = progress.statuses()
    with pytest.raises(Conflict) as caught:
        apply(progress, step)
    assert caught.value.code == ErrorCode.JOB_STATE_CONFLICT
    assert str(caught.value).startswith(f"operator {step[1]!r} cannot {step[0]}: ")
    assert progress.statuses() == statuses


def test_an_unknown_operator_is_not_found() -> None:
    with pytest.raises(NotFound) as caught:
        chain().mark_running("nope")
    assert caught.value.code == ErrorCode.JOB_OPERATOR_NOT_FOUND


@pytest.mark.parametrize(
    ("operators", "upstream"),
    [
        (["a", "a"], {}),
        (["a"], {"b": {"a"}}),
        (["a", "b"], {"a": {"b"}}),
        (["a"], {"a": {"a"}}),
        (["a", "b"], {"b": {"ghost"}}),
    ],
    ids=["duplicate", "unknown key", "not topological", "self", "unknown upstream"],
)
def test_an_inconsistent_dag_is_invalid(
    operators: list[str], upstream: dict[str, set[str]]
) -> None:
    with pytest.raises(Invalid):
        JobProgress(operators, upstream)


def test_a_job_without_operators_is_healthy_at_once() -> None:
    assert JobProgress([], {}).outcome() is JobStatus.HEALTHY


def test_progress_round_trips_through_a_json_document_mid_run() -> None:
    progress = diamond()
    run(progress, "a")
    progress.mark_running("b")
    progress.mark_running("c")
    progress.mark_faulted("c", "OOM killed")
    document = json.loads(json.dumps(progress.to_document()))
    restored = JobProgress.from_document(document)
    assert restored.to_document() == progress.to_document()
    assert restored.statuses() == progress.statuses()
    assert restored.faults() == {"c": "OOM killed"}
    assert restored.upstream("d") == frozenset({"b", "c"})
    assert restored.operators == ("a", "b", "c", "d")
    restored.mark_completed("b")
    assert restored.outcome() is JobStatus.FAULTED


def test_a_restored_run_continues_where_it_stopped() -> None:
    progress = diamond()
    run(progress, "a")
    progress.mark_running("c")
    restored = JobProgress.from_document(progress.to_document())
    assert restored.ready() == ["b"]
    assert restored.running() == ["c"]
    run(restored, "b")
    restored.mark_completed("c")
    run(restored, "d")
    assert restored.outcome() is JobStatus.HEALTHY


def _document(**changes: Any) -> dict[str, Any]:
    progress = chain()
    progress.mark_running("a")
    document = progress.to_document()
    document.update(changes)
    return document


@pytest.mark.parametrize(
    "document",
    [
        _document(canceled="yes"),
        {"operators": [{"name": "a", "upstream": [], "status": "BOGUS"}], "canceled": False},
        {"operators": [{"name": "a", "upstream": [], "status": "FAULTED"}], "canceled": False},
        {
            "operators": [{"name": "a", "upstream": [], "status": "FAULTED", "reason": None}],
            "canceled": False,
        },
        {
            "operators": [
                {"name": "a", "upstream": [], "status": "PENDING"},
                {"name": "b", "upstream": ["a"], "status": "RUNNING"},
            ],
            "canceled": False,
        },
        {"operators": [{"name": "a", "upstream": "", "status": "PENDING"}], "canceled": False},
        {"operators": [{"name": "a", "upstream": [], "status": "PENDING"}]},
        {"canceled": False},
    ],
    ids=[
        "canceled",
        "status",
        "no reason",
        "reason type",
        "order",
        "upstream",
        "no canceled",
        "no operators",
    ],
)
def test_a_malformed_document_is_a_store_error(document: dict[str, Any]) -> None:
    with pytest.raises(Invalid) as caught:
        JobProgress.from_document(document)
    assert caught.value.code == ErrorCode.JOB_STORE_ERROR


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], dict[str, frozenset[str]]]:
    count = draw(st.integers(min_value=1, max_value=9))
    names = [f"op{i}" for i in range(count)]
    upstream = {
        name: frozenset(draw(st.sets(st.sampled_from(names[:i]))) if i else set())
        for i, name in enumerate(names)
    }
    return names, upstream


@given(dag=dags(), data=st.data())
def test_random_dags_run_in_dependency_order_and_end_healthy(
    dag: tuple[list[str], dict[str, frozenset[str]]], data: st.DataObject
) -> None:
    names, upstream = dag
    progress = JobProgress(names, upstream)
    completed: Counter[str] = Counter()
    while not progress.is_finished():
        ready = progress.ready()
        for operator in ready:
            assert all(progress.status(dep) is COMPLETED for dep in upstream[operator])
        startable = [("start", op) for op in ready]
        finishable = [("complete", op) for op in progress.running()]
        action, operator = data.draw(st.sampled_from(startable + finishable))
        if action == "start":
            progress.mark_running(operator)
        else:
            progress.mark_completed(operator)
            completed[operator] += 1
        if data.draw(st.booleans()):
            progress = JobProgress.from_document(progress.to_document())
    assert progress.outcome() is JobStatus.HEALTHY
    assert completed == Counter(names)
    assert set(progress.statuses().values()) == {COMPLETED}
