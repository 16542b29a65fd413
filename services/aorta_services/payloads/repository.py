"""The `payloads` and `payload_files` collections: the one place the service keeps its state.

Store errors are translated here into the Clara payload codes a client understands: an unknown
id is PAYLOAD_NOT_FOUND, an id or a job that already has a payload is PAYLOAD_STORE_ERROR, and
an update that keeps losing races is PAYLOAD_STORE_ERROR too.

The repository keeps the payload documents it wrote last (`REMEMBERED` of them, least recently
written first out): a change of one starts from that copy, without reading it, and expects its
version as any change does, so a copy that another replica's write made stale only loses that
race and the change is made again on the document read afresh. A change the copy refuses, or
finds nothing to change in, is judged again on a fresh read: a stale copy never refuses.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from collections.abc import Set as AbstractSet

from aorta.bus import CloudEvent
from aorta.errors import AortaError, Conflict, ErrorCode, NotFound
from aorta.ids import JobId, PayloadId
from aorta.outbox import staged, staging_record
from aorta.store import (
    Collection,
    Document,
    StateStore,
    kept_changing,
    modify_document,
    optimistic_update,
)
from aorta_services.payloads.domain import (
    FileRecord,
    PayloadRecord,
    file_document_id,
    payload_not_found,
)

PAYLOADS = "payloads"
FILES = "payload_files"

REMEMBERED = 4096
"""How many payload documents the repository keeps as it wrote them (module docstring): a
job's lock and release start from the copy its Create or lock left. A few KiB each."""


class _Refused(Exception):
    """A change refused the remembered copy of a document: judged again on a fresh read."""


