"""Why a job or an operator waits: the reasons worked out from the queue and the ledger, their
words at a given time, and their stored form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aorta.errors import Invalid
from aorta.ids import JobId
from aorta_services.scheduler.domain import (
    Capacity,
    JobPriority,
    JobQueue,
    Request,
    ResourceLedger,
)
from aorta_services.scheduler.domain.waiting import (
    Holder,
    WaitKind,
    WaitReason,
    Waits,
    duration_words,
    operator_reason,
    ordinal,
    queue_reasons,
    waiting_for_service,
    waiting_for_triton,
)

TEN_TWO = datetime(2026, 3, 4, 10, 2, tzinfo=UTC).timestamp()
NEVER = 1e9
A, B, C, D = (JobId(letter * 32) for letter in "abcd")


def gpu(count: int = 1) -> Request:
    return Request(cpu=0, gpu=count, memory_mb=0)


def holder_of(owner: str) -> Holder:
    job_id, _, operator = owner.partition("/")
    return Holder(job_id, operator, TEN_TWO)


def one_gpu_node() -> ResourceLedger:
    return ResourceLedger(Capacity(gpus=(0,), cpu=2, memory_mb=4096))


def test_a_gpu_job_names_the_job_and_operator_holding_the_gpu_and_since_when() -> None:
    ledger = one_gpu_node()
    ledger.allocate(f"{A}/seg", gpu())
    queue = JobQueue(hold_after_seconds=NEVER)
    queue.push(B, JobPriority.NORMAL, TEN_TWO)
    reasons = queue_reasons(queue, ledger, {B: gpu()}, TEN_TWO + 60, holder_of)
    reason = reasons[B]
    assert reason.kind is WaitKind.RESOURCES
    assert (reason.resource, reason.needed, reason.capacity) == ("gpu", 1, 1)
    assert reason.holders == (Holder(A, "seg", TEN_TWO),)
    assert reason.text(TEN_TWO + 60) == (
        f"needs 1 GPU; the node has 1, held by job {A} (operator seg) since 10:02 UTC"
    )


def test_a_holder_from_another_day_is_named_with_its_date_and_one_being_admitted_as_such() -> None:
    day_later = TEN_TWO + 86400
    assert Holder(A, "seg", TEN_TWO).words(day_later) == (
        f"job {A} (operator seg) since 2026-03-04 10:02 UTC"
    )
    assert Holder(A).words(TEN_TWO) == f"job {A} (being admitted)"
    assert Holder(A, "seg").words(TEN_TWO) == f"job {A} (operator seg)"


def test_behind_a_hold_every_other_job_is_held_for_the_oldest_with_its_wait() -> None:
    ledger = one_gpu_node()
    ledger.allocate(f"{A}/seg", gpu())
    queue = JobQueue(hold_after_seconds=600)
    queue.push(B, JobPriority.LOWER, TEN_TWO)
    queue.push(C, JobPriority.HIGHER, TEN_TWO + 100)
    now = TEN_TWO + 16 * 60 + 5
    assert queue.choose(now, lambda job: job == C) is None
    reasons = queue_reasons(queue, ledger, {B: gpu(), C: Request(1, 0, 0)}, now, holder_of)
    assert reasons[B].kind is WaitKind.RESOURCES
    assert reasons[C] == WaitReason(WaitKind.HELD, target=B, target_since=TEN_TWO)
    assert reasons[C].text(now) == f"held: the node is draining for job {B} (waited 16 min)"
    assert reasons[C].view(now)["waited_seconds"] == 965


def test_while_immediate_jobs_wait_the_others_are_queued_behind_them() -> None:
    ledger = one_gpu_node()
    ledger.allocate(f"{A}/seg", gpu())
    queue = JobQueue(hold_after_seconds=NEVER)
    queue.push(B, JobPriority.NORMAL, TEN_TWO)
    queue.push(C, JobPriority.IMMEDIATE, TEN_TWO + 1)
    queue.push(D, JobPriority.IMMEDIATE, TEN_TWO + 2)
    peaks = {B: Request(1, 0, 0), C: gpu(), D: gpu()}
    reasons = queue_reasons(queue, ledger, peaks, TEN_TWO + 5, holder_of)
    assert reasons[C].kind is WaitKind.RESOURCES
    assert reasons[D].kind is WaitKind.RESOURCES
    assert reasons[B] == WaitReason(WaitKind.QUEUED, position=3, ahead=(C, D), ahead_count=2)
    assert reasons[B].text(TEN_TWO) == f"3rd in the queue, behind jobs {C}, {D}"


def test_jobs_that_fit_but_wait_their_turn_name_the_first_few_ahead_and_count_them_all() -> None:
    queue = JobQueue(hold_after_seconds=NEVER)
    jobs = [JobId(f"{n:032x}") for n in range(6)]
    for n, job_id in enumerate(jobs):
        queue.push(job_id, JobPriority.NORMAL, TEN_TWO + n)
    fits = Request(1, 0, 0)
    reasons = queue_reasons(queue, one_gpu_node(), dict.fromkeys(jobs, fits), TEN_TWO, holder_of)
    assert [reasons[job_id] for job_id in jobs] == [
        WaitReason(
            WaitKind.QUEUED,
            position=place + 1,
            ahead=tuple(jobs[: min(place, 3)]),
            ahead_count=place,
        )
        for place in range(6)
    ]


def test_a_queued_reason_names_a_few_jobs_ahead_and_counts_the_rest() -> None:
    reason = WaitReason(WaitKind.QUEUED, position=6, ahead=(A, B, C), ahead_count=5)
    assert reason.text(0) == f"6th in the queue, behind jobs {A}, {B}, {C} and 2 more"
    assert (
        WaitReason(WaitKind.QUEUED, position=1).text(0) == "1st in the queue, next to be admitted"
    )
    assert WaitReason(WaitKind.QUEUED, position=2, ahead=(A,), ahead_count=1).text(0) == (
        f"2nd in the queue, behind job {A}"
    )


def test_a_reason_found_elsewhere_is_kept_unless_resources_or_a_hold_come_first() -> None:
    queue = JobQueue(hold_after_seconds=NEVER)
    queue.push(B, JobPriority.NORMAL, TEN_TWO)
    service = waiting_for_service("dicom-listener", "starting")
    reasons = queue_reasons(
        queue, one_gpu_node(), {B: Request(1, 0, 0)}, TEN_TWO, holder_of, {B: service}
    )
    assert reasons[B] == service
    assert service.text(0) == "waits for the service dicom-listener: starting"


def test_cpu_and_memory_reasons_name_no_holders_so_they_stay_put_as_holders_change() -> None:
    ledger = ResourceLedger(Capacity(gpus=(), cpu=2, memory_mb=4096))
    ledger.allocate("x/a", Request(cpu=8, gpu=0, memory_mb=0))
    first = operator_reason(ledger, Request(cpu=1, gpu=0, memory_mb=0), holder_of)
    ledger.release("x/a")
    ledger.allocate("y/b", Request(cpu=8, gpu=0, memory_mb=0))
    again = operator_reason(ledger, Request(cpu=1, gpu=0, memory_mb=0), holder_of)
    assert first == again
    assert first is not None and first.holders == ()
    assert first.text(0) == (
        "needs 1 CPU; the node admits 8 at once and not enough of them are free now"
    )
    ledger.allocate("z/c", Request(cpu=0, gpu=0, memory_mb=4000))
    memory = operator_reason(ledger, Request(cpu=0, gpu=0, memory_mb=512), holder_of)
    assert memory is not None and memory.resource == "memory_mb"
    assert operator_reason(ledger, Request(cpu=0, gpu=0, memory_mb=0), holder_of) is None


def test_an_operator_short_of_gpus_names_each_holder_once() -> None:
    ledger = ResourceLedger(Capacity(gpus=(0, 1, 2), cpu=2, memory_mb=4096))
    ledger.allocate(f"{A}/train", gpu(2))
    ledger.allocate(f"{B}/:admission", gpu(1))
    reason = operator_reason(ledger, gpu(2), lambda owner: Holder(owner.split("/")[0]))
    assert reason is not None
    assert [holder.job_id for holder in reason.holders] == [A, B]
    assert reason.text(0).startswith("needs 2 GPUs; the node has 3, held by job ")


def test_every_kind_survives_its_stored_form_and_the_view_adds_the_words() -> None:
    reasons = [
        WaitReason(WaitKind.QUEUED, position=2, ahead=(A,), ahead_count=1),
        WaitReason(
            WaitKind.RESOURCES,
            resource="gpu",
            needed=1,
            capacity=1,
            holders=(Holder(A, "seg", TEN_TWO),),
        ),
        waiting_for_service("listener", "2 of 3 replicas ready"),
        waiting_for_triton(["spleen", "liver"]),
        WaitReason(WaitKind.HELD, target=A, target_since=TEN_TWO),
    ]
    for reason in reasons:
        assert WaitReason.from_document(reason.to_document()) == reason
        view = reason.view(TEN_TWO + 30)
        assert view["kind"] == reason.kind.value
        assert view["text"] == reason.text(TEN_TWO + 30)
        assert WaitReason.from_document(view) == reason
    assert reasons[3].text(0) == "waits for a Triton server with the models spleen, liver"
    waits = Waits(job=reasons[0], operators={"seg": reasons[1], "odd name": reasons[2]})
    assert Waits.from_document(waits.to_document()) == waits
    assert Waits.from_document(None) == Waits()
    assert not Waits() and waits


def test_waits_set_and_clear_one_operator_at_a_time() -> None:
    triton = waiting_for_triton(["m"])
    waits = Waits().with_operator("a", triton).with_operator("b", triton)
    assert set(waits.with_operator("a", None).operators) == {"b"}
    assert waits.with_job(triton).job == triton


def test_a_malformed_stored_reason_is_a_store_error() -> None:
    with pytest.raises(Invalid):
        WaitReason.from_document({"kind": "bored"})


@pytest.mark.parametrize(
    ("number", "words"),
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (22, "22nd")],
)
def test_ordinals(number: int, words: str) -> None:
    assert ordinal(number) == words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(-3, "0 s"), (40.9, "40 s"), (960, "16 min"), (7500, "2 h 5 min"), (7200, "2 h")],
)
def test_durations_in_words(seconds: float, words: str) -> None:
    assert duration_words(seconds) == words
