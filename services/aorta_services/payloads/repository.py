"""The `payloads` and `payload_files` collections: the one place the service keeps its state.

Store errors are translated here into the Clara payload codes a client understands: an unknown
id is PAYLOAD_NOT_FOUND, an id or a job that already has a payload is PAYLOAD_STORE_ERROR, and
an update that keeps losing races is PAYLOAD_STORE_ERROR too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable

from aorta.bus import CloudEvent
from aorta.errors import Conflict, ErrorCode, NotFound
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


class PayloadRepository:
    """Payload and file records in the state store; every method is safe to call concurrently."""

    def __init__(self, store: StateStore) -> None:
        self._payloads: Collection = store.collection(PAYLOADS)
        self._files: Collection = store.collection(FILES)

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
            return await self._payloads.insert(staged(record.to_document(), event))
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
    ) -> Document:
        """`modify`, with the `event` of the changed record staged in the same write
        (`aorta.outbox`); returns the stored document, for the outbox to publish."""
        return await self._modify(id, staging_record(PayloadRecord.from_document, change, event))

    async def _modify(self, id: PayloadId, change: Callable[[Document], Document]) -> Document:
        return await modify_document(
            self._payloads,
            id,
            change,
            missing=lambda: payload_not_found(id),
            gave_up=kept_changing(f"payload {id}", code=ErrorCode.PAYLOAD_STORE_ERROR),
        )

    async def delete(self, id: PayloadId) -> None:
        """Removes the payload record; an absent one is fine (a retried Delete)."""
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
