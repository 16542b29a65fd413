"""A job record's wait reasons: kept only while they can be true, cleared by the transitions
that end the wait, shown to clients only while they apply."""

from __future__ import annotations

from aorta_services.scheduler.domain import JobPhase, transitions
from aorta_services.scheduler.domain.job_record import JobRecord, TritonUris
from aorta_services.scheduler.domain.wait_changes import (
    current_waits,
    with_job_wait,
    with_operator_wait,
)
from aorta_services.scheduler.domain.waiting import (
    WaitKind,
    WaitReason,
    Waits,
    waiting_for_service,
    waiting_for_triton,
)
from tests.unit.scheduler.test_transitions import created, queued, running, start

TRITON = waiting_for_triton(["spleen"])
SHORT = WaitReason(WaitKind.RESOURCES, resource="gpu", needed=1, capacity=1)


def test_a_queued_job_keeps_its_reason_until_it_is_admitted() -> None:
    record = with_job_wait(queued(), TRITON)
    assert record.waiting.job == TRITON
    assert JobRecord.from_document(record.to_document()).waiting == record.waiting
    assert current_waits(record, 0.0)["job"]["text"] == TRITON.text(0.0)
    admitted = transitions.admit(record, now=120.0, rotation=0, triton=TritonUris("g", "h"))
    assert admitted.waiting == Waits()
    assert current_waits(admitted, 0.0) == {}


def test_a_reason_that_comes_too_late_changes_nothing() -> None:
    assert with_job_wait(created(), TRITON).waiting == Waits()
    assert with_job_wait(running(), TRITON).waiting == Waits()
    started = start(running(), "a")
    assert with_operator_wait(started, "a", SHORT).waiting == Waits()
    assert with_operator_wait(queued(), "a", SHORT).waiting == Waits()


def test_a_pending_operator_keeps_its_reason_until_it_starts() -> None:
    record = with_operator_wait(running(), "a", SHORT)
    record = with_operator_wait(record, "b", waiting_for_service("listener"))
    shown = current_waits(record, 0.0)["operators"]
    assert set(shown) == {"a", "b"}
    assert shown["a"]["kind"] == "resources"
    started = start(record, "a")
    assert set(started.waiting.operators) == {"b"}
    assert with_operator_wait(started, "b", None).waiting == Waits()


def test_a_stopped_job_keeps_no_reason() -> None:
    record = with_operator_wait(running(), "a", SHORT)
    canceled = transitions.cancel(record, "", now=200.0)
    assert canceled.phase is JobPhase.CANCELED
    assert canceled.waiting == Waits()
    queued_with_reason = with_job_wait(queued(), SHORT)
    assert transitions.cancel(queued_with_reason, "", now=200.0).waiting == Waits()
