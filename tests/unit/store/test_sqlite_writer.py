"""`SqliteWriter`: writes that queue behind a running commit share the next transaction, each
caller sees its own statement's result or error, and a transaction that fails fails its batch.

Batches are made without timing: the first write calls `gate()`, a SQL function that holds the
writer's thread inside its transaction until the test opens it, so everything submitted
meanwhile queues behind it (`inner_gate()` holds a later batch the same way, once begun).
Transactions are counted from the connection's SQL trace."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.store.sqlite_writer import SqliteWriter, WriterClosed

CREATE = "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL)"


class Gate:
    """A SQL function `gate()` that blocks the writer's thread until `open` is called."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> int:
        self.entered.set()
        self.opened.wait()
        return 0

    async def held(self) -> None:
        """Returns once the writer's thread waits inside the gate."""
        await asyncio.to_thread(self.entered.wait)


class Opened:
    """A writer on a fresh file, the SQL it ran, and its gate."""

    def __init__(self, path: Path, **limits: int) -> None:
        self.path = path
        self.statements: list[str] = []
        self.gate = Gate()
        self.inner_gate = Gate()
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(CREATE)
        connection.create_function("gate", 0, self.gate)
        connection.create_function("inner_gate", 0, self.inner_gate)
        connection.set_trace_callback(self.statements.append)
        self.writer = SqliteWriter(connection, **limits)

    @property
    def commits(self) -> int:
        return self.statements.count("COMMIT")

    def rows(self) -> list[tuple[str, int]]:
        """What another connection sees committed."""
        other = sqlite3.connect(self.path)
        try:
            return sorted(other.execute("SELECT id, n FROM t"))
        finally:
            other.close()

    async def queued_behind_gate(self, *writes: tuple[str, tuple[object, ...]]) -> list[object]:
        """Runs a gated write, then `writes` while it holds the thread; their outcomes."""
        first = asyncio.create_task(self.insert("gate", "gate()"))
        await self.gate.held()
        tasks = [asyncio.create_task(self._quiet(sql, params)) for sql, params in writes]
        await asyncio.sleep(0)  # each task queues its write before it waits
        self.gate.opened.set()
        await first
        return list(await asyncio.gather(*tasks))

    async def insert(self, id: str, n: str = "?") -> int:
        sql = f"INSERT INTO t (id, n) VALUES (?, {n})"
        result: int = await self.writer.execute(sql, (id,) if n != "?" else (id, 0))
        return result

    async def _quiet(self, sql: str, params: tuple[object, ...]) -> object:
        try:
            return await self.writer.execute(sql, params, returning="RETURNING" in sql)
        except Exception as error:
            return error


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Opened]:
    opened = Opened(tmp_path / "state.db")
    yield opened
    opened.gate.opened.set()
    opened.inner_gate.opened.set()
    await opened.writer.close()


def insert(id: str, n: int) -> tuple[str, tuple[object, ...]]:
    return "INSERT INTO t (id, n) VALUES (?, ?)", (id, n)


async def test_a_lone_write_commits_at_once_in_its_own_transaction(opened: Opened) -> None:
    assert await opened.insert("a") == 1
    assert opened.rows() == [("a", 0)]
    begin, statement, commit = opened.statements[-3:]
    assert (begin, commit) == ("BEGIN IMMEDIATE", "COMMIT")
    assert statement == "INSERT INTO t (id, n) VALUES ('a', 0)"


async def test_writes_queued_behind_a_commit_share_the_next_one(opened: Opened) -> None:
    outcomes = await opened.queued_behind_gate(*(insert(f"w{i}", i) for i in range(50)))
    assert outcomes == [1] * 50
    assert opened.commits == 2
    assert len(opened.rows()) == 51


async def test_each_caller_sees_its_own_rowcount_and_rows_in_order(opened: Opened) -> None:
    await opened.insert("a")
    outcomes = await opened.queued_behind_gate(
        ("UPDATE t SET n = n + 1 WHERE id = ? AND n = ? RETURNING n", ("a", 0)),
        ("UPDATE t SET n = n + 1 WHERE id = ? AND n = ? RETURNING n", ("a", 0)),
        ("UPDATE t SET n = n + 1 WHERE id = ? AND n = ?", ("a", 1)),
        ("DELETE FROM t WHERE id = ?", ("missing",)),
        ("UPDATE t SET n = 10 WHERE id IN (?, ?)", ("a", "gate")),
    )
    # The second update's version check sees the first one's write in the same transaction.
    assert outcomes == [[(1,)], [], 1, 0, 2]
    assert opened.commits == 3
    assert opened.rows() == [("a", 10), ("gate", 10)]


async def test_an_integrity_error_fails_only_its_own_caller(opened: Opened) -> None:
    await opened.insert("taken")
    outcomes = await opened.queued_behind_gate(insert("x", 1), insert("taken", 2), insert("y", 3))
    assert outcomes[0] == outcomes[2] == 1
    assert isinstance(outcomes[1], sqlite3.IntegrityError)
    assert opened.commits == 3
    assert opened.rows() == [("gate", 0), ("taken", 0), ("x", 1), ("y", 3)]


