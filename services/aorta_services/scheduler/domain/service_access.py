"""Who may see a pipeline service and read its log (pure, no I/O).

A service is shared by every job, of any user, that declares the same image, tag and command,
so it has no single owner. What it shows of users is theirs: the jobs using it
(`ServiceRecord.users`, each with the subject that created it in `job_owners`) and its log,
which may hold traces of every job that used it (`ServiceRecord.owners`), as may a failed
service's message, which ends with its last log lines. Mirroring `Jobs.List`
(`aorta.auth.ownership.listed_owner`):

- a viewer and an admin see every service with every job;
- a `user` sees the services its own jobs have used, with its own jobs among their users only,
  and a failed service's message only where it may read the log;
- the log is an admin's, or a `user`'s when every job that used the service is its own. Jobs
  made while authentication was off, and records stored before owners were kept, have no owner:
  their services' logs are an admin's only;
- a job faulted by a failed service is told the service's last log lines (in its Status
  messages, which its owner, viewers and admins read) only when every job that used the
  service was its owner's (`failure_told`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from aorta.auth.ownership import listed_owner
from aorta.auth.principal import Principal, current_principal
from aorta.errors import Forbidden
from aorta_services.scheduler.domain.services import ServiceRecord, ServiceState

HIDDEN_MESSAGE = "failed; its log holds other users' jobs' lines, which only an admin may read"
"""A failed service's message as a user who may not read its log sees it."""
LOG_LEFT_OUT = (
    "its last log lines are left out: other users' jobs used the service too, and only an admin "
    "may read its log"
)
"""What a faulted job is told instead of a shared service's last log lines."""


def listed(record: ServiceRecord, caller: Principal | None = None) -> ServiceRecord | None:
    """`record` as `caller` (default: the current one) may see it in `aorta.v1.Services/List`;
    None when it may not see it at all."""
    who = current_principal() if caller is None else caller
    subject = listed_owner(who)
    if subject is None:
        return record
    if subject not in record.owners:
        return None
    users = tuple(job for job in record.users if record.job_owners.get(job) == subject)
    if record.state is ServiceState.FAILED and not may_read_log(record, who):
        return replace(record, users=users, message=HIDDEN_MESSAGE)
    return replace(record, users=users)


def may_read_log(record: ServiceRecord, caller: Principal) -> bool:
    """Whether `caller` may read the service's log: an admin, or the one owner of every job
    that used it."""
    return caller.is_admin or (bool(caller.subject) and set(record.owners) == {caller.subject})


def check_may_read_log(record: ServiceRecord, caller: Principal | None = None) -> None:
    """`Forbidden` unless `caller` (default: the current one) may read the service's log; the
    refusal never names another subject."""
    who = current_principal() if caller is None else caller
    if may_read_log(record, who):
        return
    thing = f"service {record.id}"
    if who.subject in record.owners:
        raise Forbidden(
            f"{thing} is shared with other jobs than yours; only an admin may read its log"
        )
    if set(record.owners) <= {""}:
        raise Forbidden(
            f"{thing} was used by jobs made before authentication was turned on; only an admin "
            "may read its log"
        )
    raise Forbidden(f"{thing} belongs to another user")


def failure_told(record: ServiceRecord | None, name: str, messages: Sequence[str]) -> str:
    """What the jobs that waited for service `name` are told of its failure (`messages`: why
    it failed, then what the runner quoted of its log): all of it when one subject's jobs
    alone used the service (each job told joined the record before, so that subject is its
    owner: `may_read_log`'s rule for the owner), else why it failed and `LOG_LEFT_OUT`.
    `record` is the service's as last known (None: unknown, so nothing of its log is told)."""
    whole = f"service {name!r} failed: {'; '.join(messages)}"
    if len(messages) < 2 or (record is not None and len(set(record.owners)) == 1):
        return whole
    return f"service {name!r} failed: {messages[0]}; {LOG_LEFT_OUT}"
