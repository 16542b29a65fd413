"""Jobs.Status, List, ReadLogs, AddMetadata, RemoveMetadata, Aorta's own Timeline and Page,
and which jobs a caller may read (for the monitor): answered by any replica.

Status, List and Page are open to every caller, though List and Page answer a `user` with
its own jobs only and Status a `user` about its own jobs only; ReadLogs, Timeline and the
metadata verbs are the job's owner's or an admin's (`aorta.auth.ownership`). They read the
store (metadata changes write it, with optimistic concurrency), so every replica answers the
same, leader or not; only a running operator's live log lines come from the leader (see `logs`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import replace

from aorta import contracts, wait_reasons
from aorta.api import aorta_jobs_pb2, jobs_pb2
from aorta.auth.ownership import check_owner, check_reader, listed_owner, may_read
from aorta.bus import Request, StreamItem
from aorta.bus.batches import LIST_BATCH_BYTES, batched
from aorta.errors import ErrorCode, NotFound
from aorta.logger import get_logger
from aorta.metadata import add_metadata, remove_metadata
from aorta.store import Document
from aorta_services.scheduler.domain import answers, job_page, list_wire, requests
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.listing import JobListing
from aorta_services.scheduler.domain.states import JobPhase
from aorta_services.scheduler.domain.timeline_answer import timeline
from aorta_services.scheduler.domain.wait_changes import current_waits
from aorta_services.scheduler.domain.wait_privacy import named_jobs, shown_waits
from aorta_services.scheduler.events import JobEvents, job_event, staged
from aorta_services.scheduler.job_logs import OperatorLogs
from aorta_services.scheduler.repository import JobRepository

log = get_logger(__name__)

LARGE_ITEM_BYTES = 1024 * 1024
"""A job with about this much metadata or more (Clara allows 4 MiB) is a large List item."""

LARGE_ITEM_PATIENCE = 5.0
"""How long a List waits for its turn to send a large item before it sends it anyway."""


def owned(record: JobRecord) -> JobRecord:
    """`record`, once the caller is found to own it; `Forbidden` otherwise."""
    check_owner(record.owner, f"job {record.id}")
    return record


class JobQueries:
    """The read verbs and the metadata verbs over one repository."""

    def __init__(self, repository: JobRepository, logs: OperatorLogs, events: JobEvents) -> None:
        self._repository = repository
        self._logs = logs
        self._events = events
        self._large_item = asyncio.Lock()

    async def status(self, request: jobs_pb2.JobsStatusRequest) -> contracts.JobStatus:
        """Jobs.Status (`contracts.SCHEDULER_STATUS`): the job, its operators with their
        times, the DAG and the messages, which end with the reasons the job or its operators
        wait (`aorta.wait_reasons`); with the job's owner, trace id and the typed reasons.
        A viewer's and an admin's about every job, a `user`'s about its own
        (`check_reader`)."""
        record = await self._repository.get(requests.job_id_of(request))
        check_reader(record.owner, f"job {record.id}")
        waits = current_waits(await self._shown_waits(record), time.time())
        response = answers.status(record)
        response.messages.extend(wait_reasons.lines(waits))
        return contracts.JobStatus(
            response,
            record.owner,
            record.trace.trace_id,
            json.dumps(waits, separators=(",", ":")) if waits else "",
            settled=record.phase is JobPhase.CREATED or record.phase.stopped,
        )

    async def readable_jobs(self, request: contracts.JobIds) -> contracts.JobIds:
        """`contracts.SCHEDULER_READABLE_JOBS`: those of the request's jobs whose Status the
        caller may read (`may_read`: a `user`'s own, every one for a viewer or an admin),
        with their owner field alone, in one store query. The monitor asks it for a `user`
        whose Clara.Utilization answer names jobs; a job that is gone is no one's."""
        owners = await self._repository.owners(request.job_ids)
        readable = (job for job in request.job_ids if job in owners and may_read(owners[job]))
        return contracts.JobIds(tuple(readable))

    async def _shown_waits(self, record: JobRecord) -> JobRecord:
        """`record` with its reasons as the caller may see them: a `user` sees other users'
        jobs without their ids (`wait_privacy`), their owners read only when a reason names
        other jobs."""
        viewer = listed_owner()
        if viewer is None or not record.waiting:
            return record
        owners = await self._repository.owners(named_jobs(record.waiting) - {record.id})
        owners[record.id] = record.owner
        return replace(record, waiting=shown_waits(record.waiting, viewer, owners))

    async def timeline(self, request: Request) -> bytes:
        """`aorta.v1.Jobs/Timeline` (`SCHEDULER_TIMELINE`): when each stage of the job the
        `JobsTimelineRequest` names happened; the job's owner's or an admin's."""
        message = requests.parse(request.data, aorta_jobs_pb2.JobsTimelineRequest)
        record = owned(await self._repository.get(requests.job_id_of(message)))
        return timeline(record).SerializeToString()

    async def list_jobs(self, request: Request) -> AsyncGenerator[StreamItem, None]:
        """Jobs.List: one item per job matching the filter, newest first (one item without a
        job when none matches); a `user`'s own jobs only (`listed_owner`).

        Jobs are read from the store a page at a time, the next page only once the bus has
        taken this one's messages, so a List holds one page however many jobs there are. A
        page's items are sent in batches of `LIST_BATCH_BYTES`, each job encoded straight from
        its projected document (`list_wire.stored_item`) only as its batch is filled. A large
        item (`LARGE_ITEM_BYTES`) is sent alone, and in its turn: the Lists of this replica
        send one at a time, from its encoding until the consumer
        has taken it (the bus asks for the next item only then), since each is held several
        times on its way (its document, its encoding, the bus's and gRPC's copies) and
        concurrent Lists walking the same history meet them together. A List waits at most
        `LARGE_ITEM_PATIENCE` for its turn, so one whose client stalls holds up the others'
        large items that long, not for ever."""
        message = requests.parse(request.data, jobs_pb2.JobsListRequest)
        conditions = requests.list_filter(message)
        owner = listed_owner()
        if owner is not None:
            conditions["owner"] = owner
        listed = 0
        pages = self._repository.listed_documents(conditions)
        async with aclosing(pages):
            async for page in pages:
                small: list[Document] = []
                for job in page:
                    if list_wire.stored_metadata_size(job) < LARGE_ITEM_BYTES:
                        small.append(job)
                        continue
                    for item in batched(map(list_wire.stored_item, small), LIST_BATCH_BYTES):
                        yield item
                    small = []
                    async with self._large_item_turn():
                        yield list_wire.stored_item(job)
                for item in batched(map(list_wire.stored_item, small), LIST_BATCH_BYTES):
                    yield item
                listed += len(page)
        if not listed:
            yield answers.empty_list().SerializeToString()

    @asynccontextmanager
    async def _large_item_turn(self) -> AsyncIterator[None]:
        """This List's turn to send a large item, or `LARGE_ITEM_PATIENCE` passed."""
        try:
            async with asyncio.timeout(LARGE_ITEM_PATIENCE):
                await self._large_item.acquire()
        except TimeoutError:
            log.info("jobs.list_large_item_unqueued", waited_s=LARGE_ITEM_PATIENCE)
            yield
            return
        try:
            yield
        finally:
            self._large_item.release()

    async def page(self, request: Request) -> bytes:
        """`aorta.v1.Jobs/Page` (`SCHEDULER_PAGE`): the jobs after the request's cursor that
        match its filters, newest first, read as one store page of the size asked plus one
        (which only tells whether more follow); a `user`'s own jobs only, as for List."""
        message = requests.parse(request.data, aorta_jobs_pb2.JobsPageRequest)
        conditions = job_page.page_filter(message)
        size = job_page.page_size(message)
        after = job_page.decode_cursor(message.cursor)
        owner = listed_owner()
        if owner is not None:
            conditions["owner"] = owner
        listed: list[JobListing] = []
        pages = self._repository.listed(conditions, after=after, page_size=size + 1)
        async with aclosing(pages):
            async for page in pages:
                listed.extend(page)
                if len(listed) > size:
                    break
        return job_page.page_answer(listed, size)

    async def read_logs(self, request: Request) -> AsyncIterator[bytes]:
        """Jobs.ReadLogs: one operator's lines in messages of bounded size (at least one).

        JOB_OPERATOR_NOT_FOUND when the job has no operator by that name (compared
        case-insensitively, as Clara names are).
        """
        message = requests.parse(request.data, jobs_pb2.JobsReadLogsRequest)
        record = await self._repository.get(requests.job_id_of(message))
        check_owner(record.owner, f"job {record.id}")
        if not message.operator_name.strip():
            raise NotFound(
                "name the operator whose logs to read", code=ErrorCode.JOB_OPERATOR_NOT_FOUND
            )
        operator = record.operator(message.operator_name)
        lines = self._logs.lines(record, operator)
        async for chunk in answers.log_messages(record.id, operator.name, lines):
            yield chunk.SerializeToString()

    async def add_metadata(self, request: Request) -> bytes:
        """Jobs.AddMetadata: Clara's rules (`aorta.metadata`); a broken rule changes nothing.
        The change publishes `job.metadata_changed`, as every change of a Status answer does."""
        message = requests.parse(request.data, jobs_pb2.JobsAddMetadataRequest)
        entries = list(message.metadata.items())
        record = await self._repository.modify(
            requests.job_id_of(message),
            staged(
                lambda r: replace(owned(r), metadata=add_metadata(r.metadata, entries)),
                job_event("metadata_changed"),
            ),
        )
        log.info("job.metadata_added", job_id=record.id, keys=len(entries))
        await self._events.flush(record)
        return answers.metadata_added(record)

    async def remove_metadata(self, request: Request) -> bytes:
        """Jobs.RemoveMetadata: keys that are absent are ignored."""
        message = requests.parse(request.data, jobs_pb2.JobsRemoveMetadataRequest)
        keys = list(message.keys)
        record = await self._repository.modify(
            requests.job_id_of(message),
            staged(
                lambda r: replace(owned(r), metadata=remove_metadata(r.metadata, keys)),
                job_event("metadata_changed"),
            ),
        )
        log.info("job.metadata_removed", job_id=record.id, keys=len(keys))
        await self._events.flush(record)
        return answers.metadata_removed(record)
