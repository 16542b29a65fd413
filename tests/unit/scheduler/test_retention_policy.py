"""The retention policy on its own: exactly what it removes, at which moment, and nothing else."""

from __future__ import annotations

import pytest

from aorta.ids import JobId
from aorta_services.scheduler.domain import JobPhase
from aorta_services.scheduler.domain.retention import (
    DAY,
    Limit,
    Removal,
    RetentionPolicy,
    RetentionStep,
    StoppedJob,
    plan,
)

NOW = 1_000 * DAY


def job(
    n: int,
    *,
    days_ago: float,
    phase: JobPhase = JobPhase.SUCCEEDED,
    size: int = 0,
    kept: bool = True,
) -> StoppedJob:
    return StoppedJob(JobId(f"{n:032x}"), phase, NOW - days_ago * DAY, kept, size)


def removed(steps: list[RetentionStep]) -> list[tuple[int, Removal]]:
    return [(int(step.job_id, 16), step.removal) for step in steps]


def test_no_limit_removes_nothing_and_is_inactive() -> None:
    policy = RetentionPolicy()
    assert not policy.active
    assert plan(policy, [job(1, days_ago=10_000, size=1 << 40)], NOW) == []


def test_jobs_go_whole_at_their_age_and_not_a_second_before() -> None:
    policy = RetentionPolicy(jobs_days=30)
    assert policy.active
    jobs = [job(1, days_ago=30), job(2, days_ago=29.999), job(3, days_ago=31, kept=False)]
    steps = plan(policy, jobs, NOW)
    assert removed(steps) == [(1, Removal.JOB), (3, Removal.JOB)]
    assert steps[0].reason == "the job stopped 30 days ago; kept 30 days"


def test_failed_jobs_are_kept_by_their_own_limit_with_their_payloads() -> None:
    policy = RetentionPolicy(jobs_days=7, failed_jobs_days=90, payloads_days=1)
    jobs = [
        job(1, days_ago=8),
        job(2, days_ago=8, phase=JobPhase.FAULTED),
        job(3, days_ago=91, phase=JobPhase.FAULTED),
        job(4, days_ago=2, phase=JobPhase.CANCELED),
        job(5, days_ago=2, phase=JobPhase.FAULTED),
    ]
    steps = plan(policy, jobs, NOW)
    assert removed(steps) == [(1, Removal.JOB), (3, Removal.JOB), (4, Removal.PAYLOAD)]
    assert steps[1].reason == "the failed job stopped 91 days ago; kept 90 days"


def test_without_a_failed_limit_failed_jobs_follow_the_jobs_limit() -> None:
    policy = RetentionPolicy(jobs_days=7)
    assert removed(plan(policy, [job(1, days_ago=7, phase=JobPhase.FAULTED)], NOW)) == [
        (1, Removal.JOB)
    ]
    only_failed = RetentionPolicy(failed_jobs_days=7)
    jobs = [job(1, days_ago=8, phase=JobPhase.FAULTED), job(2, days_ago=800)]
    assert removed(plan(only_failed, jobs, NOW)) == [(1, Removal.JOB)]


def test_a_payload_goes_once_and_its_job_stays() -> None:
    policy = RetentionPolicy(payloads_days=3)
    jobs = [job(1, days_ago=3), job(2, days_ago=4, kept=False), job(3, days_ago=2)]
    steps = plan(policy, jobs, NOW)
    assert removed(steps) == [(1, Removal.PAYLOAD)]
    assert steps[0].reason == "its job stopped 3 days ago; payloads kept 3 days"


def test_over_the_byte_limit_the_oldest_payloads_go_failed_ones_last() -> None:
    policy = RetentionPolicy(max_bytes=100)
    jobs = [
        job(1, days_ago=5, size=40, phase=JobPhase.FAULTED),
        job(2, days_ago=4, size=40),
        job(3, days_ago=3, size=0),
        job(4, days_ago=2, size=40),
        job(5, days_ago=1, size=40),
        job(6, days_ago=9, size=500, kept=False),
    ]
    steps = plan(policy, jobs, NOW)
    assert removed(steps) == [(2, Removal.PAYLOAD), (4, Removal.PAYLOAD)]
    assert steps[0].reason == ("the stopped jobs' payloads hold 160 bytes, over the limit of 100")
    assert plan(policy, jobs[:3], NOW) == []


def test_jobs_removed_by_age_do_not_count_against_the_byte_limit() -> None:
    policy = RetentionPolicy(jobs_days=10, payloads_days=5, max_bytes=50)
    jobs = [
        job(1, days_ago=11, size=1000),
        job(2, days_ago=6, size=1000),
        job(3, days_ago=1, size=50),
    ]
    assert removed(plan(policy, jobs, NOW)) == [(1, Removal.JOB), (2, Removal.PAYLOAD)]


@pytest.mark.parametrize("phase", [JobPhase.SUCCEEDED, JobPhase.CANCELED, JobPhase.TERMINATED])
def test_every_stopped_job_that_did_not_fail_follows_the_jobs_limit(phase: JobPhase) -> None:
    policy = RetentionPolicy(jobs_days=1, failed_jobs_days=100)
    assert removed(plan(policy, [job(1, days_ago=1, phase=phase)], NOW)) == [(1, Removal.JOB)]


def test_each_removal_names_the_limit_that_asks_for_it() -> None:
    policy = RetentionPolicy(jobs_days=30, failed_jobs_days=90, payloads_days=7, max_bytes=50)
    jobs = [
        job(1, days_ago=31),
        job(2, days_ago=91, phase=JobPhase.FAULTED),
        job(3, days_ago=8, size=10),
        job(4, days_ago=2, size=100),
    ]
    assert [(int(step.job_id, 16), step.limit) for step in plan(policy, jobs, NOW)] == [
        (1, Limit.JOBS_DAYS),
        (2, Limit.FAILED_JOBS_DAYS),
        (3, Limit.PAYLOADS_DAYS),
        (4, Limit.MAX_GIB),
    ]
    without_failed_limit = RetentionPolicy(jobs_days=30)
    failed = [job(1, days_ago=31, phase=JobPhase.FAULTED)]
    assert [step.limit for step in plan(without_failed_limit, failed, NOW)] == [Limit.JOBS_DAYS]
