"""Jobs.List over a history longer than a page: every job once, newest first, with its
metadata, read from the store a page at a time while the stream is consumed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import pytest

from aorta import subjects
from aorta.api import jobs_pb2
from aorta.bus import Batch, BusOptions, Request, StreamItem
from aorta.bus.batches import LIST_BATCH_BYTES
from aorta.store.paging import PAGE_SIZE
from aorta.store.port import MANAGED_FIELDS
from aorta.subjects import SCHEDULER_LIST
from aorta_services.scheduler import queries as queries_module
from aorta_services.scheduler.queries import JobQueries
from aorta_services.scheduler.repository import JOBS, JobRepository
from tests.unit.scheduler.job_calls import chain, ids, list_jobs
from tests.unit.scheduler.scheduler_harness import Harness

HISTORY = PAGE_SIZE * 2 + 30


def _unmanaged(document: dict[str, Any]) -> dict[str, Any]:
    """`document` without the fields the store sets, ready to insert again."""
    return {key: value for key, value in document.items() if key not in MANAGED_FIELDS[1:]}


async def _history(harness: Harness, padding: int = 0) -> list[str]:
    """`HISTORY` stored jobs, copies of one created through the service, each a second older
    than the one before, the copies with about `padding` bytes of metadata more; their ids,
    newest first."""
    await chain(harness)
    first = await harness.create("first", metadata={"site": "north"})
    jobs = harness.replicas[0].context.store.collection(JOBS)
    template = await jobs.get(first)
    newest = [first]
    padded = [[f"pad-{n:03d}", "v" * 200] for n in range(padding // 200)]
    for n in range(1, HISTORY):
        copy = _unmanaged(template)
        copy.update(id=f"{n:032x}", created=template["created"] - n, name=f"job-{n}")
        copy["metadata"] = [*copy["metadata"], *padded]
        await jobs.insert(copy)
        newest.append(copy["id"])
    return newest


async def test_a_history_longer_than_a_page_is_listed_whole_newest_first(
    harness: Harness,
) -> None:
    newest = await _history(harness)

    listed = await list_jobs(harness)

    assert ids(listed) == newest
    assert all(dict(item.job_details.metadata) == {"site": "north"} for item in listed)
    assert listed[1].job_details.job_name == "job-1"


async def test_the_store_is_read_while_the_stream_is_consumed(harness: Harness) -> None:
    # The history's items take twice the stream's window of bytes, so the producer, which
    # runs at most that window ahead of the consumer, cannot have read the last page yet when
    # the consumer holds only the first item.
    newest = await _history(harness, padding=2 * BusOptions().stream_window_bytes // HISTORY)
    jobs = harness.replicas[0].context.store.collection(JOBS)
    oldest = await jobs.get(newest[-1])
    request = jobs_pb2.JobsListRequest().SerializeToString()
    stream = harness.client.request_stream(
        subjects.SCHEDULER_LIST, request, headers=harness.headers
    )

    async with aclosing(stream):
        head = [await anext(stream)]
        # Older than every job, stored after the List began: only a List that has not read
        # its last page yet can send it.
        late = _unmanaged(oldest)
        late.update(id="f" * 32, created=oldest["created"] - 1)
        await jobs.insert(late)
        rest = [item async for item in stream]

    items = [jobs_pb2.JobsListResponse.FromString(item) for item in [*head, *rest]]
    assert ids(items) == [*newest, "f" * 32]


async def test_small_jobs_travel_in_batches_and_a_large_one_alone(harness: Harness) -> None:
    newest = await _history(harness)
    jobs = harness.replicas[0].context.store.collection(JOBS)
    large = await jobs.get(newest[PAGE_SIZE // 2])
    metadata = [[f"key-{n:03d}", "v" * 256] for n in range(LIST_BATCH_BYTES // 256)]
    await jobs.update(large["id"], {"metadata": metadata})
    queries = JobQueries(JobRepository(harness.replicas[0].context.store), *_UNUSED)
    request = Request(SCHEDULER_LIST, jobs_pb2.JobsListRequest().SerializeToString())

    sent = [message async for message in queries.list_jobs(request)]

    items = [item for message in sent for item in _items(message)]
    listed = [jobs_pb2.JobsListResponse.FromString(item) for item in items]
    assert ids(listed) == newest
    alone = [message for message in sent if not isinstance(message, Batch)]
    assert [jobs_pb2.JobsListResponse.FromString(m).job_details.job_id.value for m in alone] == [
        large["id"]
    ]
    assert all(message.size <= LIST_BATCH_BYTES for message in sent if isinstance(message, Batch))
    # A page of small jobs is a few bus messages, not one per job.
    assert len(sent) < HISTORY // 10


# list_jobs reads the repository only; its logs and events are never asked.
_UNUSED: tuple[Any, Any] = (None, None)


def _items(message: bytes | Batch) -> tuple[bytes, ...]:
    return message.items if isinstance(message, Batch) else (message,)


async def _with_large_job(harness: Harness) -> tuple[JobQueries, str]:
    """A history whose newest job carries `LIST_BATCH_BYTES` of metadata, made a large item."""
    newest = await _history(harness)
    jobs = harness.replicas[0].context.store.collection(JOBS)
    metadata = [[f"key-{n:03d}", "v" * 256] for n in range(LIST_BATCH_BYTES // 256)]
    await jobs.update(newest[0], {"metadata": metadata})
    return JobQueries(JobRepository(harness.replicas[0].context.store), *_UNUSED), newest[0]


def _list_request() -> Request:
    return Request(SCHEDULER_LIST, jobs_pb2.JobsListRequest().SerializeToString())


def _job_id(message: bytes | Batch) -> str:
    assert isinstance(message, bytes)
    return jobs_pb2.JobsListResponse.FromString(message).job_details.job_id.value


async def _two_lists(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, patience: float
) -> tuple[AsyncGenerator[StreamItem, None], AsyncGenerator[StreamItem, None], str]:
    """Two Lists of a history whose newest job is large (past `LARGE_ITEM_BYTES`), each
    waiting up to `patience` seconds for the turn of large items; and that job's id."""
    monkeypatch.setattr(queries_module, "LARGE_ITEM_BYTES", LIST_BATCH_BYTES)
    monkeypatch.setattr(queries_module, "LARGE_ITEM_PATIENCE", patience)
    queries, large = await _with_large_job(harness)
    return queries.list_jobs(_list_request()), queries.list_jobs(_list_request()), large


async def test_concurrent_lists_send_large_items_one_at_a_time(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, large = await _two_lists(harness, monkeypatch, patience=60.0)
    async with aclosing(first), aclosing(second):
        assert _job_id(await anext(first)) == large
        waiting = asyncio.ensure_future(anext(second))
        # The second List can only go on by taking the turn the first holds: however many
        # turns the loop takes, it waits.
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()

        await anext(first)

        assert _job_id(await asyncio.wait_for(waiting, 30.0)) == large


async def test_a_list_sends_its_large_item_once_its_patience_runs_out(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, large = await _two_lists(harness, monkeypatch, patience=0.05)
    async with aclosing(first), aclosing(second):
        assert _job_id(await anext(first)) == large

        # The first List's client stalls holding the turn; the second goes on without it.
        assert _job_id(await asyncio.wait_for(anext(second), 30.0)) == large
