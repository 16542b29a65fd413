"""The collections of the SQLite state store: one table each, its documents as JSON text.

A `SqliteCollection` turns the `Collection` calls into SQL and runs it through its
`SqliteStateStore` (`aorta.store.sqlite`), which owns the connections, creates the table on
first use and translates SQLite's errors. Filters become SQL over `json_extract`/`json_type`
with every value a bound parameter (`aorta.store.sqlite_sql`).

Updates: one of top-level fields and of elements of top-level lists (`a.3`, which the statement
requires to exist) is one `UPDATE ... SET doc = json_set(doc, ...) WHERE id = ? [AND version
= ?] RETURNING doc`: SQLite applies the change to the stored text, so no read comes first (a
round trip to the reader's thread and a decode fewer on every job change). An update of dotted
paths reads the document, applies the change in Python (which refuses a path through a value
that is not an object) and writes it back with `UPDATE ... WHERE id = ? AND version = ?`.
Either way two writers, in one process or two, cannot both move a document from the same
version.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import msgspec

from aorta.errors import Internal
from aorta.logger import get_logger
from aorta.store import filters, paging, port, updates
from aorta.store.port import Document, Sort
from aorta.store.projection import projection
from aorta.store.sqlite_sql import (
    dumps_value,
    filter_sql,
    in_place,
    in_place_update,
    sort_sql,
    value_sql,
)
from aorta.timestamps import to_iso, utcnow

log = get_logger(__name__)

if TYPE_CHECKING:
    from aorta.store.sqlite import SqliteStateStore

_INDEX_IN_MESSAGE = re.compile(r"index '([^']+)'")


class SqliteCollection:
    """A `Collection` backed by one table of a `SqliteStateStore`."""

    def __init__(self, store: SqliteStateStore, name: str) -> None:
        self.name = name
        self._store = store

    async def insert(self, document: Mapping[str, Any]) -> Document:
        stored = port.new_document(self.name, document, to_iso(utcnow()))
        try:
            await self._store.write(
                self.name,
                f'INSERT INTO "{self.name}" (id, version, doc) VALUES (?, 1, ?)',
                (stored["id"], _dumps(stored)),
            )
        except sqlite3.IntegrityError as error:
            raise self._clash(error, stored["id"]) from error
        return stored

    async def get(self, id: str) -> Document:
        port.check_id(self.name, id)
        rows = await self._store.read(
            self.name, f'SELECT doc FROM "{self.name}" WHERE id = ?', (id,)
        )
        if not rows:
            raise port.not_found(self.name, id)
        return _loads(rows[0][0])

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
        params: list[Any] = []
        where = filter_sql(filters.parse_filter(self.name, filter), params)
        order = sort_sql(filters.parse_sort(self.name, sort))
        port.check_paging(self.name, limit, skip)
        params += [-1 if limit is None else limit, skip]
        if limit == 0:
            return []
        rows = await self._store.read(
            self.name,
            f'SELECT doc FROM "{self.name}" WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?',
            params,
        )
        return [_loads(row[0]) for row in rows]

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
        # Each page is two reads. The first finds the page's ids, exact key values and sizes
        # through `value_sql`, the expression indexes are built on, so an index on the key's
        # fields serves both the range and the order; SQLite seeks an index by a range on its
        # leading column only (not by a row value), hence `first <= a AND (first, ...) <
        # (a, ...)`, and `< x''` keeps numbers and strings only. The second reads those
        # documents and keeps the chosen fields: SQLite runs in this process, and parsing a
        # document's text once here costs less than any JSON function (each call parses the
        # whole document again, milliseconds for a large one; `json_quote` rounds floats).
        parsed = filters.parse_filter(self.name, filter)
        order = paging.check_key(self.name, key)
        rows = paging.check_page_size(self.name, page_size)
        chosen = paging.check_fields(self.name, fields, order)
        last = paging.check_after(self.name, order, after)
        columns = [value_sql(path) for path in order]
        direction, beyond = ("DESC", "<") if descending else ("ASC", ">")
        base: list[Any] = []
        where = filter_sql(parsed, base) + "".join(f" AND {c} < x''" for c in columns)
        keys = f'SELECT id, length(doc), {", ".join(columns)} FROM "{self.name}" WHERE {where}'
        tail = f" ORDER BY {', '.join(f'{c} {direction}' for c in columns)} LIMIT ?"
        following = (
            f" AND {columns[0]} {beyond}= ?"
            f" AND ({', '.join(columns)}) {beyond} ({', '.join('?' * len(columns))})"
        )
        while True:
            bound, params = (following, [*base, last[0], *last]) if last else ("", list(base))
            found = await self._store.read(self.name, keys + bound + tail, [*params, rows])
            if not found:
                return
            held, cut = 0, len(found)
            for index, (_, size, *_) in enumerate(found):
                held += size
                if held >= paging.PAGE_BYTES:
                    cut = index + 1
                    break
            ids = [row[0] for row in found[:cut]]
            documents = await self._documents(ids, chosen)
            page = [documents[id] for id in ids if id in documents]
            last = tuple(found[cut - 1][2:])
            if page:
                yield page
            if len(found) < rows and cut == len(found):
                return

    async def _documents(self, ids: Sequence[str], fields: Sequence[str]) -> dict[str, Document]:
        """The documents `ids` that still exist, whole or with only `fields`, by id."""
        marks = ", ".join("?" * len(ids))
        rows = await self._store.read(
            self.name, f'SELECT id, doc FROM "{self.name}" WHERE id IN ({marks})', ids
        )
        if not fields:
            return {id: _loads(doc) for id, doc in rows}
        project = projection(fields)
        return {id: project(doc) for id, doc in rows}

    async def count(self, filter: Mapping[str, Any] | None = None) -> int:
        params: list[Any] = []
        where = filter_sql(filters.parse_filter(self.name, filter), params)
        rows = await self._store.read(
            self.name, f'SELECT count(*) FROM "{self.name}" WHERE {where}', params
        )
        return int(rows[0][0])

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
        if in_place(checked, removed):
            text = await self._update_in_place(id, expected, checked, removed)
            return _loads(text) if chosen is None else projection(chosen)(text)
        while True:
            current = await self._current(id, expected)
            version = current["version"]
            updates.apply_update(self.name, current, checked, removed)
            current.update(version=version + 1, updated_at=to_iso(utcnow()))
            try:
                changed = await self._store.write(
                    self.name,
                    f'UPDATE "{self.name}" SET version = ?, doc = ? WHERE id = ? AND version = ?',
                    (version + 1, _dumps(current), id, version),
                )
            except sqlite3.IntegrityError as error:
                raise self._clash(error, id) from error
            if changed:
                return current if chosen is None else _only(current, chosen)
            # Another writer moved the document since we read it: judge again on what it is now.

    async def _update_in_place(
        self, id: str, expected: int | None, changes: Document, unset: Sequence[str]
    ) -> str:
        """`update` of top-level fields as one statement that changes the stored JSON where it
        lies and returns its text, so nothing is read first."""
        sql, params = in_place_update(self.name, id, expected, changes, unset)
        while True:
            try:
                rows = await self._store.write_returning(self.name, sql, params)
            except sqlite3.IntegrityError as error:
                raise self._clash(error, id) from error
            if rows:
                return str(rows[0][0])
            # NotFound, or Conflict at another version, or Invalid for an element it lacks.
            updates.apply_update(self.name, await self._current(id, expected), changes, unset)
            # It was created, or deleted and created again, between the two statements.

    async def delete(self, id: str, *, expected_version: int | None = None) -> None:
        port.check_id(self.name, id)
        expected = port.check_version(self.name, expected_version)
        sql = f'DELETE FROM "{self.name}" WHERE id = ?'
        params: list[Any] = [id]
        if expected is not None:
            sql += " AND version = ?"
            params.append(expected)
        while not await self._store.write(self.name, sql, params):
            await self._current(id, expected)
            # It was (re)created between the two statements: try again.

    async def delete_many(self, filter: Mapping[str, Any]) -> int:
        params: list[Any] = []
        where = filter_sql(filters.parse_filter(self.name, filter, none_means_all=False), params)
        return await self._store.write(
            self.name, f'DELETE FROM "{self.name}" WHERE {where}', params
        )

    async def ensure_index(self, fields: Sequence[str], *, unique: bool = False) -> None:
        checked = port.check_index_fields(self.name, fields)
        name = f"{self.name}:{port.index_name(checked, unique)}"
        other = f"{self.name}:{port.index_name(checked, not unique)}"
        rows = await self._store.read(
            self.name, "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (other,)
        )
        if rows:
            raise port.index_kind_conflict(self.name, checked, unique)
        columns = ", ".join(value_sql(field) for field in checked)
        stored = await self._store.read(
            self.name, "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
        )
        if stored and columns not in stored[0][0]:
            # Built by an earlier version on another spelling of the values: the queries,
            # spelled as now, would no longer use it. Once per index, a few seconds for
            # 100,000 jobs, so the log says why that start is slow.
            log.info("store.index_rebuilding", collection=self.name, index=name)
            await self._store.write(self.name, f'DROP INDEX IF EXISTS "{name}"')
        try:
            await self._store.write(
                self.name,
                f'CREATE {"UNIQUE " if unique else ""}INDEX IF NOT EXISTS "{name}" '
                f'ON "{self.name}" ({columns})',
            )
        except sqlite3.IntegrityError as error:
            raise port.index_clash(self.name, checked) from error

    async def _current(self, id: str, expected: int | None) -> Document:
        """The stored document; `NotFound`, or `Conflict` when it is not at `expected`."""
        document = await self.get(id)
        if expected is not None and document["version"] != expected:
            raise port.version_conflict(self.name, id, expected, document["version"])
        return document

    def _clash(self, error: sqlite3.IntegrityError, id: str) -> Exception:
        if error.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY":
            return port.duplicate_id(self.name, id)
        found = _INDEX_IN_MESSAGE.search(str(error))
        if found is None:
            return Internal(f"{self.name}: unexpected integrity error: {error}")
        return port.unique_conflict(self.name, found.group(1).rsplit(":", 1)[1].split(","))


def _dumps(document: Document) -> str:
    return dumps_value(document)


def _only(document: Document, fields: Sequence[str]) -> Document:
    return {field: document[field] for field in fields if field in document}


_DECODER = msgspec.json.Decoder()


def _loads(text: str) -> Document:
    # msgspec builds the same objects as `json.loads`, in about half the time.
    return cast(Document, _DECODER.decode(text))
