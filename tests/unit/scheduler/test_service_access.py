"""Who sees a pipeline service and reads its log (`domain.service_access`), and how a record
keeps the owners of the jobs that used it (`joined`, `left`, stored and read back)."""

from __future__ import annotations

import pytest

from aorta.auth.principal import ANONYMOUS, Principal, Role
from aorta.errors import Forbidden
from aorta_services.scheduler.domain import Request
from aorta_services.scheduler.domain.service_access import (
    HIDDEN_MESSAGE,
    LOG_LEFT_OUT,
    check_may_read_log,
    failure_told,
    listed,
)
from aorta_services.scheduler.domain.services import (
    ServiceRecord,
    ServiceState,
    joined,
    left,
)

ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
VIEWER = Principal("vera", frozenset({Role.VIEWER}))
ADMIN = Principal("root", frozenset({Role.ADMIN}))


def record(**kw: object) -> ServiceRecord:
    base = ServiceRecord(
        id="svc-0123456789abcdef",
        name="trtis",
        image="trtis",
        tag="1",
        command=("serve",),
        state=ServiceState.READY,
        request=Request(cpu=1, gpu=0, memory_mb=256),
    )
    return base if not kw else ServiceRecord.from_document({**base.to_document(), **kw})


def test_joined_and_left_keep_each_jobs_owner_and_every_owner_ever() -> None:
    used = joined(record(), "j1", "p1", now=1.0, owner="alice")
    used = joined(used, "j2", "p1", now=2.0, owner="bob")
    used = joined(used, "j1", "p1", now=3.0)  # an operator's connect: the job is known
    assert used.job_owners == {"j1": "alice", "j2": "bob"} and used.owners == ("alice", "bob")
    after = left(used, ["j2"], now=4.0)
    assert after.users == ("j1",) and after.job_owners == {"j1": "alice"}
    assert after.owners == ("alice", "bob")
    assert ServiceRecord.from_document(after.to_document()) == after


def test_a_user_sees_its_own_jobs_only_and_nothing_of_services_it_never_used() -> None:
    used = joined(joined(record(), "j1", "p", now=1, owner="alice"), "j2", "p", now=1, owner="bob")
    mine = listed(used, ALICE)
    assert mine is not None and mine.users == ("j1",)
    assert listed(joined(record(), "j2", "p", now=1, owner="bob"), ALICE) is None
    for caller in (VIEWER, ADMIN, ANONYMOUS):
        assert listed(used, caller) == used


def test_a_failed_services_message_is_hidden_unless_the_user_may_read_its_log() -> None:
    failed = record(state="failed", message="service 'trtis' failed: last lines: secret")
    only_alice = joined(failed, "j1", "p", now=1, owner="alice")
    assert listed(only_alice, ALICE) == only_alice
    shared = joined(only_alice, "j2", "p", now=1, owner="bob")
    seen = listed(shared, ALICE)
    assert seen is not None and seen.message == HIDDEN_MESSAGE
    assert listed(shared, VIEWER) == shared


@pytest.mark.parametrize(
    ("owners", "caller", "refusal"),
    [
        (["bob"], ALICE, "belongs to another user$"),
        (["alice", "bob"], ALICE, "shared with other jobs than yours"),
        ([""], ALICE, "made before authentication was turned on"),
        ([], ALICE, "made before authentication was turned on"),
        (["alice", ""], ALICE, "shared with other jobs than yours"),
    ],
)
def test_a_log_is_refused_to_a_user_unless_every_job_that_used_it_is_its_own(
    owners: list[str], caller: Principal, refusal: str
) -> None:
    with pytest.raises(Forbidden, match=refusal) as refused:
        check_may_read_log(record(owners=owners), caller)
    assert "bob" not in str(refused.value)


def test_a_log_is_the_one_owners_and_every_admins() -> None:
    check_may_read_log(record(owners=["alice"]), ALICE)
    for owners in (["alice", "bob"], [""], []):
        check_may_read_log(record(owners=owners), ADMIN)
        check_may_read_log(record(owners=owners), ANONYMOUS)


def test_a_faulted_job_is_told_a_services_last_lines_only_when_one_subjects_jobs_used_it() -> None:
    why, tail = "pipeline service trtis exited", "last lines of its log:\npatient 1234"
    whole = f"service 'trtis' failed: {why}; {tail}"
    assert failure_told(record(owners=["alice"]), "trtis", (why, tail)) == whole
    assert failure_told(record(owners=[""]), "trtis", (why, tail)) == whole
    for owners in (["alice", "bob"], ["alice", ""], []):
        told = failure_told(record(owners=owners), "trtis", (why, tail))
        assert told == f"service 'trtis' failed: {why}; {LOG_LEFT_OUT}"
    assert LOG_LEFT_OUT in failure_told(None, "trtis", (why, tail))
    assert failure_told(None, "trtis", ("does not fit",)) == "service 'trtis' failed: does not fit"
