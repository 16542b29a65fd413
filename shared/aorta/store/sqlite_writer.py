"""Group commit for the SQLite state store: one writer thread, one transaction per batch.

With `synchronous=FULL` every commit costs an `fdatasync` of the WAL, so a store whose writes
each commit alone pays one per write: about twenty per started job. The writer runs every write
on its own thread and plain `sqlite3` connection. It takes the first write waiting, then every
write that queued behind it (up to `MAX_STATEMENTS` and `MAX_BYTES` of SQL and text), and runs
them in one transaction: `BEGIN IMMEDIATE`, each statement in the order they arrived, `COMMIT`.
A lone write therefore commits at once; batches form only from writes that arrived while a
commit was running, so an idle store adds no latency and a busy one syncs once per batch.

Each caller gets its own statement's result (the rows it changed, or its `RETURNING` rows) and
only after the commit, so a write that succeeded survives a power cut as before; statements of
one batch see each other's writes in order, so version checks in them keep working. An error
that SQLite confines to its statement (a constraint, a bad parameter) goes to that caller only
and the others commit. An error that ends the transaction (`BEGIN`, `COMMIT`, or a statement
after which the connection is no longer in a transaction: busy, full, I/O) fails every write of
the batch, earlier ones too, since their changes are gone: the statement that raised gets its
error, the others a copy naming it with the same SQLite error code.

Results go back to each caller's event loop in one callback per batch, not one per write.

Cancellation: a caller cancelled while its write waits in the queue withdraws it, and the write
never runs; once its batch has begun (the writer marks the batch's writes as started before
`BEGIN`), it runs to the end of that transaction like the others, which keep their own outcomes,
and the cancelled caller simply gets no answer: what committed is in the database for the next
read. `close` lets every write already queued (and not withdrawn) complete first; a write asked
for after `close` fails with `WriterClosed` without reaching SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

MAX_STATEMENTS = 256
"""The most statements one transaction runs; the rest wait for the next."""

MAX_BYTES = 4 * 1024 * 1024
"""The most SQL and text or blob parameters (in characters and bytes) one transaction runs; a
single larger write still runs, alone."""


class WriterClosed(sqlite3.ProgrammingError):
    """The writer was closed before this write could be queued (the store maps it to its own
    closed error)."""


class _Write:
    """One caller's statement and, once the batch ends, its result or error.

    `started` and `withdrawn` change only under the writer's lock: whichever is set first wins.
    """

    __slots__ = (
        "error",
        "future",
        "params",
        "result",
        "returning",
        "size",
        "sql",
        "started",
        "withdrawn",
    )

    def __init__(
        self, sql: str, params: Sequence[Any], returning: bool, future: asyncio.Future[Any]
    ) -> None:
        self.sql = sql
        self.params = params
        self.returning = returning
        self.future = future
        self.size = len(sql) + sum(len(p) for p in params if isinstance(p, str | bytes))
        self.result: Any = None
        self.error: BaseException | None = None
        self.started = False
        self.withdrawn = False


_STOP = object()


class SqliteWriter:
    """Runs write statements on `connection`, batched into group commits on a thread of its own.

    `connection` must be in autocommit mode (`isolation_level=None`) and opened with
    `check_same_thread=False`; from now on only the writer's thread uses it, and `close` closes it.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        max_statements: int = MAX_STATEMENTS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._connection = connection
        self._max_statements = max_statements
        self._max_bytes = max_bytes
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closing = False
        # Settles the races of a cancelled caller withdrawing its write with the thread starting
        # the batch that holds it, and of a write being queued with `close`: taken once per
        # write, once per batch and once per cancellation, each time for a few instructions.
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._thread.start()

    async def execute(
        self, sql: str, params: Sequence[Any] = (), *, returning: bool = False
    ) -> Any:
        """Runs one statement in the next transaction; the rows it changed, or with `returning`
        its rows, once that transaction has committed. The statement's own error as `sqlite3`
        raised it; a `sqlite3.Error` when the transaction failed as a whole; `WriterClosed`
        after `close`.

        Cancelled before its transaction began, the statement never runs; after, it runs with
        its batch (see the module docstring)."""
        future = asyncio.get_running_loop().create_future()
        write = _Write(sql, params, returning, future)
        with self._lock:  # never behind the stop mark, whichever thread closes
            if self._closing:
                raise WriterClosed("the SQLite writer is closed")
            self._queue.put(write)
        try:
            return await future
        except asyncio.CancelledError:
            with self._lock:
                if not write.started:
                    write.withdrawn = True
            raise

    async def close(self) -> None:
        """Waits for every write already queued to complete, then closes the connection;
        idempotent."""
        with self._lock:
            if not self._closing:
                self._closing = True
                self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        held: Any = None
        stopping = False
        while not stopping:
            first = held if held is not None else self._queue.get()
            held = None
            if first is _STOP:
                break
            batch, size = [first], first.size
            while len(batch) < self._max_statements:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                if size + item.size > self._max_bytes:
                    held = item
                    break
                batch.append(item)
                size += item.size
            batch = self._start(batch)
            if batch:
                self._commit(batch)
                _deliver(batch)
        self._connection.close()

    def _start(self, batch: list[_Write]) -> list[_Write]:
        """The writes of `batch` whose callers still wait, each marked started: from now on a
        cancellation no longer withdraws it."""
        with self._lock:
            kept = [write for write in batch if not write.withdrawn]
            for write in kept:
                write.started = True
        return kept

    def _commit(self, batch: list[_Write]) -> None:
        """Runs `batch` in one transaction, leaving each write's result or error on it."""
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
        except Exception as error:
            _fail(batch, error, None)
            return
        for write in batch:
            try:
                cursor = connection.execute(write.sql, write.params)
                try:
                    write.result = cursor.fetchall() if write.returning else cursor.rowcount
                finally:
                    cursor.close()
            except Exception as error:
                if connection.in_transaction:
                    write.error = error
                    continue
                _fail(batch, error, write)
                return
        try:
            connection.execute("COMMIT")
        except Exception as error:
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            _fail(batch, error, None)


def _fail(batch: list[_Write], error: Exception, culprit: _Write | None) -> None:
    """Fails every write of `batch`: `culprit` with `error`, the others with a copy of it."""
    for write in batch:
        write.result = None
        write.error = error if write is culprit else _rolled_back(error)


def _rolled_back(error: Exception) -> sqlite3.Error:
    """An error for a write lost with its transaction, with the SQLite error code of `error` so
    that a busy database still reads as busy; never an `IntegrityError`, which would blame the
    write's own values."""
    copy = sqlite3.OperationalError(f"the transaction was rolled back: {error}")
    copy.sqlite_errorcode = getattr(error, "sqlite_errorcode", sqlite3.SQLITE_ERROR)
    copy.sqlite_errorname = getattr(error, "sqlite_errorname", "SQLITE_ERROR")
    return copy


def _deliver(batch: list[_Write]) -> None:
    """Hands the results to their callers: one callback on each caller's loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Write]] = {}
    for write in batch:
        by_loop.setdefault(write.future.get_loop(), []).append(write)
    for loop, writes in by_loop.items():
        # A loop that was closed under its pending writes has no caller left to tell.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, writes)


def _settle(writes: list[_Write]) -> None:
    for write in writes:
        if write.future.done():
            continue  # its caller was cancelled
        if write.error is not None:
            write.future.set_exception(write.error)
        else:
            write.future.set_result(write.result)