async def test_an_error_that_ends_the_transaction_fails_the_whole_batch(opened: Opened) -> None:
    await opened.insert("taken")
    outcomes = await opened.queued_behind_gate(
        insert("x", 1),
        ("INSERT OR ROLLBACK INTO t (id, n) VALUES (?, ?)", ("taken", 2)),
        insert("y", 3),
    )
    culprit, *others = outcomes[1], outcomes[0], outcomes[2]
    assert isinstance(culprit, sqlite3.IntegrityError)
    for other in others:
        assert isinstance(other, sqlite3.OperationalError)
        assert "rolled back" in str(other)
        assert other.sqlite_errorcode == culprit.sqlite_errorcode
    # The gated write had committed alone; the batch left nothing, and the writer goes on.
    assert opened.rows() == [("gate", 0), ("taken", 0)]
    assert await opened.insert("after") == 1
    assert ("after", 0) in opened.rows()


async def test_a_busy_database_fails_the_batch_as_busy_and_recovers(tmp_path: Path) -> None:
    opened = Opened(tmp_path / "state.db")
    opened.writer._connection.execute("PRAGMA busy_timeout = 0")
    other = sqlite3.connect(opened.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        outcomes = await asyncio.gather(
            *(opened.writer.execute(*insert(f"b{i}", i)) for i in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(outcome, sqlite3.OperationalError) for outcome in outcomes)
        assert {o.sqlite_errorcode for o in outcomes} == {sqlite3.SQLITE_BUSY}  # type: ignore[union-attr]
        other.execute("ROLLBACK")
        assert await opened.insert("after") == 1
        assert opened.rows() == [("after", 0)]
    finally:
        other.close()
        await opened.writer.close()


async def test_the_statement_cap_splits_a_queue_into_batches(tmp_path: Path) -> None:
    opened = Opened(tmp_path / "state.db", max_statements=4)
    try:
        outcomes = await opened.queued_behind_gate(*(insert(f"w{i}", i) for i in range(10)))
        assert outcomes == [1] * 10
        assert opened.commits == 1 + 3
    finally:
        await opened.writer.close()


async def test_the_byte_cap_splits_a_queue_yet_a_large_write_still_runs(tmp_path: Path) -> None:
    opened = Opened(tmp_path / "state.db", max_bytes=1000)
    try:
        large = "INSERT INTO t (id, n) VALUES (?, length(?))", ("large", "x" * 5000)
        outcomes = await opened.queued_behind_gate(
            *(insert(f"w{i}" + "x" * 300, i) for i in range(4)), large, insert("z", 0)
        )
        assert outcomes == [1] * 6
        # 3 small ones fit in 1000; then the fourth alone, the large one alone, the last.
        assert opened.commits == 1 + 4
    finally:
        await opened.writer.close()


async def test_close_completes_the_queued_writes_first(opened: Opened) -> None:
    first = asyncio.create_task(opened.insert("gate", "gate()"))
    await opened.gate.held()
    queued = [asyncio.create_task(opened.insert(f"q{i}")) for i in range(5)]
    await asyncio.sleep(0)
    closing = asyncio.create_task(opened.writer.close())
    await asyncio.sleep(0)
    with pytest.raises(WriterClosed, match="closed"):
        await opened.insert("late")
    opened.gate.opened.set()
    await closing
    assert await first == 1
    assert [await task for task in queued] == [1] * 5
    assert len(opened.rows()) == 6
    with pytest.raises(WriterClosed, match="closed"):
        await opened.insert("after")


async def test_a_write_cancelled_while_queued_never_runs(opened: Opened) -> None:
    first = asyncio.create_task(opened.insert("gate", "gate()"))
    await opened.gate.held()
    kept = asyncio.create_task(opened.insert("kept"))
    cancelled = asyncio.create_task(opened.insert("cancelled"))
    after = asyncio.create_task(opened.insert("after"))
    await asyncio.sleep(0)  # all three are queued behind the gate
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    opened.gate.opened.set()
    assert (await first, await kept, await after) == (1, 1, 1)
    assert opened.rows() == [("after", 0), ("gate", 0), ("kept", 0)]
    assert not [sql for sql in opened.statements if "cancelled" in sql]
    assert opened.commits == 2


async def test_a_batch_of_withdrawn_writes_alone_commits_nothing(opened: Opened) -> None:
    first = asyncio.create_task(opened.insert("gate", "gate()"))
    await opened.gate.held()
    withdrawn = [asyncio.create_task(opened.insert(f"w{i}")) for i in range(3)]
    await asyncio.sleep(0)
    for task in withdrawn:
        task.cancel()
    await asyncio.gather(*withdrawn, return_exceptions=True)
    opened.gate.opened.set()
    assert await first == 1
    assert await opened.insert("next") == 1
    assert opened.rows() == [("gate", 0), ("next", 0)]
    assert opened.commits == 2


async def test_a_write_cancelled_once_its_batch_began_lands_with_its_batch(opened: Opened) -> None:
    first = asyncio.create_task(opened.insert("gate", "gate()"))
    await opened.gate.held()
    # The next batch: a write that stops inside the transaction, the one cancelled there, and
    # one that reads what the cancelled one wrote.
    holding = asyncio.create_task(opened.insert("holding", "inner_gate()"))
    cancelled = asyncio.create_task(opened.insert("cancelled"))
    update = "UPDATE t SET n = 7 WHERE id = ? RETURNING n"
    reading = asyncio.create_task(opened.writer.execute(update, ("cancelled",), returning=True))
    await asyncio.sleep(0)
    opened.gate.opened.set()
    await opened.inner_gate.held()  # the batch has begun: its writes can no longer be withdrawn
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    opened.inner_gate.opened.set()
    assert (await first, await holding, await reading) == (1, 1, [(7,)])
    assert opened.rows() == [("cancelled", 7), ("gate", 0), ("holding", 0)]
    assert opened.commits == 2
    assert await opened.insert("next") == 1  # and the writer goes on
