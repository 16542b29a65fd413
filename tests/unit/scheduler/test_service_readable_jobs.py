"""`SCHEDULER_READABLE_JOBS`, which the monitor asks for a `user` whose Clara.Utilization
answer names jobs: a `user` may see its own jobs' ids only, a viewer and an admin every one's;
a job that is gone, or one without an owner, is no `user`'s."""

from __future__ import annotations

from aorta import contracts
from aorta.auth.principal import ANONYMOUS, Principal, Role
from aorta.bus.verbs import call
from aorta.ids import JobId
from tests.unit.scheduler.job_calls import chain
from tests.unit.scheduler.scheduler_harness import Harness

ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
VIEWER = Principal("vera", frozenset({Role.VIEWER}))
ADMIN = Principal("root", frozenset({Role.ADMIN}))
GONE = JobId("0" * 32)


async def readable(harness: Harness, caller: Principal, *job_ids: str) -> tuple[str, ...]:
    asked = contracts.JobIds(tuple(JobId(job) for job in job_ids))
    answer = await call(
        harness.client,
        contracts.SCHEDULER_READABLE_JOBS,
        asked,
        headers=harness.acting_as(caller).headers,
    )
    return answer.job_ids


async def test_a_user_may_see_its_own_jobs_ids_only(harness: Harness) -> None:
    await chain(harness)
    alices = await harness.acting_as(ALICE).create("alices")
    bobs = await harness.acting_as(BOB).create("bobs")
    unowned = await harness.create("unowned")
    asked = (bobs, alices, unowned, GONE)
    assert await readable(harness, ALICE, *asked) == (alices,)
    assert await readable(harness, BOB, *asked) == (bobs,)
    for caller in (VIEWER, ADMIN, ANONYMOUS):
        assert await readable(harness, caller, *asked) == (bobs, alices, unowned)
    assert await readable(harness, ALICE) == ()
