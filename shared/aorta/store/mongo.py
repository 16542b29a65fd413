"""The MongoDB state store (motor): the production adapter.

A document is stored with its id as `_id` (the `id` field is not repeated) and read back with
`id` restored. Filters are translated from the parsed tree of `aorta.store.filters` so that the
server computes the same answer as the reference evaluator (`aorta.store.mongo_query`, which
says how). Updates are `find_one_and_update` on `{_id, version}` with `$set`/`$unset`/`$inc`
and the guards that make `$set` do what the port promises, so a version check and the write
are one atomic server operation.

The client is injected (`MongoStateStore(client, database)`): anything motor-compatible,
`mongomock_motor.AsyncMongoMockClient` included; `MongoStateStore.connect(url, database)`
builds and owns a motor client.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from bson.int64 import Int64
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import ReturnDocument
from pymongo.errors import ConfigurationError, ConnectionFailure, DuplicateKeyError, PyMongoError

from aorta.errors import AortaError, Internal, Invalid, Unavailable
from aorta.store import paging, port, updates
from aorta.store.filters import AllOf, parse_filter, parse_sort
from aorta.store.mongo_query import (
    all_of,
    field_path,
    filter_query,
    number_or_string,
    update_guards,
)
from aorta.store.port import Document, Sort
from aorta.timestamps import to_iso, utcnow

_DATABASE = re.compile(r"[A-Za-z0-9_-]{1,63}")


def check_database_name(name: str) -> str:
    """`name` if MongoDB accepts it as a database name; `Invalid` otherwise."""
    if not isinstance(name, str) or not _DATABASE.fullmatch(name):
        raise Invalid(
            f"MongoDB database name {name!r} is not valid: use 1 to 63 letters, digits, _ or -"
        )
    return name


def _plain(value: Any) -> Any:
    """`value` with BSON's `Int64` turned back into `int`, so ints read back exactly."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Int64):
        return int(value)
    return value


def _from_mongo(raw: Mapping[str, Any]) -> Document:
    document = _plain(dict(raw))
    return {"id": document.pop("_id"), **document}


def _to_mongo(document: Document) -> Document:
    stored = dict(document)
    return {"_id": stored.pop("id"), **stored}


class MongoStateStore:
    """The `StateStore` over one MongoDB database.

    `client` is a motor `AsyncIOMotorClient` or anything with its interface. `owns_client`:
    whether `close` closes it.
    """

    def __init__(self, client: Any, database: str, *, owns_client: bool = False) -> None:
        self._client = client
        self._database = client[check_database_name(database)]
        self._owns_client = owns_client
        self._collections: dict[str, MongoCollection] = {}
        self._closed = False

    @classmethod
    def connect(cls, url: str, database: str) -> MongoStateStore:
        """A store over a new motor client for `url`; it connects on first use.

        `Invalid` when `url` cannot be parsed; the message never repeats the URL, which may
        hold a password.
        """
        check_database_name(database)
        try:
            client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(url)
        except (ConfigurationError, ValueError) as error:
            raise Invalid(f"the MongoDB URL is not valid ({type(error).__name__})") from None
        return cls(client, database, owns_client=True)

    def collection(self, name: str) -> MongoCollection:
        existing = self._collections.get(name)
        if existing is None:
            checked = port.check_collection_name(name)
            existing = MongoCollection(self, checked, self._database[checked])
            self._collections[name] = existing
        return existing

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            self._client.close()


