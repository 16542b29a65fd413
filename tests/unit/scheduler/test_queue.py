"""The job queue: IMMEDIATE first, weighted shares, FIFO, aging, the starvation guard, rebuild."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aorta.errors import Conflict, ErrorCode, Invalid
from aorta.ids import JobId
from aorta_services.scheduler.domain import (
    Capacity,
    JobPriority,
    JobQueue,
    QueueWeights,
    Request,
    ResourceLedger,
)

H, N, L, IMM = JobPriority.HIGHER, JobPriority.NORMAL, JobPriority.LOWER, JobPriority.IMMEDIATE
NEVER_AGES = 1e9


def jid(number: int) -> JobId:
    return JobId(f"{number:032x}")


def always(_: JobId) -> bool:
    return True


def never(_: JobId) -> bool:
    return False


def only(*allowed: JobId) -> Callable[[JobId], bool]:
    return lambda job: job in allowed


def drain(queue: JobQueue, now: float = 0.0) -> list[JobId]:
    chosen: list[JobId] = []
    while (job := queue.choose(now, always)) is not None:
        chosen.append(job)
    return chosen


def test_an_empty_queue_chooses_nothing() -> None:
    queue = JobQueue()
    assert queue.choose(0.0, always) is None
    assert len(queue) == 0


def test_immediate_jobs_go_first_in_fifo_order() -> None:
    queue = JobQueue()
    queue.push(jid(1), H, 0.0)
    queue.push(jid(2), N, 0.0)
    queue.push(jid(3), IMM, 5.0)
    queue.push(jid(4), L, 0.0)
    queue.push(jid(5), IMM, 6.0)
    assert drain(queue, now=10.0)[:2] == [jid(3), jid(5)]


def test_nothing_else_is_considered_while_an_immediate_job_waits() -> None:
    queue = JobQueue()
    queue.push(jid(1), H, 0.0)
    queue.push(jid(2), IMM, 1.0)
    calls: list[JobId] = []

    def fits(job: JobId) -> bool:
        calls.append(job)
        return job == jid(1)

    assert queue.choose(2.0, fits) is None
    assert calls == [jid(2)]


def test_a_later_immediate_job_may_backfill_past_one_that_does_not_fit() -> None:
    queue = JobQueue()
    queue.push(jid(1), IMM, 0.0)
    queue.push(jid(2), IMM, 1.0)
    assert queue.choose(2.0, only(jid(2))) == jid(2)
    assert jid(1) in queue


def test_the_default_cycle_interleaves_4_2_1() -> None:
    assert QueueWeights().cycle() == (H, N, H, L, H, N, H)


def fill(queue: JobQueue, per_class: int, classes: tuple[JobPriority, ...] = (H, N, L)) -> None:
    number = 0
    for priority in classes:
        for _ in range(per_class):
            number += 1
            queue.push(jid(number), priority, 0.0)


def priorities_of(chosen: list[JobId], per_class: int) -> list[JobPriority]:
    order = (H, N, L)
    return [order[(int(job, 16) - 1) // per_class] for job in chosen]


def test_700_picks_with_every_class_waiting_follow_the_weights() -> None:
    queue = JobQueue(aging_seconds=NEVER_AGES, hold_after_seconds=NEVER_AGES)
    fill(queue, 700)
    chosen = [queue.choose(0.0, always) for _ in range(700)]
    counts = Counter(priorities_of([job for job in chosen if job], 700))
    assert counts == {H: 400, N: 200, L: 100}


def test_custom_weights_set_the_shares() -> None:
    queue = JobQueue(QueueWeights(higher=1, normal=1, lower=3), aging_seconds=NEVER_AGES)
    fill(queue, 100)
    chosen = [queue.choose(0.0, always) for _ in range(50)]
    counts = Counter(priorities_of([job for job in chosen if job], 100))
    assert counts == {H: 10, N: 10, L: 30}


def test_an_empty_class_gives_its_slots_to_the_others_in_proportion() -> None:
    queue = JobQueue(aging_seconds=NEVER_AGES)
    number = 0
    for priority in (N, L):
        for _ in range(300):
            number += 1
            queue.push(jid(number), priority, 0.0)
    chosen = [queue.choose(0.0, always) for _ in range(300)]
    counts = Counter(N if int(job or "0", 16) <= 300 else L for job in chosen)
    assert counts == {N: 200, L: 100}


def test_fifo_within_a_class_by_enqueue_time_then_push_order() -> None:
    queue = JobQueue()
    queue.push(jid(1), N, 5.0)
    queue.push(jid(2), N, 1.0)
    queue.push(jid(3), N, 5.0)
    queue.push(jid(4), N, 3.0)
    assert drain(queue, now=6.0) == [jid(2), jid(4), jid(1), jid(3)]


def test_aging_lets_a_lower_job_through_a_stream_of_higher_jobs() -> None:
    """With weights 100:1:1 the LOWER slot comes once per 102 picks; aging gets there first."""

    def picked_at(aging: float) -> int:
        queue = JobQueue(
            QueueWeights(higher=100, normal=1, lower=1),
            aging_seconds=aging,
            hold_after_seconds=NEVER_AGES,
        )
        queue.push(jid(0), L, 0.0)
        for number in range(1, 51):
            queue.push(jid(number), H, 0.0)
        for tick in range(1, 200):
            queue.push(jid(1000 + tick), H, float(tick))
            if queue.choose(float(tick), always) == jid(0):
                return tick
        raise AssertionError("the LOWER job was never picked")

    # Unaged, it waits for its slot in the cycle (the empty NORMAL slot is skipped); aged two
    # levels (2 x 5 s) it is the oldest effective-HIGHER job and goes at the next slot.
    cycle = QueueWeights(100, 1, 1).cycle()
    assert picked_at(NEVER_AGES) == cycle[: cycle.index(L)].count(H) + 1 == 68
    assert picked_at(5.0) == 10


def test_aging_promotes_one_level_per_full_aging_period() -> None:
    queue = JobQueue(aging_seconds=10.0, hold_after_seconds=NEVER_AGES)
    queue.push(jid(1), L, 0.0)
    queue.push(jid(2), N, 5.0)
    queue.push(jid(3), H, 5.0)
    # At 9.9 s nothing has aged: the HIGHER slot offers job 3.
    assert queue.snapshot(9.9) == [jid(3), jid(2), jid(1)]
    # At 10 s job 1 is NORMAL and older than job 2; the first NORMAL slot offers it.
    assert queue.snapshot(10.0) == [jid(3), jid(1), jid(2)]
    # At 20 s job 1 is HIGHER and the oldest HIGHER job; job 2 (15 s) is HIGHER too, and was
    # pushed before job 3 at the same moment.
    assert queue.snapshot(20.0) == [jid(1), jid(2), jid(3)]


def test_aging_never_lifts_a_job_above_higher() -> None:
    queue = JobQueue(aging_seconds=1.0, hold_after_seconds=NEVER_AGES)
    queue.push(jid(1), L, 0.0)
    queue.push(jid(2), IMM, 99.0)
    assert queue.choose(100.0, always) == jid(2)


def test_a_blocked_job_is_backfilled_then_held_for() -> None:
    """A GPU job waits while the GPU is busy: CPU jobs run meanwhile, until the guard holds."""
    queue = JobQueue(aging_seconds=NEVER_AGES, hold_after_seconds=30.0)
    gpu_job = jid(0)
    queue.push(gpu_job, N, 0.0)
    gpu_free_at = 45
    admitted: dict[int, JobId | None] = {}
    for tick in range(1, 60):
        queue.push(jid(tick), H, float(tick))

        def fits(job: JobId, gpu_free: bool = tick >= gpu_free_at) -> bool:
            return gpu_free or job != gpu_job

        admitted[tick] = queue.choose(float(tick), fits)
    # Before the bound CPU jobs keep the node busy, one per tick.
    assert all(admitted[t] not in (None, gpu_job) for t in range(1, 30))
    # From the bound the queue holds for the GPU job, which goes as soon as it fits.
    assert all(admitted[t] is None for t in range(30, gpu_free_at))
    assert admitted[gpu_free_at] == gpu_job
    assert all(admitted[t] not in (None, gpu_job) for t in range(gpu_free_at + 1, 60))


def test_a_blocked_job_goes_in_its_turn_when_it_fits_before_the_bound() -> None:
    queue = JobQueue(aging_seconds=NEVER_AGES, hold_after_seconds=30.0)
    queue.push(jid(0), N, 0.0)
    queue.push(jid(1), H, 0.0)
    queue.push(jid(2), H, 0.0)
    assert queue.choose(1.0, only(jid(1), jid(2))) == jid(1)
    # The NORMAL slot comes next: once the GPU job fits it takes it.
    assert queue.choose(2.0, always) == jid(0)


def test_a_large_gpu_job_is_not_starved_by_smaller_gpu_jobs() -> None:
    """Two GPUs, a 2-GPU job, and a steady stream of 1-GPU jobs that always keep one busy."""
    hold_after, run_for = 20.0, 3
    queue = JobQueue(aging_seconds=NEVER_AGES, hold_after_seconds=hold_after)
    ledger = ResourceLedger(Capacity(gpus=(0, 1), cpu=8, memory_mb=16_000))
    big = jid(0)
    requests = {big: Request(cpu=1, gpu=2, memory_mb=100)}
    queue.push(big, L, 0.0)
    ends: dict[JobId, int] = {}
    admitted_at: dict[JobId, int] = {}
    idle_gpus: dict[int, int] = {}
    for tick in range(1, 100):
        for finished in [job for job, end in ends.items() if end == tick]:
            ledger.release(finished)
        small = jid(tick)
        requests[small] = Request(cpu=1, gpu=1, memory_mb=100)
        queue.push(small, H, float(tick))
        while (job := queue.choose(float(tick), lambda j: ledger.fits(requests[j]))) is not None:
            ledger.allocate(job, requests[job])
            ends[job], admitted_at[job] = tick + run_for, tick
        idle_gpus[tick] = len(ledger.free().gpus)
        if big in admitted_at:
            break
    assert big in admitted_at
    assert admitted_at[big] <= hold_after + run_for
    # Within the bound the small jobs kept both GPUs busy: backfill, not idling.
    assert all(idle_gpus[tick] == 0 for tick in range(2, int(hold_after)))


def test_the_guard_admits_the_oldest_job_first_when_it_fits() -> None:
    queue = JobQueue(aging_seconds=NEVER_AGES, hold_after_seconds=10.0)
    queue.push(jid(1), L, 0.0)
    queue.push(jid(2), H, 5.0)
    assert queue.choose(10.0, always) == jid(1)


def test_fits_is_asked_at_most_once_per_job() -> None:
    queue = JobQueue(aging_seconds=1.0, hold_after_seconds=NEVER_AGES)
    for number, (priority, at) in enumerate([(L, 0.0), (N, 0.5), (H, 1.0), (L, 2.5), (H, 3.0)]):
        queue.push(jid(number), priority, at)
    asked: list[JobId] = []

    def fits(job: JobId) -> bool:
        asked.append(job)
        return False

    assert queue.choose(3.0, fits) is None
    assert sorted(asked) == sorted(jid(n) for n in range(5))
    assert len(queue) == 5


def test_remove_and_membership() -> None:
    queue = JobQueue()
    queue.push(jid(1), H, 0.0)
    queue.push(jid(2), H, 0.0)
    assert jid(1) in queue
    assert len(queue) == 2
    assert queue.remove(jid(1)) is True
    assert queue.remove(jid(1)) is False
    assert jid(1) not in queue
    assert drain(queue) == [jid(2)]


def test_snapshot_shows_admission_order_without_changing_the_queue() -> None:
    queue = JobQueue(aging_seconds=NEVER_AGES)
    fill(queue, 3)
    queue.push(jid(99), IMM, 0.0)
    shown = queue.snapshot(0.0)
    assert len(queue) == 10
    assert shown == drain(queue)
    assert shown[0] == jid(99)


def test_pushing_a_queued_job_again_is_a_state_conflict() -> None:
    queue = JobQueue()
    queue.push(jid(1), N, 0.0)
    with pytest.raises(Conflict) as caught:
        queue.push(jid(1), H, 1.0)
    assert caught.value.code == ErrorCode.JOB_STATE_CONFLICT


@pytest.mark.parametrize(("priority", "at"), [(JobPriority.UNKNOWN, 0.0), (N, math.nan)])
def test_push_refuses_unknown_priority_and_bad_time(priority: JobPriority, at: float) -> None:
    with pytest.raises(Invalid):
        JobQueue().push(jid(1), priority, at)


@pytest.mark.parametrize(
    "build",
    [
        lambda: QueueWeights(higher=0),
        lambda: QueueWeights(lower=101),
        lambda: JobQueue(aging_seconds=0.0),
        lambda: JobQueue(hold_after_seconds=math.inf),
        lambda: JobQueue(rotation=7),
    ],
)
def test_bad_configuration_is_refused(build: Callable[[], object]) -> None:
    with pytest.raises(Invalid):
        build()


_jobs = st.lists(
    st.tuples(st.sampled_from([IMM, H, N, L]), st.integers(min_value=0, max_value=40)),
    min_size=1,
    max_size=40,
)


def _fits_for(step: int) -> Callable[[JobId], bool]:
    # Some jobs fit at some steps: a deterministic pattern that exercises backfill and the guard.
    return lambda job: (int(job, 16) * 7 + step) % 3 != 0


def _run(queue: JobQueue, steps: range) -> list[JobId | None]:
    return [queue.choose(float(step), _fits_for(step)) for step in steps]


@given(jobs=_jobs, crash_after=st.integers(min_value=0, max_value=40))
def test_a_queue_rebuilt_from_stored_jobs_decides_the_same(
    jobs: list[tuple[JobPriority, int]], crash_after: int
) -> None:
    def build(rotation: int = 0) -> JobQueue:
        return JobQueue(aging_seconds=7.0, hold_after_seconds=25.0, rotation=rotation)

    original = build()
    stored = [(jid(n), priority, float(at)) for n, (priority, at) in enumerate(jobs)]
    for job in stored:
        original.push(*job)
    twin = build()
    for job in stored:
        twin.push(*job)
    before = _run(original, range(crash_after))
    assert _run(twin, range(crash_after)) == before

    # Restart: only what the store holds survives (the jobs still queued, and the cursor).
    admitted = set(before)
    remaining = sorted(
        (job for job in stored if job[0] not in admitted), key=lambda job: (job[2], job[0])
    )
    rebuilt = build(rotation=original.rotation)
    for job in remaining:
        rebuilt.push(*job)
    after = range(crash_after, crash_after + 60)
    assert _run(rebuilt, after) == _run(original, after)
