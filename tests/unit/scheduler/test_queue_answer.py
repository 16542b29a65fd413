"""`aorta.v1.Jobs/Queue`'s answer from stored records: the leader's admission order, reasons in
words at the time of the answer, and other users' jobs shown only by place."""

from __future__ import annotations

from dataclasses import replace

from aorta.ids import JobId
from aorta_services.scheduler.domain import JobPriority, JobQueue
from aorta_services.scheduler.domain.queue_answer import admission_order, entries
from aorta_services.scheduler.domain.wait_changes import with_job_wait
from aorta_services.scheduler.domain.waiting import Holder, WaitKind, WaitReason
from tests.unit.scheduler.test_transitions import queued

HELD = WaitReason(WaitKind.HELD, target="a" * 32, target_since=100.0)
SHORT = WaitReason(
    WaitKind.RESOURCES, resource="gpu", needed=1, capacity=1, holders=(Holder("b" * 32, "seg"),)
)


def test_the_order_is_the_queues_immediate_first_then_the_rotation() -> None:
    records = [
        replace(queued(), id=JobId(letter * 32), priority=priority, enqueued=at)
        for letter, priority, at in (
            ("a", JobPriority.LOWER, 1.0),
            ("b", JobPriority.NORMAL, 2.0),
            ("c", JobPriority.IMMEDIATE, 3.0),
            ("d", JobPriority.HIGHER, 4.0),
        )
    ]
    ordered = admission_order(reversed(records), JobQueue(hold_after_seconds=1e9), 10.0)
    assert [record.id[0] for record in ordered] == ["c", "d", "b", "a"]


def test_entries_carry_places_reasons_and_hide_other_users_jobs() -> None:
    mine = with_job_wait(replace(queued(), id=JobId("a" * 32), owner="alice"), HELD)
    theirs = with_job_wait(replace(queued(), id=JobId("b" * 32), owner="bob"), SHORT)
    first, second = entries([mine, theirs], 1060.0, viewer="alice")
    assert (first.entry.position, first.entry.job_id.value) == (1, "a" * 32)
    assert first.entry.reason.kind == "held" and first.entry.reason.waited_seconds == 960.0
    assert first.entry.reason.text.endswith("(waited 16 min)")
    assert second.entry.hidden and not second.entry.job_id.value
    assert not second.entry.HasField("reason")
    everyone = entries([mine, theirs], 1060.0, viewer=None)
    assert everyone[1].entry.reason.holders[0].operator == "seg"
    assert not everyone[1].entry.reason.holders[0].HasField("since")
    [empty] = entries([], 0.0, viewer=None)
    assert not empty.HasField("entry") and empty.header.code == 0
