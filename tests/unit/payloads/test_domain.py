"""The payload rules on their own: life-cycle of a record, and combining input payloads."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aorta.errors import Conflict, ErrorCode, Invalid, NotFound
from aorta.ids import JobId, PayloadId
from aorta_services.payloads.domain import (
    COMMIT_SECONDS,
    CommitMark,
    CopyStep,
    FileRecord,
    PayloadKind,
    PayloadRecord,
    plan_input_copies,
)

P1, P2, P3 = (PayloadId(c * 32) for c in "123")
JOB, OTHER_JOB = JobId("a" * 32), JobId("b" * 32)
NOW = 1_000_000.0


def job_payload() -> PayloadRecord:
    return PayloadRecord(P1, PayloadKind.PIPELINE, job_id=JOB)


def test_a_payload_committing_a_file_is_not_locked_until_the_commit_ended() -> None:
    committing = job_payload().with_commit("m1", NOW).with_commit("m2", NOW)
    assert committing.committing == (
        CommitMark("m1", NOW + COMMIT_SECONDS),
        CommitMark("m2", NOW + COMMIT_SECONDS),
    )
    with pytest.raises(Conflict) as refused:
        committing.locked(JOB, NOW)
    assert refused.value.code == ErrorCode.PAYLOAD_IN_USE
    assert f"payload {P1} is still receiving files; start job {JOB} once its upload ends" in str(
        refused.value
    )
    one_left = committing.without_commit("m1", NOW)
    with pytest.raises(Conflict):
        one_left.locked(JOB, NOW)
    ended = one_left.without_commit("m2", NOW).without_commit("m2", NOW)
    assert ended.committing == ()
    assert ended.locked(JOB, NOW).read_only


def test_a_commit_mark_expires() -> None:
    committing = job_payload().with_commit("dead gateway", NOW)
    with pytest.raises(Conflict):
        committing.locked(JOB, NOW + COMMIT_SECONDS - 1)
    locked = committing.locked(JOB, NOW + COMMIT_SECONDS)
    assert locked.read_only and locked.committing == ()
    later = job_payload().with_commit("old", NOW).with_commit("new", NOW + COMMIT_SECONDS)
    assert [mark.id for mark in later.committing] == ["new"]


def test_a_locked_or_deleting_payload_takes_no_commit_mark() -> None:
    with pytest.raises(Conflict) as read_only:
        job_payload().locked(JOB, NOW).with_commit("m", NOW)
    assert read_only.value.code == ErrorCode.PAYLOAD_READ_ONLY
    with pytest.raises(NotFound):
        replace(job_payload(), deleting=True).with_commit("m", NOW)
    assert job_payload().locked(JOB, NOW).without_commit("m", NOW).committing == ()


def test_commit_marks_survive_the_stored_form() -> None:
    committing = job_payload().with_commit("m1", NOW)
    assert PayloadRecord.from_document(committing.to_document()) == committing


def test_a_job_payload_is_writable_until_locked_and_read_only_for_good() -> None:
    record = job_payload()
    record.check_writable()
    locked = record.locked(JOB, NOW)
    assert locked.read_only and locked.in_use_by_job == JOB
    assert locked.locked(JOB, NOW) == locked
    with pytest.raises(Conflict) as caught:
        locked.check_writable()
    assert caught.value.code == ErrorCode.PAYLOAD_READ_ONLY
    assert f"the payload of job {JOB} is read-only since the job started" in str(caught.value)
    released = locked.released(JOB)
    assert released.read_only and released.in_use_by_job is None
    assert released.released(JOB) == released
    with pytest.raises(Conflict):
        released.check_writable()


def test_only_the_payloads_own_job_locks_and_releases_it() -> None:
    with pytest.raises(Conflict, match=f"belongs to job {JOB}") as caught:
        job_payload().locked(OTHER_JOB, NOW)
    assert caught.value.code == ErrorCode.PAYLOAD_IN_USE
    with pytest.raises(Conflict, match=f"in use by job {JOB}"):
        job_payload().locked(JOB, NOW).released(OTHER_JOB)
    with pytest.raises(Invalid, match="is REUSABLE"):
        PayloadRecord(P1, PayloadKind.REUSABLE).locked(JOB, NOW)


def test_a_job_payload_is_never_deleted_alone_while_its_job_can_run() -> None:
    for record in (job_payload(), job_payload().locked(JOB, NOW)):
        for force in (False, True):
            with pytest.raises(
                Conflict, match=f"job {JOB}, which (has not run|is queued)"
            ) as caught:
                record.marked_deleting(force=force)
            assert caught.value.code == ErrorCode.PAYLOAD_IN_USE


def test_a_stopped_jobs_read_only_payload_goes_with_its_job_or_by_force() -> None:
    stopped = job_payload().locked(JOB, NOW).released(JOB)
    with pytest.raises(Conflict, match=f"aorta delete job {JOB}") as caught:
        stopped.marked_deleting()
    assert caught.value.code == ErrorCode.PAYLOAD_READ_ONLY
    assert stopped.marked_deleting(force=True).deleting
    assert stopped.marked_deleted_with_job(JOB).deleting
    with pytest.raises(Conflict, match=f"in use by job {JOB}") as held:
        job_payload().locked(JOB, NOW).marked_deleted_with_job(JOB)
    assert held.value.code == ErrorCode.PAYLOAD_IN_USE


def test_a_reusable_payload_is_deleted_and_a_deleting_one_is_gone() -> None:
    deleting = PayloadRecord(P1, PayloadKind.REUSABLE).marked_deleting()
    for call in (deleting.check_present, deleting.check_writable):
        with pytest.raises(NotFound) as gone:
            call()
        assert gone.value.code == ErrorCode.PAYLOAD_NOT_FOUND
    with pytest.raises(NotFound):
        deleting.locked(JOB, NOW)


def test_only_the_unstarted_payload_of_its_own_job_is_discarded() -> None:
    discarded = job_payload().marked_discarded(JOB)
    assert discarded.deleting
    assert discarded.marked_discarded(JOB) == discarded
    with pytest.raises(Invalid, match="is REUSABLE") as refused:
        PayloadRecord(P1, PayloadKind.REUSABLE).marked_discarded(JOB)
    assert refused.value.code == ErrorCode.PAYLOAD_REQUEST_INVALID
    with pytest.raises(Conflict, match=f"belongs to job {JOB}") as other:
        job_payload().marked_discarded(OTHER_JOB)
    assert other.value.code == ErrorCode.PAYLOAD_IN_USE
    for started in (job_payload().locked(JOB, NOW), job_payload().locked(JOB, NOW).released(JOB)):
        with pytest.raises(Conflict, match=f"job {JOB} started") as locked:
            started.marked_discarded(JOB)
        assert locked.value.code == ErrorCode.PAYLOAD_READ_ONLY


def test_metadata_only_on_reusable_payloads() -> None:
    reusable = PayloadRecord(P1, PayloadKind.REUSABLE)
    assert reusable.with_metadata({"k": "v"}).metadata == {"k": "v"}
    with pytest.raises(Invalid, match="allowed only on REUSABLE payloads") as caught:
        job_payload().with_metadata({"k": "v"})
    assert caught.value.code == ErrorCode.PAYLOAD_REQUEST_INVALID


@pytest.mark.parametrize(
    "record",
    [
        PayloadRecord(P1, PayloadKind.REUSABLE, metadata={"b": "2", "a.b$": "1"}),
        job_payload().locked(JOB, NOW),
        PayloadRecord(P2, PayloadKind.PIPELINE, job_id=JOB, input_payloads=(P1, P3)),
    ],
)
def test_records_survive_their_stored_form(record: PayloadRecord) -> None:
    document = record.to_document()
    assert ("job_id" in document) == (record.job_id is not None)
    restored = PayloadRecord.from_document(document)
    assert restored == record
    assert list(restored.metadata) == list(record.metadata)


def test_file_records_survive_their_stored_form() -> None:
    record = FileRecord(P1, "input/a b.dcm", 12, "ab" * 32, 0o644)
    assert record.to_document()["id"] == f"{P1}:input/a b.dcm"
    assert FileRecord.from_document(record.to_document()) == record


def test_input_payloads_are_copied_in_list_order() -> None:
    steps = plan_input_copies([(P1, ["b", "a/x"]), (P2, ["c", "a/y"])])
    assert steps == [CopyStep(P1, "b"), CopyStep(P1, "a/x"), CopyStep(P2, "c"), CopyStep(P2, "a/y")]


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        ([(P1, ["a"]), (P2, ["a"])], f"payloads {P1} and {P2} both hold 'a'"),
        ([(P1, ["a"]), (P2, ["a/b"])], f"payload {P2} has a folder 'a' where payload {P1}"),
        ([(P1, ["a/b"]), (P2, ["a"])], f"payload {P2} holds a file 'a' where payload {P1} has"),
        ([(P1, ["x"]), (P1, ["y"])], f"payload {P1} is listed twice"),
    ],
)
def test_colliding_inputs_are_refused_before_anything_is_copied(
    inputs: list[tuple[PayloadId, list[str]]], problem: str
) -> None:
    with pytest.raises(Invalid) as caught:
        plan_input_copies(inputs)
    assert caught.value.code == ErrorCode.PAYLOAD_REQUEST_INVALID
    assert problem in str(caught.value)


def test_names_differing_in_case_do_not_collide() -> None:
    assert len(plan_input_copies([(P1, ["Scan.dcm"]), (P2, ["scan.dcm"])])) == 2
