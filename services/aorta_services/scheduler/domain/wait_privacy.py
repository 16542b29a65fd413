"""What a `user` is shown of wait reasons: another user's jobs without their ids (pure).

A reason names other jobs (`domain.waiting`): the jobs ahead of a queued one, the jobs whose
operators hold the GPUs, the job the node drains for. A viewer and an admin read every job and
see them all; a `user` reads its own jobs only (`aorta.auth.ownership`), so in the reasons it
is shown (Jobs.Status, `aorta.v1.Jobs/Queue`) a job that is not its own keeps its place but
loses its id and its operator's name: it reads as "another user's job". The reasons are stored
with ids alone; the owners of the jobs they name are looked up when a `user` asks
(`named_jobs`), and a job whose owner is not known (gone since) counts as another user's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from aorta_services.scheduler.domain.waiting import Holder, WaitReason, Waits


def reason_jobs(reason: WaitReason) -> set[str]:
    """The ids of the jobs `reason` names."""
    named = {*reason.ahead, *(holder.job_id for holder in reason.holders), reason.target}
    named.discard("")
    return named


def named_jobs(waits: Waits) -> set[str]:
    """The ids of the jobs every reason of `waits` names."""
    reasons: Iterable[WaitReason] = (
        *([] if waits.job is None else [waits.job]),
        *waits.operators.values(),
    )
    return set().union(*(reason_jobs(reason) for reason in reasons))


def shown_reason(reason: WaitReason, viewer: str, owners: Mapping[str, str]) -> WaitReason:
    """`reason` as the `user` `viewer` sees it: every job whose owner (`owners`, by id) is not
    `viewer` with "" for its id, and such a holder without its operator and time."""

    def seen(job_id: str) -> str:
        return job_id if job_id and owners.get(job_id) == viewer else ""

    holders = tuple(holder if seen(holder.job_id) else Holder("") for holder in reason.holders)
    return replace(
        reason,
        ahead=tuple(seen(job_id) for job_id in reason.ahead),
        holders=holders,
        target=seen(reason.target),
    )


def shown_waits(waits: Waits, viewer: str, owners: Mapping[str, str]) -> Waits:
    """`waits` with each reason as `shown_reason` shows it to `viewer`."""
    return Waits(
        job=None if waits.job is None else shown_reason(waits.job, viewer, owners),
        operators={
            name: shown_reason(reason, viewer, owners) for name, reason in waits.operators.items()
        },
    )
