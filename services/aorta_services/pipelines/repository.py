"""The `pipelines` collection, the one place the service reads and writes its state.

Store errors are translated here into the Clara pipeline codes a client understands: an unknown
id is PIPELINE_NOT_FOUND naming the id, an id already taken is PIPELINE_STORE_ERROR, and an
update that keeps losing races is PIPELINE_UPDATE_ERROR.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from aorta.errors import Conflict, ErrorCode, NotFound
from aorta.ids import PipelineId
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

    async def prepare(self) -> None:
        """Creates the index List's pages read (oldest first); idempotent."""
        await self._collection.ensure_index(["created_at", "id"])

    async def get(self, id: PipelineId) -> PipelineRecord:
        """The pipeline `id`; `NotFound` (PIPELINE_NOT_FOUND) when there is none."""
        try:
            return PipelineRecord.from_document(await self._collection.get(id))
        except NotFound:
            raise not_found(id) from None

    async def insert(self, record: PipelineRecord) -> PipelineRecord:
        """Stores a new pipeline; `Conflict` (PIPELINE_STORE_ERROR) when its id is taken."""
        try:
            stored = await self._collection.insert(record.to_document())
        except Conflict:
            raise in_use(record.id) from None
        return PipelineRecord.from_document(stored)

    async def listed(self) -> AsyncGenerator[list[Document], None]:
        """Every pipeline, oldest first, in pages read one at a time (`Collection.pages`),
        each document holding only the id and `LISTED_FIELDS`."""
        pages = self._collection.pages(key=["created_at"], fields=LISTED_FIELDS)
        async with aclosing(pages):
            async for page in pages:
                yield page

    async def delete(self, id: PipelineId) -> PipelineRecord:
        """Removes the pipeline and returns its last state read; `NotFound` when there is none."""
        record = await self.get(id)
        try:
            await self._collection.delete(id)
        except NotFound:
            raise not_found(id) from None
        return record

    async def modify(
        self, id: PipelineId, change: Callable[[PipelineRecord], PipelineRecord]
    ) -> PipelineRecord:
        """Replaces pipeline `id` with `change(current)` as one atomic step.

        `change` may raise to refuse the change; nothing is written then. When another writer
        changes the pipeline between the read and the write, `change` runs again on the new
        state (`aorta.store.modify_document`); when it keeps losing, `Conflict`
        (PIPELINE_UPDATE_ERROR).
        """

        stored = await modify_document(
            self._collection,
            id,
            lambda document: change(PipelineRecord.from_document(document)).to_document(),
            missing=lambda: not_found(id),
            gave_up=kept_changing(f"pipeline {id}", code=ErrorCode.PIPELINE_UPDATE_ERROR),
        )
        return PipelineRecord.from_document(stored)


def in_use(id: str) -> Conflict:
    return Conflict(f"pipeline id {id} is already in use", code=ErrorCode.PIPELINE_STORE_ERROR)