class MongoCollection:
    """A `Collection` backed by one MongoDB collection."""

    def __init__(self, store: MongoStateStore, name: str, collection: Any) -> None:
        self.name = name
        self._store = store
        self._collection = collection

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turns driver errors into `aorta.errors` (duplicate keys are handled by callers)."""
        if self._store.closed:
            raise Unavailable(f"state store for {self.name} is closed")
        try:
            yield
        except DuplicateKeyError:
            raise
        except ConnectionFailure as error:
            raise Unavailable(f"{self.name}: MongoDB is unreachable: {error}") from error
        except PyMongoError as error:
            raise Internal(f"{self.name}: MongoDB failed: {error}") from error

    async def insert(self, document: Mapping[str, Any]) -> Document:
        stored = port.new_document(self.name, document, to_iso(utcnow()))
        try:
            with self._errors():
                await self._collection.insert_one(_to_mongo(stored))
        except DuplicateKeyError as error:
            raise self._clash(error, stored["id"]) from error
        return stored

    async def get(self, id: str) -> Document:
        port.check_id(self.name, id)
        with self._errors():
            raw = await self._collection.find_one({"_id": id})
        if raw is None:
            raise port.not_found(self.name, id)
        return _from_mongo(raw)

    async def find_one(self, filter: Mapping[str, Any]) -> Document | None:
        found = await self.find(filter, limit=1)
        return found[0] if found else None

    async def find(
        self,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: Sort | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Document]:
        query = filter_query(parse_filter(self.name, filter))
        order = [(field_path(path), direction) for path, direction in parse_sort(self.name, sort)]
        if all(field != "_id" for field, _ in order):
            order.append(("_id", 1))
        port.check_paging(self.name, limit, skip)
        if limit == 0:
            return []
        with self._errors():
            # MongoDB reads a limit of 0 as "no limit".
            cursor = self._collection.find(query, sort=order, skip=skip, limit=limit or 0)
            return [_from_mongo(raw) for raw in await cursor.to_list(None)]

    async def pages(
        self,
        filter: Mapping[str, Any] | None = None,
        *,
        key: Sequence[str] = (),
        descending: bool = False,
        fields: Sequence[str] | None = None,
        page_size: int = paging.PAGE_SIZE,
        after: Sequence[Any] | None = None,
    ) -> AsyncGenerator[list[Document], None]:
        parsed = parse_filter(self.name, filter)
        order = paging.check_key(self.name, key)
        rows = paging.check_page_size(self.name, page_size)
        chosen = paging.check_fields(self.name, fields, order)
        last = paging.check_after(self.name, order, after)
        direction = -1 if descending else 1
        sort = [(field_path(path), direction) for path in order]
        projection = {field_path(field): 1 for field in chosen} or None
        # Only numbers or strings in the key, as SQLite lists them (`aorta.store.paging`).
        keyed = [number_or_string(path) for path in order]
        while True:
            node = (
                parsed
                if not last
                else AllOf((parsed, paging.continuation(order, last, descending)))
            )
            query = all_of([filter_query(node), *keyed])
            page: list[Document] = []
            held = 0
            with self._errors():
                # Small batches, so a page of large documents stops early: the rest of the
                # cursor is never fetched.
                cursor = self._collection.find(
                    query, projection, sort=sort, limit=rows, batch_size=min(rows, 16)
                )
                try:
                    async for raw in cursor:
                        page.append(_from_mongo(raw))
                        held += paging.page_bytes(page[-1])
                        if held >= paging.PAGE_BYTES:
                            break
                finally:
                    await cursor.close()
            if not page:
                return
            last = paging.key_of(page[-1], order)
            yield page
            if len(page) < rows and held < paging.PAGE_BYTES:
                return

    async def count(self, filter: Mapping[str, Any] | None = None) -> int:
        query = filter_query(parse_filter(self.name, filter))
        with self._errors():
            return int(await self._collection.count_documents(query))

    async def update(
        self,
        id: str,
        changes: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        unset: Sequence[str] = (),
        fields: Sequence[str] | None = None,
    ) -> Document:
        expected, checked, removed, chosen = updates.checked_arguments(
            self.name, id, changes, expected_version, unset, fields
        )
        returned = None if chosen is None else {field_path(field): 1 for field in chosen}
        query: Document = {"_id": id}
        if expected is not None:
            query["version"] = expected
        # Every path must be one the update can take (`update_guards`); a miss is explained below.
        viable = [condition for path in checked for condition in update_guards(path)]
        if viable:
            query = {"$and": [query, *viable]}
        change: Document = {
            "$set": {**checked, "updated_at": to_iso(utcnow())},
            "$inc": {"version": 1},
        }
        if removed:
            change["$unset"] = {path: "" for path in removed}
        while True:
            try:
                with self._errors():
                    raw = await self._collection.find_one_and_update(
                        query, change, returned, return_document=ReturnDocument.AFTER
                    )
            except DuplicateKeyError as error:
                raise self._clash(error, id) from error
            if raw is not None:
                return _from_mongo(raw)
            current = await self.get(id)
            if expected is not None and current["version"] != expected:
                raise port.version_conflict(self.name, id, expected, current["version"])
            updates.apply_update(self.name, current, checked, removed)
            # The document changed between the two calls and would now take the update.

    async def delete(self, id: str, *, expected_version: int | None = None) -> None:
        port.check_id(self.name, id)
        expected = port.check_version(self.name, expected_version)
        query: Document = {"_id": id}
        if expected is not None:
            query["version"] = expected
        while True:
            with self._errors():
                result = await self._collection.delete_one(query)
            if result.deleted_count:
                return
            current = await self.get(id)
            if expected is not None and current["version"] != expected:
                raise port.version_conflict(self.name, id, expected, current["version"])
            # It was (re)created between the two calls: try again.

    async def delete_many(self, filter: Mapping[str, Any]) -> int:
        query = filter_query(parse_filter(self.name, filter, none_means_all=False))
        with self._errors():
            result = await self._collection.delete_many(query)
        return int(result.deleted_count)

    async def ensure_index(self, fields: Sequence[str], *, unique: bool = False) -> None:
        checked = port.check_index_fields(self.name, fields)
        with self._errors():
            existing = await self._collection.index_information()
        if port.index_name(checked, not unique) in existing:
            raise port.index_kind_conflict(self.name, checked, unique)
        options: Document = {"name": port.index_name(checked, unique)}
        if unique:
            # Documents missing a field stay out of the index, as SQLite leaves NULLs unconstrained.
            options["unique"] = True
            options["partialFilterExpression"] = {field_path(f): {"$exists": True} for f in checked}
        try:
            with self._errors():
                await self._collection.create_index(
                    [(field_path(f), 1) for f in checked], **options
                )
        except DuplicateKeyError as error:
            raise port.index_clash(self.name, checked) from error

    def _clash(self, error: DuplicateKeyError, id: str) -> AortaError:
        pattern = (error.details or {}).get("keyPattern") or {"_id": 1}
        fields = ["id" if key == "_id" else key for key in pattern]
        if fields == ["id"]:
            return port.duplicate_id(self.name, id)
        return port.unique_conflict(self.name, fields)
