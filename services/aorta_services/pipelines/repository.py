"""The `pipelines` collection, the one place the service reads and writes its state.

Store errors are translated here into the Clara pipeline codes a client understands: an unknown
id is PIPELINE_NOT_FOUND naming the id, an id already taken is PIPELINE_STORE_ERROR, and an
update that keeps losing races is PIPELINE_UPDATE_ERROR.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from aorta.bus import CloudEvent
from aorta.errors import Conflict, ErrorCode, NotFound
from aorta.ids import PipelineId
from aorta.outbox import staged, staging_record
from aorta.store import Collection, Document, StateStore, kept_changing, modify_document
from aorta_services.pipelines.domain import PipelineRecord

COLLECTION = "pipelines"
LISTED_FIELDS = ("name", "metadata")
"""What a List item carries besides the id: never the definition files."""


def not_found(id: str) -> NotFound:
    return NotFound(f"no pipeline has id {id}", code=ErrorCode.PIPELINE_NOT_FOUND)


class PipelineRepository:
    """Pipeline records in the state store; every method is safe to call concurrently."""

    def __init__(self, store: StateStore) -> None:
        self._collection: Collection = store.collection(COLLECTION)

    @property
    def collection(self) -> Collection:
        """The `pipelines` collection, whose documents carry their staged events
        (`aorta.outbox`)."""
        return self._collection

    async def prepare(self) -> None:
        """Creates the index List's pages read (oldest first); idempotent."""
        await self._collection.ensure_index(["created_at", "id"])

    async def get(self, id: PipelineId) -> PipelineRecord:
        """The pipeline `id`; `NotFound` (PIPELINE_NOT_FOUND) when there is none."""
        try:
            return PipelineRecord.from_document(await self._collection.get(id))
        except NotFound:
            raise not_found(id) from None

    async def insert(self, record: PipelineRecord, event: CloudEvent) -> Document:
        """Stores a new pipeline with `event` staged in the same write (`aorta.outbox`) and
        returns the stored document; `Conflict` (PIPELINE_STORE_ERROR) when its id is taken."""
        try:
            return await self._collection.insert(staged(record.to_document(), event))
        except Conflict:
            raise in_use(record.id) from None

    async def listed(self) -> AsyncGenerator[list[Document], None]:
        """Every pipeline, oldest first, in pages read one at a time (`Collection.pages`),
        each document holding only the id and `LISTED_FIELDS`."""
        pages = self._collection.pages(key=["created_at"], fields=LISTED_FIELDS)
        async with aclosing(pages):
            async for page in pages:
                yield page

    async def get_document(self, id: PipelineId) -> Document:
        """The stored document of pipeline `id`, staged events included; `NotFound`
        (PIPELINE_NOT_FOUND) when there is none."""
        try:
            return await self._collection.get(id)
        except NotFound:
            raise not_found(id) from None

    async def delete(self, document: Document) -> None:
        """Removes the pipeline `document` read, if still at the version read: `NotFound` when
        it is gone already, `Conflict` (PIPELINE_UPDATE_ERROR) when it changed meanwhile."""
        id = str(document["id"])
        try:
            await self._collection.delete(id, expected_version=document["version"])
        except NotFound:
            raise not_found(id) from None
        except Conflict:
            raise Conflict(
                f"pipeline {id} changed while being removed; try again",
                code=ErrorCode.PIPELINE_UPDATE_ERROR,
            ) from None

    async def modify(
        self,
        id: PipelineId,
        change: Callable[[PipelineRecord], PipelineRecord],
        event: Callable[[PipelineRecord], CloudEvent],
    ) -> Document:
        """Replaces pipeline `id` with `change(current)` as one atomic step, with the `event`
        of the changed record staged in the same write (`aorta.outbox`); returns the stored
        document.

        `change` may raise to refuse the change; nothing is written then. When another writer
        changes the pipeline between the read and the write, `change` runs again on the new
        state (`aorta.store.modify_document`); when it keeps losing, `Conflict`
        (PIPELINE_UPDATE_ERROR).
        """

        return await modify_document(
            self._collection,
            id,
            staging_record(PipelineRecord.from_document, change, event),
            missing=lambda: not_found(id),
            gave_up=kept_changing(f"pipeline {id}", code=ErrorCode.PIPELINE_UPDATE_ERROR),
        )


def in_use(id: str) -> Conflict:
    return Conflict(f"pipeline id {id} is already in use", code=ErrorCode.PIPELINE_STORE_ERROR)
