"""`aorta.v1.Jobs/Page` on a scheduler replica: pages of a history read from cursors, newest
first, each job once, with Jobs.List's filters plus created-before, a user's own jobs only,
and pages cut short by size rather than by bytes of metadata they cannot hold."""

from __future__ import annotations

from typing import Any

import pytest

from aorta import subjects
from aorta.api import aorta_jobs_pb2, common_pb2, jobs_pb2
from aorta.auth.principal import Principal, Role
from aorta.errors import Invalid
from aorta.store.port import MANAGED_FIELDS
from aorta.timestamps import UNIX_EPOCH_IN_CLARA_SECONDS
from aorta_services.scheduler.domain.job_page import MAX_PAGE_BYTES, decode_cursor
from aorta_services.scheduler.domain.states import JobPhase
from aorta_services.scheduler.repository import JOBS
from tests.unit.scheduler.job_calls import chain
from tests.unit.scheduler.scheduler_harness import Harness

ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
VIEWER = Principal("vera", frozenset({Role.VIEWER}))
HISTORY = 23
# Phases the leader leaves alone: a stored RUNNING or QUEUED copy would be one it acts on.
PHASES = (JobPhase.SUCCEEDED, JobPhase.FAULTED, JobPhase.CREATED)


async def _history(harness: Harness, owners: tuple[str, ...] = ("",)) -> list[dict[str, Any]]:
    """`HISTORY` stored jobs copied from one created through the service, whole seconds apart,
    their phases and owners taking turns; their documents, newest first."""
    await chain(harness)
    first = await harness.create("first")
    jobs = harness.replicas[0].context.store.collection(JOBS)
    template = await jobs.get(first)
    await jobs.delete(first)
    stored = []
    for n in range(HISTORY):
        phase = PHASES[n % len(PHASES)]
        copy = {k: v for k, v in template.items() if k not in MANAGED_FIELDS[1:]}
        copy.update(
            id=f"{n + 1:032x}",
            name=f"job-{n}",
            created=float(int(template["created"]) - n),
            phase=phase.value,
            state=int(phase.state),
            status=int(phase.status),
            owner=owners[n % len(owners)],
        )
        await jobs.insert(copy)
        stored.append(copy)
    return stored


async def page(harness: Harness, **fields: Any) -> aorta_jobs_pb2.JobsPageResponse:
    request = aorta_jobs_pb2.JobsPageRequest(**fields)
    answer: aorta_jobs_pb2.JobsPageResponse = await harness.call(
        subjects.SCHEDULER_PAGE, request, aorta_jobs_pb2.JobsPageResponse
    )
    return answer


async def every_page(harness: Harness, **fields: Any) -> list[list[str]]:
    """The job ids of each page, following the cursors to the last page."""
    pages: list[list[str]] = []
    cursor = ""
    while True:
        answer = await page(harness, cursor=cursor, **fields)
        pages.append([job.job_id.value for job in answer.jobs])
        cursor = answer.next_cursor
        if not cursor:
            return pages


def clara_seconds(unix: float) -> common_pb2.Timestamp:
    return common_pb2.Timestamp(value=int(unix) + UNIX_EPOCH_IN_CLARA_SECONDS)


async def test_pages_follow_each_other_newest_first_each_job_once(harness: Harness) -> None:
    stored = await _history(harness)

    pages = await every_page(harness, page_size=10)

    assert [len(p) for p in pages] == [10, 10, 3]
    assert [job for p in pages for job in p] == [d["id"] for d in stored]


async def test_a_page_that_ends_the_history_exactly_has_no_cursor(harness: Harness) -> None:
    stored = await _history(harness)

    answer = await page(harness, page_size=HISTORY)

    assert len(answer.jobs) == HISTORY and answer.next_cursor == ""
    assert answer.jobs[0].job_name == stored[0]["name"]


async def test_jobs_created_meanwhile_do_not_shift_the_next_page(harness: Harness) -> None:
    stored = await _history(harness)
    first = await page(harness, page_size=5)
    jobs = harness.replicas[0].context.store.collection(JOBS)
    newer = {k: v for k, v in stored[0].items() if k not in MANAGED_FIELDS[1:]}
    newer.update(id="f" * 32, created=stored[0]["created"] + 10)
    await jobs.insert(newer)

    second = await page(harness, page_size=5, cursor=first.next_cursor)

    assert [job.job_id.value for job in second.jobs] == [d["id"] for d in stored[5:10]]


async def test_filters_select_by_state_status_and_creation_time(harness: Harness) -> None:
    stored = await _history(harness)
    pending = [d["id"] for d in stored if d["phase"] == JobPhase.CREATED.value]
    faulted = [d["id"] for d in stored if d["phase"] == JobPhase.FAULTED.value]

    by_state = await every_page(harness, page_size=3, has_state=[jobs_pb2.JOB_STATE_PENDING])
    by_status = await every_page(harness, has_status=[jobs_pb2.JOB_STATUS_FAULTED])
    window = await every_page(
        harness,
        created_after=clara_seconds(stored[10]["created"] - 1),
        created_before=clara_seconds(stored[2]["created"] + 1),
    )

    assert [job for p in by_state for job in p] == pending
    assert by_status == [faulted]
    # Clara times are whole seconds: the bounds are exclusive and the history a second apart.
    assert window == [[d["id"] for d in stored[2:11]]]


async def test_a_user_pages_through_its_own_jobs_only(harness: Harness) -> None:
    stored = await _history(harness, owners=("alice", "bob"))
    alices = [d["id"] for d in stored if d["owner"] == "alice"]

    mine = await every_page(harness.acting_as(ALICE), page_size=4)
    everyone = await every_page(harness.acting_as(VIEWER), page_size=HISTORY)

    assert [job for p in mine for job in p] == alices
    assert everyone == [[d["id"] for d in stored]]
    bobs = await page(harness.acting_as(BOB), has_state=[jobs_pb2.JOB_STATE_PENDING])
    assert [job.job_id.value for job in bobs.jobs] == [
        d["id"] for d in stored if d["owner"] == "bob" and d["phase"] == JobPhase.CREATED.value
    ]


async def test_a_page_ends_before_its_metadata_outgrows_one_message(harness: Harness) -> None:
    stored = await _history(harness)
    jobs = harness.replicas[0].context.store.collection(JOBS)
    heavy = [["blob", "x" * (MAX_PAGE_BYTES // 3)]]
    for document in stored[:4]:
        await jobs.update(document["id"], {"metadata": heavy})

    pages = await every_page(harness, page_size=10)

    # Two heavy jobs fill a page; the next holds the other two and eight light ones.
    assert [len(p) for p in pages] == [2, 10, 10, 1]
    assert [job for p in pages for job in p] == [d["id"] for d in stored]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cursor": "not-a-cursor"}, "cursor is not one Jobs.Page gave"),
        ({"page_size": 501}, "page_size 501 is above"),
        ({"has_state": [9]}, "job state 9 in the filter"),
    ],
)
async def test_a_bad_request_is_refused_with_what_is_wrong(
    harness: Harness, fields: dict[str, Any], message: str
) -> None:
    await chain(harness)
    with pytest.raises(Invalid, match=message):
        await page(harness, **fields)


def test_a_cursor_names_the_exact_key_it_was_made_from() -> None:
    assert decode_cursor("") is None
    with pytest.raises(Invalid):
        decode_cursor("W3RydWUsIngiXQ")  # [true, "x"]