class PayloadRepository:
    """Payload and file records in the state store; every method is safe to call concurrently."""

    def __init__(self, store: StateStore, *, remembered: int = REMEMBERED) -> None:
        self._payloads: Collection = store.collection(PAYLOADS)
        self._files: Collection = store.collection(FILES)
        self._remembered = remembered
        self._written: OrderedDict[str, Document] = OrderedDict()

    @property
    def payloads(self) -> Collection:
        """The `payloads` collection, whose documents carry their staged events
        (`aorta.outbox`)."""
        return self._payloads

    @property
    def file_records(self) -> Collection:
        """The `payload_files` collection (events about files are staged apart)."""
        return self._files

    async def prepare(self) -> None:
        """Creates the indexes: one PIPELINE payload per job, file records by payload."""
        await self._payloads.ensure_index(["job_id"], unique=True)
        await self._files.ensure_index(["payload_id"])
        # Details reads a payload's records in name order, a page at a time.
        await self._files.ensure_index(["payload_id", "name", "id"])

    async def get(self, id: PayloadId) -> PayloadRecord:
        """The payload `id`, even while it is being deleted; `NotFound` (PAYLOAD_NOT_FOUND)."""
        try:
            return PayloadRecord.from_document(await self._payloads.get(id))
        except NotFound:
            raise payload_not_found(id) from None

    async def get_present(self, id: PayloadId) -> PayloadRecord:
        """The payload `id` unless it is absent or being deleted (PAYLOAD_NOT_FOUND then)."""
        record = await self.get(id)
        record.check_present()
        return record

    async def find_for_job(self, job_id: JobId) -> PayloadRecord | None:
        """The PIPELINE payload of job `job_id`, if it has one."""
        document = await self._payloads.find_one({"job_id": job_id})
        return PayloadRecord.from_document(document) if document else None

    async def get_document(self, id: PayloadId) -> Document | None:
        """The stored document of payload `id`, staged events included, if there is one."""
        return await self._payloads.find_one({"id": id})

    async def insert(self, record: PayloadRecord, event: CloudEvent) -> Document:
        """Stores a new payload with `event` staged in the same write (`aorta.outbox`) and
        returns the stored document; `Conflict` (PAYLOAD_STORE_ERROR) when its id or its job's
        payload exists already."""
        try:
            return self.remember(await self._payloads.insert(staged(record.to_document(), event)))
        except Conflict:
            owner = f" or job {record.job_id} already has a payload" if record.job_id else ""
            raise Conflict(
                f"payload id {record.id} is already in use{owner}",
                code=ErrorCode.PAYLOAD_STORE_ERROR,
            ) from None

    async def modify(
        self, id: PayloadId, change: Callable[[PayloadRecord], PayloadRecord]
    ) -> PayloadRecord:
        """Replaces payload `id` with `change(current)` as one atomic step.

        `change` may raise to refuse; nothing is written then. When another writer changed the
        payload between the read and the write, `change` runs again on the new state
        (`aorta.store.modify_document`); when it keeps losing, `Conflict` (PAYLOAD_STORE_ERROR).
        """
        return PayloadRecord.from_document(await self._modify(id, _changed(change)))

    async def modify_staged(
        self,
        id: PayloadId,
        change: Callable[[PayloadRecord], PayloadRecord],
        event: Callable[[PayloadRecord], CloudEvent],
        *,
        published: AbstractSet[str] = frozenset(),
    ) -> Document:
        """`modify`, with the `event` of the changed record staged in the same write
        (`aorta.outbox`) and the `published` events (`Outbox.left`) removed; returns the
        stored document, for the outbox to publish."""
        staging = staging_record(PayloadRecord.from_document, change, event, published=published)
        return await self._modify(id, staging)

    def remember(self, document: Document) -> Document:
        """Keeps `document`, as stored, for the next change of its payload (module docstring),
        unless a later version is kept already; returns it."""
        id = document["id"]
        kept = self._written.get(id)
        if kept is None or kept["version"] <= document["version"]:
            self._written[id] = document
            self._written.move_to_end(id)
            if len(self._written) > self._remembered:
                self._written.popitem(last=False)
        return document

    async def _modify(self, id: PayloadId, change: Callable[[Document], Document]) -> Document:
        known = self._written.get(id)
        if known is not None:
            try:
                stored = await self._modify_from(id, _refusing(change, known), known)
            except _Refused:
                stored = known
            if stored is not known:
                return self.remember(stored)
        return self.remember(await self._modify_from(id, change, None))

    async def _modify_from(
        self, id: PayloadId, change: Callable[[Document], Document], known: Document | None
    ) -> Document:
        unread = [known] if known is not None else []

        async def read() -> Document:
            return unread.pop() if unread else await self._payloads.get(id)

        return await modify_document(
            self._payloads,
            id,
            change,
            missing=lambda: payload_not_found(id),
            gave_up=kept_changing(f"payload {id}", code=ErrorCode.PAYLOAD_STORE_ERROR),
            read=read,
        )

    async def delete(self, id: PayloadId) -> None:
        """Removes the payload record; an absent one is fine (a retried Delete)."""
        self._written.pop(id, None)
        with contextlib.suppress(NotFound):
            await self._payloads.delete(id)

    async def files(self, payload_id: PayloadId) -> dict[str, FileRecord]:
        """Every file record of the payload, by name."""
        documents = await self._files.find({"payload_id": payload_id})
        records = (FileRecord.from_document(document) for document in documents)
        return {record.name: record for record in records}

    async def file_pages(self, payload_id: PayloadId) -> AsyncGenerator[list[FileRecord], None]:
        """The payload's file records in name order, in pages read one at a time
        (`Collection.pages`), so a payload of many files is never held whole."""
        pages = self._files.pages({"payload_id": payload_id}, key=("name",))
        async with contextlib.aclosing(pages):
            async for page in pages:
                yield [FileRecord.from_document(document) for document in page]

    async def file(self, payload_id: PayloadId, name: str) -> FileRecord | None:
        """The record of one file, if there is one."""
        try:
            document = await self._files.get(file_document_id(payload_id, name))
        except NotFound:
            return None
        return FileRecord.from_document(document)

    async def record_file(self, record: FileRecord) -> None:
        """Stores `record`, replacing the one of the same payload and name (last writer wins)."""
        document = record.to_document()
        changes = {key: value for key, value in document.items() if key != "id"}

        async def update() -> bool:
            try:
                await self._files.update(record.document_id, changes)
            except NotFound:
                return False
            return True

        async def insert_unless_updated(updated: bool) -> None:
            # A Conflict here means a concurrent upload of the same name inserted the record
            # first: the next try updates it instead.
            if not updated:
                await self._files.insert(document)

        def busy() -> Conflict:
            return Conflict(
                f"the record of {record.name!r} in payload {record.payload_id} kept changing; "
                "upload it again",
                code=ErrorCode.PAYLOAD_STORE_ERROR,
            )

        await optimistic_update(update, insert_unless_updated, gave_up=busy)

    async def forget_file(self, payload_id: PayloadId, name: str) -> None:
        """Removes the record of one file; an absent one is fine."""
        with contextlib.suppress(NotFound):
            await self._files.delete(file_document_id(payload_id, name))

    async def forget_files(self, payload_id: PayloadId) -> int:
        """Removes every file record of the payload; returns how many."""
        return await self._files.delete_many({"payload_id": payload_id})


def _changed(change: Callable[[PayloadRecord], PayloadRecord]) -> Callable[[Document], Document]:
    return lambda document: change(PayloadRecord.from_document(document)).to_document()


def _refusing(
    change: Callable[[Document], Document], known: Document
) -> Callable[[Document], Document]:
    """`change`, raising `_Refused` where it refuses the remembered copy `known`."""

    def changed(document: Document) -> Document:
        if document is not known:
            return change(document)
        try:
            return change(document)
        except AortaError as refusal:
            raise _Refused from refusal

    return changed
