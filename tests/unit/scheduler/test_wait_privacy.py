"""What a `user` is shown of wait reasons (`domain.wait_privacy`): its own jobs by id, another
user's (or one whose owner is unknown) as "another user's job", in the words and the facts."""

from __future__ import annotations

from aorta.auth.ownership import OTHER_USERS_JOB
from aorta_services.scheduler.domain.wait_privacy import (
    named_jobs,
    reason_jobs,
    shown_reason,
    shown_waits,
)
from aorta_services.scheduler.domain.waiting import (
    Holder,
    WaitKind,
    WaitReason,
    Waits,
)

MINE, THEIRS, GONE = "a" * 32, "b" * 32, "c" * 32
OWNERS = {MINE: "alice", THEIRS: "bob"}
NOW = 1_700_000_000.0


def queued(*ahead: str, count: int | None = None) -> WaitReason:
    return WaitReason(
        WaitKind.QUEUED,
        position=(count or len(ahead)) + 1,
        ahead=ahead,
        ahead_count=count or len(ahead),
    )


def test_jobs_ahead_of_another_user_lose_their_ids_in_facts_and_words() -> None:
    shown = shown_reason(queued(THEIRS, MINE, GONE, count=5), "alice", OWNERS)
    assert shown.ahead == ("", MINE, "")
    assert shown.text(NOW) == (
        f"6th in the queue, behind {OTHER_USERS_JOB}, job {MINE}, {OTHER_USERS_JOB} and 2 more"
    )
    assert shown_reason(queued(THEIRS), "alice", OWNERS).text(NOW) == (
        f"2nd in the queue, behind {OTHER_USERS_JOB}"
    )
    own = shown_reason(queued(MINE), "alice", OWNERS)
    assert own == queued(MINE) and own.text(NOW) == f"2nd in the queue, behind job {MINE}"


def test_gpu_holders_and_the_held_for_job_of_another_user_lose_their_ids() -> None:
    resources = WaitReason(
        WaitKind.RESOURCES,
        resource="gpu",
        needed=2,
        capacity=2,
        holders=(Holder(THEIRS, "segment", NOW - 60), Holder(MINE, "classify", NOW - 60)),
    )
    shown = shown_reason(resources, "alice", OWNERS)
    assert shown.holders == (Holder(""), Holder(MINE, "classify", NOW - 60))
    words = shown.text(NOW)
    assert words.startswith(f"needs 2 GPUs; the node has 2, held by {OTHER_USERS_JOB} and job ")
    assert THEIRS not in words and "segment" not in words
    held = WaitReason(WaitKind.HELD, target=THEIRS, target_since=NOW - 120)
    hidden = shown_reason(held, "alice", OWNERS)
    assert hidden.target == "" and hidden.view(NOW)["waited_seconds"] == 120
    assert hidden.text(NOW) == f"held: the node is draining for {OTHER_USERS_JOB} (waited 2 min)"
    assert shown_reason(held, "bob", OWNERS) == held


def test_the_jobs_a_jobs_reasons_name_and_all_of_them_shown() -> None:
    waits = Waits(
        job=queued(THEIRS, MINE),
        operators={"left": WaitReason(WaitKind.RESOURCES, holders=(Holder(GONE, "right"),))},
    )
    assert reason_jobs(queued(THEIRS, MINE)) == {THEIRS, MINE}
    assert named_jobs(waits) == {THEIRS, MINE, GONE}
    assert named_jobs(Waits()) == set()
    shown = shown_waits(waits, "alice", OWNERS)
    assert shown.job is not None and shown.job.ahead == ("", MINE)
    assert shown.operators["left"].holders == (Holder(""),)
    assert named_jobs(shown) == {MINE}
