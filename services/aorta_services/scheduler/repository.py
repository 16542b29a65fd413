"""The `jobs` and `job_definitions` collections: the one place the scheduler reads and writes them.

Store errors become the Clara job codes a client understands: an unknown (or still hidden) job
is JOB_NOT_FOUND naming the id, an id already taken is JOB_STORE_ERROR, a change that keeps
losing races is JOB_STORE_ERROR too. Every write of a job is a read-modify-write with the
version read as `expected_version`, so of two replicas changing one job exactly one wins and
the other re-applies its change to what the winner wrote (or learns it no longer applies).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from aorta.errors import Conflict, ErrorCode, NotFound
from aorta.ids import JobId
from aorta.store import (
    Collection,
    Document,
    StateStore,
    document_turn,
    kept_changing,
    optimistic_update,
)
from aorta.store.paging import PAGE_SIZE
from aorta_services.scheduler.domain import JobPhase, JobState
from aorta_services.scheduler.domain.definition import Definition
from aorta_services.scheduler.domain.definition_cache import DefinitionCache
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.listing import LIST_KEY, LISTED_FIELDS, JobListing

JOBS = "jobs"
DEFINITIONS = "job_definitions"

_STORE_FIELDS = ("id", "version", "created_at", "updated_at")


def not_found(job_id: str) -> NotFound:
    return NotFound(f"no job has id {job_id}", code=ErrorCode.JOB_NOT_FOUND)


class JobRepository:
    """Job records and their definitions; every method is safe to call concurrently."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._jobs: Collection = store.collection(JOBS)
        self._definitions: Collection = store.collection(DEFINITIONS)
        self._known_definitions = DefinitionCache()

    @property
    def jobs(self) -> Collection:
        """The `jobs` collection, whose documents carry their staged events (`outbox`)."""
        return self._jobs

    async def document(self, job_id: JobId) -> Document | None:
        """The stored document of job `job_id`, staged events included, if there is one."""
        return await self._jobs.find_one({"id": job_id})

    async def prepare(self) -> None:
        """Creates the indexes the scheduler's queries use; idempotent."""
        await self._jobs.ensure_index(["phase"])
        await self._jobs.ensure_index(["created"])
        await self._jobs.ensure_index(["released", "state"])
        await self._jobs.ensure_index(["outbox_pending"])
        await self._jobs.ensure_index(["owner", "created"])
        # Jobs.List's pages: a range of these, newest first, whatever the history's length.
        await self._jobs.ensure_index(["visible", "created", "id"])
        await self._jobs.ensure_index(["owner", "visible", "created", "id"])
        # Pages of one state (RUNNING, PENDING): a range of this, not a scan of every stopped
        # job in the history for the few that match.
        await self._jobs.ensure_index(["state", "visible", "created", "id"])
        # The retention sweep's pages: stopped jobs by when they stopped.
        await self._jobs.ensure_index(["state", "released", "stopped", "id"])

    async def insert(self, record: JobRecord, definition: Definition) -> JobRecord:
        """Stores a new job and its definition; `Conflict` (JOB_STORE_ERROR) if the id is taken.

        The definition is written first: a job document never exists without its definition.
        If the job cannot be written, the definition is removed again.
        """
        try:
            await self._definitions.insert(
                {
                    "id": record.id,
                    "root": definition.root,
                    "files": [{"path": p, "content": c} for p, c in definition.files],
                }
            )
        except Conflict:
            raise Conflict(
                f"job id {record.id} is already in use", code=ErrorCode.JOB_STORE_ERROR
            ) from None
        try:
            stored = await self._jobs.insert(record.to_document())
        except BaseException:
            await self._definitions.delete_many({"id": record.id})
            raise
        self._known_definitions.put(record.id, definition)
        return JobRecord.from_document(stored)

    async def remove(self, job_id: JobId) -> None:
        """Deletes a job and its definition (a job whose creation failed); idempotent."""
        self._known_definitions.forget(job_id)
        await self._jobs.delete_many({"id": job_id})
        await self._definitions.delete_many({"id": job_id})

    async def get(self, job_id: JobId, *, hidden: bool = False) -> JobRecord:
        """The job `job_id`; `NotFound` (JOB_NOT_FOUND) when absent or, unless `hidden`, while
        its creation is unfinished."""
        try:
            record = JobRecord.from_document(await self._jobs.get(job_id))
        except NotFound:
            raise not_found(job_id) from None
        if not record.visible and not hidden:
            raise not_found(job_id)
        return record

    async def definition(self, job_id: JobId) -> Definition:
        """The definition job `job_id` was created with (kept once written or read: it never
        changes, `domain.definition_cache`)."""
        known = self._known_definitions.get(job_id)
        if known is not None:
            return known
        try:
            document = await self._definitions.get(job_id)
        except NotFound:
            raise not_found(job_id) from None
        files = tuple((item["path"], item["content"]) for item in document["files"])
        definition = Definition(root=document["root"], files=files)
        self._known_definitions.put(job_id, definition)
        return definition

    async def modify(
        self,
        job_id: JobId,
        change: Callable[[JobRecord], JobRecord],
        *,
        hidden: bool = False,
        known: JobRecord | None = None,
    ) -> JobRecord:
        """Replaces job `job_id` with `change(current)` as one atomic step; returns it.

        `change` is pure and may raise to refuse (nothing is written then). When another
        writer changed the job between the read and the write, `change` runs again on the new
        state (`aorta.store.optimistic_update`); when it keeps losing, `Conflict`
        (JOB_STORE_ERROR). Changes of one job in this process take turns
        (`aorta.store.document_turn`), so only writers in other replicas make it try again.
        Only the stored fields of the record's fields that changed are encoded and written
        (`JobRecord.changes_from`: of the operators, only those that changed), against the
        version the change was made to; the record returned is the changed one at the version
        the store gave it (the only field it returns), so no whole job is encoded or decoded.

        `known`: the caller's latest copy of the job (the leader's), which the first try
        changes instead of reading the job again: the write expects its version, so a copy
        that is no longer the stored one only loses a race, and the change is applied again
        to the job read afresh.
        """
        unread = [known] if known is not None and known.id == job_id else []

        async def current() -> JobRecord:
            if unread:
                copy = unread.pop()
                if copy.visible or hidden:
                    return copy
            try:
                record = JobRecord.from_document(await self._jobs.get(job_id))
            except NotFound:
                raise not_found(job_id) from None
            if not hidden and not record.visible:
                raise not_found(job_id)
            return record

        async def read() -> tuple[JobRecord, JobRecord]:
            before = await current()
            return before, change(before)

        async def write(changed: tuple[JobRecord, JobRecord]) -> JobRecord:
            before, after = changed
            changes = after.changes_from(before)
            if not changes:
                return before
            try:
                stored = await self._jobs.update(
                    job_id, changes, expected_version=before.version, fields=()
                )
            except NotFound:
                raise not_found(job_id) from None
            return replace(after, version=int(stored["version"]))

        async with document_turn(self._jobs, job_id):
            return await optimistic_update(
                read,
                write,
                gave_up=kept_changing(f"job {job_id}", code=ErrorCode.JOB_STORE_ERROR),
            )

    async def in_phase(self, phase: JobPhase) -> list[JobRecord]:
        """Visible jobs in `phase`, in the order they were queued (then by id)."""
        documents = await self._jobs.find(
            {"phase": phase.value, "visible": True}, sort=[("enqueued", 1)]
        )
        return _records(documents)

    async def unreleased(self) -> list[JobRecord]:
        """Stopped jobs whose payload lock or Triton server has not been given back yet."""
        documents = await self._jobs.find(
            {"released": False, "state": int(JobState.STOPPED)}, sort=[("stopped", 1)]
        )
        return _records(documents)

    async def last_admitted(self) -> JobRecord | None:
        """The job admitted most recently (its `rotation` continues the queue's rotation)."""
        documents = await self._jobs.find(
            {"rotation": {"$ne": None}}, sort=[("started", -1)], limit=1
        )
        return JobRecord.from_document(documents[0]) if documents else None

    async def pending_events(self) -> list[tuple[JobId, list[str]]]:
        """The ids of the events staged in each job's outbox, for every job (hidden ones too)
        that holds any, oldest job first: only the outboxes are read, no job is decoded."""
        found: list[tuple[JobId, list[str]]] = []
        pages = self._jobs.pages({"outbox_pending": True}, key=("created",), fields=("outbox",))
        async with aclosing(pages):
            async for page in pages:
                found += [(JobId(d["id"]), [e["id"] for e in d.get("outbox", ())]) for d in page]
        return found

    async def pending_event_count(self) -> int:
        """How many events the outboxes of every job (hidden ones too) hold: only the
        outboxes are read, no job is decoded."""
        total = 0
        pages = self._jobs.pages({"outbox_pending": True}, key=("created",), fields=("outbox",))
        async for page in pages:
            total += sum(len(document.get("outbox", ())) for document in page)
        return total

    async def abandoned_creations(self, older_than: float) -> list[JobRecord]:
        """Jobs whose `Jobs.Create` never finished (hidden) and began before `older_than`."""
        documents = await self._jobs.find(
            {"visible": False, "created": {"$lt": older_than}}, sort=[("created", 1)]
        )
        return _records(documents)

    def released_stopped(self, fields: Sequence[str]) -> AsyncGenerator[list[Document], None]:
        """Visible stopped jobs that gave back what they held (what retention may remove),
        oldest stop first, in pages read one at a time, each document with only `fields`."""
        return self._jobs.pages(
            {"state": int(JobState.STOPPED), "released": True, "visible": True},
            key=("stopped",),
            fields=fields,
        )

    async def owners(self, job_ids: Iterable[str]) -> dict[str, str]:
        """The owner of each of `job_ids` that exists ("" for one without), read with that
        field alone: a job's metadata may weigh megabytes."""
        wanted = sorted(set(job_ids))
        found: dict[str, str] = {}
        if not wanted:
            return found
        pages = self._jobs.pages({"id": {"$in": wanted}}, fields=("owner",))
        async with aclosing(pages):
            async for page in pages:
                found.update((str(d["id"]), str(d.get("owner", ""))) for d in page)
        return found

    async def count(self, *, phase: JobPhase, priority: int | None = None) -> int:
        """How many visible jobs are in `phase` (and of `priority`, when given)."""
        filter: dict[str, Any] = {"phase": phase.value, "visible": True}
        if priority is not None:
            filter["priority"] = int(priority)
        return await self._jobs.count(filter)

    async def listed(
        self,
        filter: Mapping[str, Any],
        *,
        after: tuple[float, str] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncGenerator[list[JobListing], None]:
        """Visible jobs matching a store filter, newest first (after the job whose
        (created, id) is `after`, when given), in pages of up to `page_size` read one at a time
        (`Collection.pages`), each job with only what a List item needs."""
        pages = self.listed_documents(filter, after=after, page_size=page_size)
        async with aclosing(pages):
            async for page in pages:
                yield [JobListing.from_document(document) for document in page]

    def listed_documents(
        self,
        filter: Mapping[str, Any],
        *,
        after: tuple[float, str] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncGenerator[list[Document], None]:
        """`listed`'s pages as the projected documents (`LISTED_FIELDS`), for a caller that
        encodes them straight away (`list_wire.stored_item`)."""
        return self._jobs.pages(
            {**filter, "visible": True},
            key=LIST_KEY,
            descending=True,
            fields=LISTED_FIELDS,
            page_size=page_size,
            after=after,
        )


def _records(documents: Sequence[Document]) -> list[JobRecord]:
    return [JobRecord.from_document(document) for document in documents]
