"""The `models`, `catalogs` and `instances` collections: the service's records in the store.

Store errors become the Clara model codes a client understands here: an unknown model id is
MODEL_NOT_FOUND naming it, an unknown catalog or instance CATALOG_NOT_FOUND or
INSTANCE_NOT_FOUND, and a change that keeps losing races MODEL_STORE_ERROR.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass

from aorta.api import models_pb2
from aorta.bus import CloudEvent
from aorta.errors import ErrorCode, NotFound
from aorta.ids import ModelId, new_id
from aorta.outbox import OUTBOX_FIELD, staged
from aorta.store import Collection, Document, StateStore, kept_changing, modify_document
from aorta.store.port import version_conflict
from aorta_services.models.domain.model_record import (
    LISTED_FIELDS,
    ModelList,
    ModelRecord,
    listed_details,
)

MODELS = "models"


def model_not_found(id: str) -> NotFound:
    return NotFound(f"no model has id {id}", code=ErrorCode.MODEL_NOT_FOUND)


class ModelRepository:
    """Model records; names are unique (an index enforces it). Safe to use concurrently."""

    def __init__(self, store: StateStore) -> None:
        self._collection: Collection = store.collection(MODELS)

    @property
    def collection(self) -> Collection:
        """The `models` collection, whose documents carry their staged events
        (`aorta.outbox`)."""
        return self._collection

    async def get_document(self, id: ModelId) -> Document | None:
        """The stored document of model `id`, staged events included, if there is one."""
        return await self._collection.find_one({"id": id})

    async def prepare(self) -> None:
        """Creates the unique index on `name` and the one ListModels' pages read
        (idempotent)."""
        await self._collection.ensure_index(["name"], unique=True)
        await self._collection.ensure_index(["name", "id"])

    async def get(self, id: ModelId) -> ModelRecord:
        """The model `id`; `NotFound` (MODEL_NOT_FOUND) when there is none."""
        try:
            return ModelRecord.from_document(await self._collection.get(id))
        except NotFound:
            raise model_not_found(id) from None

    async def by_name(self, name: str) -> ModelRecord | None:
        document = await self._collection.find_one({"name": name})
        return ModelRecord.from_document(document) if document else None

    async def by_names(self, names: Iterable[str]) -> dict[str, ModelRecord]:
        """The models among `names` that exist, by name."""
        wanted = sorted(set(names))
        documents = await self._collection.find({"name": {"$in": wanted}}) if wanted else []
        return {d["name"]: ModelRecord.from_document(d) for d in documents}

    async def by_ids(self, ids: Iterable[str]) -> dict[str, ModelRecord]:
        """The models among `ids` that exist, by id."""
        wanted = sorted(set(ids))
        documents = await self._collection.find({"id": {"$in": wanted}}) if wanted else []
        return {d["id"]: ModelRecord.from_document(d) for d in documents}

    async def listed(self) -> AsyncGenerator[list[models_pb2.ModelDetails], None]:
        """Every model by name, in pages read one at a time (`Collection.pages`): the Clara
        details only, never the archive's bookkeeping."""
        pages = self._collection.pages(key=["name"], fields=LISTED_FIELDS)
        async with aclosing(pages):
            async for page in pages:
                yield [listed_details(document) for document in page]

    async def insert(self, record: ModelRecord, event: CloudEvent) -> ModelRecord:
        """Stores a new model with `event` staged in the same write (`aorta.outbox`);
        `Conflict` when its name (or id) is taken meanwhile."""
        document = await self._collection.insert(staged(record.to_document(), event))
        return ModelRecord.from_document(document)

    async def replace(self, record: ModelRecord, event: CloudEvent) -> ModelRecord:
        """Stores `record` over the model with its id, if that is still at `record.version`,
        with `event` staged in the same write; `Conflict` when it moved on, `NotFound` when
        it is gone."""
        current = await self._collection.get(record.id)
        if current["version"] != record.version:
            raise version_conflict(MODELS, record.id, record.version, current["version"])
        kept = {OUTBOX_FIELD: current.get(OUTBOX_FIELD, [])}
        changes = {**record.to_document(), **staged(kept, event)}
        del changes["id"]
        document = await self._collection.update(
            record.id, changes, expected_version=record.version
        )
        return ModelRecord.from_document(document)

    async def modify(
        self, id: ModelId, change: Callable[[ModelRecord], ModelRecord]
    ) -> ModelRecord:
        """Replaces model `id` with `change(current)` atomically, retrying lost races
        (`aorta.store.modify_document`; MODEL_STORE_ERROR when it keeps losing); `change`
        may raise to refuse (nothing is written)."""

        stored = await modify_document(
            self._collection,
            id,
            lambda document: change(ModelRecord.from_document(document)).to_document(),
            missing=lambda: model_not_found(id),
            gave_up=kept_changing(f"model {id}", code=ErrorCode.MODEL_STORE_ERROR),
        )
        return ModelRecord.from_document(stored)

    async def delete(self, record: ModelRecord) -> None:
        """Removes the model if it is still at `record.version`; `Conflict` if it moved on."""
        try:
            await self._collection.delete(record.id, expected_version=record.version)
        except NotFound:
            raise model_not_found(record.id) from None


@dataclass(frozen=True)
class ListKind:
    """Catalogs or instances: the collection and the words and codes used for them."""

    collection: str
    what: str
    not_found: int


CATALOGS = ListKind("catalogs", "catalog", ErrorCode.CATALOG_NOT_FOUND)
INSTANCES = ListKind("instances", "instance", ErrorCode.INSTANCE_NOT_FOUND)


class ListRepository:
    """Catalog or instance records (see `ListKind`)."""

    def __init__(self, store: StateStore, kind: ListKind) -> None:
        self.kind = kind
        self._collection: Collection = store.collection(kind.collection)

    def not_found(self, id: str) -> NotFound:
        return NotFound(f"no {self.kind.what} has id {id}", code=self.kind.not_found)

    async def create(self) -> ModelList:
        document = await self._collection.insert({"id": new_id(), "model_ids": []})
        return ModelList.from_document(document)

    async def get(self, id: str) -> ModelList:
        try:
            return ModelList.from_document(await self._collection.get(id))
        except NotFound:
            raise self.not_found(id) from None

    async def all(self) -> list[ModelList]:
        """Every record, oldest first."""
        documents = await self._collection.find(sort=[("created_at", 1)])
        return [ModelList.from_document(document) for document in documents]

    async def delete(self, id: str) -> None:
        try:
            await self._collection.delete(id)
        except NotFound:
            raise self.not_found(id) from None

    async def set_models(self, id: str, model_ids: list[ModelId]) -> ModelList:
        """Replaces the record's model ids; `NotFound` when the record is gone."""
        try:
            document = await self._collection.update(id, {"model_ids": list(model_ids)})
        except NotFound:
            raise self.not_found(id) from None
        return ModelList.from_document(document)
