"""A job write's changes: the stored fields of the record fields that moved, encoded as the
whole document would have them (a few changed operators by their element paths), so the stored
document after the write is the new record's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

from aorta.store.updates import apply_update
from aorta_services.scheduler.domain import OperatorStatus, transitions
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.events import job_event, operator_event, staged
from tests.unit.scheduler.test_transitions import FAILED, OK, created, finish, start

STEPS: list[Callable[[JobRecord], JobRecord]] = [
    lambda r: transitions.queue(
        r,
        variables={"x": "1"},
        operators=r.operators,
        progress=r.progress,
        models=("spleen",),
        timeout=600,
        now=110.0,
    ),
    lambda r: transitions.admit(r, now=120.0, rotation=3, triton=None),
    staged(lambda r: start(r, "a"), operator_event("a", "started", status=OperatorStatus.RUNNING)),
    lambda r: r.without_events({e["id"] for e in r.outbox}),
    lambda r: start(r, "b"),
    lambda r: finish(r, "a", OK),
    staged(partial(transitions.cancel, reason="stop", now=150.0), job_event("stopped")),
    lambda r: finish(r, "b", FAILED),
    transitions.release,
]


def test_the_changes_turn_the_old_document_into_the_new_one() -> None:
    record = created()
    for step in STEPS:
        after = step(record)
        document = record.to_document()
        apply_update("jobs", document, after.changes_from(record), ())
        assert document == after.to_document()
        record = after


def test_a_start_writes_only_what_it_moved() -> None:
    before = transitions.admit(STEPS[0](created()), now=120.0, rotation=3, triton=None)
    after = STEPS[2](before)

    changes = after.changes_from(before)

    assert set(changes) == {"operators.0", "progress", "outbox", "outbox_pending"}
    assert changes["operators.0"] == after.to_document()["operators"][0]


def test_most_operators_changed_write_the_whole_list() -> None:
    before = STEPS[1](STEPS[0](created()))
    most = tuple(replace(op, timeout=5) for op in before.operators[:2]) + before.operators[2:]
    fewer = before.operators[:2]

    for operators in (most, fewer):
        changes = replace(before, operators=operators).changes_from(before)
        assert changes == {"operators": [op.to_document() for op in operators]}


def test_a_new_phase_writes_the_fields_derived_from_it() -> None:
    before = STEPS[0](created())
    after = STEPS[1](before)

    changes = after.changes_from(before)

    assert {"phase", "state", "status", "started", "rotation"} <= set(changes)
    assert (changes["state"], changes["status"]) == (2, 1)


def test_an_unchanged_record_has_no_changes() -> None:
    record = start(STEPS[1](STEPS[0](created())), "a")
    assert record.changes_from(record) == {}
    assert JobRecord.from_document(record.to_document()).changes_from(record) == {}
