"""The SQLite state store: one database file, the embedded platform's default.

Each collection is a table `(id TEXT PRIMARY KEY, version INTEGER, doc TEXT)` holding the whole
document as JSON in `doc`; `aorta.store.sqlite_collection` turns the collection calls into SQL
(and says how an update is one statement), `aorta.store.sqlite_sql` writes the filters (and
says how JSON's types are kept apart and why the indexes serve the queries).

Concurrency: the file is in WAL mode; a store holds one connection for writes and one for
reads, each with its own thread, so reads never wait behind a write that waits for another
process's lock (`busy_timeout`), and see only committed writes. Writes run in group commits
(`aorta.store.sqlite_writer`): a lone write commits at once, and the writes that queue behind a
running commit share the next transaction, each caller answered after that commit with its own
statement's result or error. `synchronous=FULL` by default: a write a caller saw succeed
survives a power cut, not only a crash.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from aorta.errors import Internal, Unavailable
from aorta.store import port
from aorta.store.sqlite_collection import SqliteCollection
from aorta.store.sqlite_writer import SqliteWriter, WriterClosed


class SqliteStateStore:
    """The `StateStore` over one SQLite file; build it with `await SqliteStateStore.open(path)`."""

    def __init__(self, path: Path, writer: SqliteWriter, reader: aiosqlite.Connection) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._collections: dict[str, SqliteCollection] = {}
        self._tables: set[str] = set()
        self._closed = False

    @classmethod
    async def open(
        cls, path: str | Path, *, busy_timeout: float = 10.0, durable: bool = True
    ) -> SqliteStateStore:
        """Opens (creating if needed) the database file at `path`; its folder must exist.

        `busy_timeout` (seconds) is how long a statement waits for another process's lock
        before the call fails with `Unavailable`. `durable=False` (`synchronous=NORMAL`, for
        tests and scratch data) makes writes ~8x faster, but a power cut may lose the last
        commits; a crash of the process never does. `Unavailable` when the file cannot be opened.
        """
        path = Path(path)
        try:
            # The writer's plain connection first: aiosqlite leaves a stray callback behind
            # when its own connect fails.
            writer = SqliteWriter(await asyncio.to_thread(_connect, path, busy_timeout, durable))
        except sqlite3.Error as error:
            raise Unavailable(f"state store {path} cannot be opened: {error}") from error
        reader: aiosqlite.Connection | None = None
        try:
            reader = await aiosqlite.connect(path, isolation_level=None)
            await reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        except BaseException as error:
            if reader is not None:
                await reader.close()
            await writer.close()
            if isinstance(error, sqlite3.Error):
                raise Unavailable(f"state store {path} cannot be opened: {error}") from error
            raise
        return cls(path, writer, reader)

    def collection(self, name: str) -> SqliteCollection:
        """The collection `name`; its table is created on first use."""
        existing = self._collections.get(name)
        if existing is None:
            existing = SqliteCollection(self, port.check_collection_name(name))
            self._collections[name] = existing
        return existing

    async def close(self) -> None:
        """Closes both connections; idempotent. Calls still queued complete first."""
        if self._closed:
            return
        self._closed = True
        await self._writer.close()
        await self._reader.close()

    async def write(self, collection: str, sql: str, params: Sequence[Any] = ()) -> int:
        """Runs one statement in the writer's next group commit; returns the rows it changed
        once that commit is durable.

        `sqlite3.IntegrityError` passes through for the caller to explain; other SQLite errors
        become `Unavailable` (busy, locked) or `Internal`.
        """
        await self._ready(collection)
        try:
            return int(await self._writer.execute(sql, params))
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as error:
            raise self._translate(error) from error

    async def write_returning(
        self, collection: str, sql: str, params: Sequence[Any] = ()
    ) -> list[Any]:
        """Runs one statement with a `RETURNING` clause as `write` does; returns its rows (none
        when it changed nothing). Errors as `write`."""
        await self._ready(collection)
        try:
            return list(await self._writer.execute(sql, params, returning=True))
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as error:
            raise self._translate(error) from error

    async def read(self, collection: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one query on the reader connection (it sees every committed write).

        `Unavailable` once `close` has begun, also for a read that was making its table then:
        a query is handed to the reader only while the store is open, with no await between
        the check and aiosqlite queueing it, so it runs before the reader's close, never
        against a closed connection (aiosqlite's `ValueError`, sqlite3's `ProgrammingError`).
        """
        await self._ready(collection)
        self._check_open()
        try:
            return list(await self._reader.execute_fetchall(sql, params))
        except sqlite3.Error as error:
            raise self._translate(error) from error

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable(f"state store {self.path} is closed")

    async def _ready(self, collection: str) -> None:
        self._check_open()
        if collection in self._tables:
            return
        try:
            await self._writer.execute(
                f'CREATE TABLE IF NOT EXISTS "{collection}" '
                "(id TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL)"
            )
        except sqlite3.Error as error:
            raise self._translate(error) from error
        self._tables.add(collection)

    def _translate(self, error: sqlite3.Error) -> Exception:
        if isinstance(error, WriterClosed):  # a call that was under way when `close` came
            return Unavailable(f"state store {self.path} is closed")
        if error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return Unavailable(f"state store {self.path} is busy: another writer holds it")
        return Internal(f"state store {self.path} failed: {error}")


def _connect(path: Path, busy_timeout: float, durable: bool) -> sqlite3.Connection:
    """The writer's connection, the file put in WAL mode (a persistent setting); `Unavailable`
    where SQLite cannot."""
    connection = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode != "wal":
            raise Unavailable(f"state store {path}: SQLite cannot use WAL mode on this file")
        connection.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    except BaseException:
        connection.close()
        raise
    return connection
