"""The leader's write of a job it holds a copy of: no read of the job first, and a copy that is
no longer the stored one never wins over what another writer stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aorta.bus import make_event
from aorta.bus.memory import MemoryBus
from aorta.errors import Conflict, NotFound
from aorta.ids import JobId
from aorta.settings import Settings
from aorta.store import StateStore
from aorta.store.factory import open_state_store
from aorta.store.sqlite_collection import SqliteCollection
from aorta_services.scheduler.domain.definition import Definition
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.events import JobEvents
from aorta_services.scheduler.repository import JobRepository
from tests.unit.scheduler.test_transitions import FORK, created


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    opened = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)}))
    yield opened
    await opened.close()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the jobs read with `get`, the store's own reads too (an update of top-level
    fields reads nothing unless it was refused, to tell a stale version from a missing job)."""
    seen: list[str] = []
    get = SqliteCollection.get

    async def counted(self: SqliteCollection, id: str) -> Mapping[str, Any]:
        if self.name == "jobs":
            seen.append(id)
        return await get(self, id)

    monkeypatch.setattr(SqliteCollection, "get", counted)
    return seen


async def stored_job(repository: JobRepository) -> JobRecord:
    record = replace(created(), visible=True)
    return await repository.insert(record, Definition(root="f.yaml", files=(("f.yaml", FORK),)))


async def test_a_write_from_the_current_copy_reads_nothing(
    store: StateStore, reads: list[str]
) -> None:
    repository = JobRepository(store)
    job = await stored_job(repository)

    written = await repository.modify(job.id, lambda r: replace(r, name="renamed"), known=job)

    assert reads == []  # without the copy, the job is read first
    assert (written.name, written.version) == ("renamed", job.version + 1)
    assert (await repository.get(job.id)).name == "renamed"


async def test_a_write_from_a_stale_copy_is_applied_to_what_was_stored_since(
    store: StateStore, reads: list[str]
) -> None:
    repository = JobRepository(store)
    stale = await stored_job(repository)
    await repository.modify(stale.id, lambda r: replace(r, messages=("kept",)))

    written = await repository.modify(stale.id, lambda r: replace(r, name="renamed"), known=stale)

    assert (written.name, written.messages) == ("renamed", ("kept",))
    assert written.version == stale.version + 2
    # The other writer's read; the stale write's update, refused, and the store's read that
    # tells why; then a read again.
    assert len(reads) == 3


async def test_a_write_from_the_current_copy_converts_no_whole_job(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = JobRepository(store)
    job = await stored_job(repository)
    conversions: list[str] = []
    to_document, from_document = JobRecord.to_document, JobRecord.from_document

    def encoded(record: JobRecord) -> dict[str, Any]:
        conversions.append("to")
        return to_document(record)

    def decoded(document: Mapping[str, Any]) -> JobRecord:
        conversions.append("from")
        return from_document(document)

    monkeypatch.setattr(JobRecord, "to_document", encoded)
    monkeypatch.setattr(JobRecord, "from_document", staticmethod(decoded))

    written = await repository.modify(job.id, lambda r: replace(r, name="renamed"), known=job)

    assert conversions == []  # only the changed field is encoded; the store's answer only read
    monkeypatch.undo()
    assert written == await repository.get(job.id)
    assert written.version == job.version + 1


async def test_two_writes_from_one_copy_are_both_applied_one_after_the_other(
    store: StateStore, reads: list[str]
) -> None:
    repository = JobRepository(store)
    job = await stored_job(repository)

    first, second = await asyncio.gather(
        repository.modify(job.id, lambda r: replace(r, name="renamed"), known=job),
        repository.modify(job.id, lambda r: replace(r, messages=(*r.messages, "kept")), known=job),
    )

    assert {first.version, second.version} == {job.version + 1, job.version + 2}
    stored = await repository.get(job.id)
    assert (stored.name, stored.messages, stored.version) == ("renamed", ("kept",), job.version + 2)
    assert stored == max(first, second, key=lambda r: r.version)


async def test_concurrent_writes_in_one_replica_take_turns_and_never_lose_a_race(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each read yields before its writer writes: without turns every writer would read the
    # same version and all but one would lose, which slow group commits made into giving up.
    repository = JobRepository(store)
    job = await stored_job(repository)
    get, update = SqliteCollection.get, SqliteCollection.update
    lost: list[Conflict] = []

    async def yielding(self: SqliteCollection, id: str) -> Mapping[str, Any]:
        document = await get(self, id)
        await asyncio.sleep(0)
        return document

    async def counted(self: SqliteCollection, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        try:
            return await update(self, *args, **kwargs)
        except Conflict as error:
            lost.append(error)
            raise

    monkeypatch.setattr(SqliteCollection, "get", yielding)
    monkeypatch.setattr(SqliteCollection, "update", counted)

    def add(line: str) -> Callable[[JobRecord], JobRecord]:
        return lambda r: replace(r, messages=(*r.messages, line))

    await asyncio.gather(*(repository.modify(job.id, add(f"m{n}")) for n in range(5)))

    assert lost == []
    stored = await repository.get(job.id)
    assert sorted(stored.messages) == [f"m{n}" for n in range(5)]
    assert stored.version == job.version + 5


async def test_a_write_that_changes_nothing_writes_nothing(
    store: StateStore, reads: list[str]
) -> None:
    repository = JobRepository(store)
    job = await stored_job(repository)

    written = await repository.modify(job.id, lambda r: replace(r, name=job.name), known=job)

    assert written is job and reads == []
    assert (await repository.get(job.id)).version == job.version


async def test_a_write_has_the_store_return_only_the_new_version(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = JobRepository(store)
    job = await stored_job(repository)
    returned: list[Mapping[str, Any]] = []
    update = SqliteCollection.update

    async def spied(self: SqliteCollection, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        returned.append(await update(self, *args, **kwargs))
        return returned[-1]

    monkeypatch.setattr(SqliteCollection, "update", spied)

    written = await repository.modify(job.id, lambda r: replace(r, name="renamed"), known=job)

    assert returned == [{"id": job.id, "version": job.version + 1}]
    assert written.version == job.version + 1


async def test_pending_events_are_counted_without_decoding_a_job(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = JobRepository(store)
    definition = Definition(root="f.yaml", files=(("f.yaml", FORK),))
    jobs = [
        await repository.insert(replace(created(), id=JobId(f"{n}" * 32), visible=True), definition)
        for n in range(3)
    ]
    await repository.modify(jobs[0].id, lambda r: r.with_event({"id": "a"}).with_event({"id": "b"}))
    # A hidden job's events are published like the others', so they count as well.
    await repository.modify(jobs[1].id, lambda r: replace(r.with_event({"id": "c"}), visible=False))

    def undecodable(document: Mapping[str, Any]) -> JobRecord:
        raise AssertionError("a job was decoded to count its events")

    monkeypatch.setattr(JobRecord, "from_document", undecodable)
    assert await repository.pending_event_count() == 3


async def test_a_definition_is_read_from_the_store_once_at_most(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    definitions: list[str] = []
    get = SqliteCollection.get

    async def counted(self: SqliteCollection, id: str) -> Mapping[str, Any]:
        if self.name == "job_definitions":
            definitions.append(id)
        return await get(self, id)

    monkeypatch.setattr(SqliteCollection, "get", counted)
    repository = JobRepository(store)
    job = await stored_job(repository)
    written = Definition(root="f.yaml", files=(("f.yaml", FORK),))

    # Start, admission and a resync each need it: the one that wrote it reads nothing...
    for _ in range(3):
        assert await repository.definition(job.id) == written
    assert definitions == []
    # ...and another replica reads it once.
    other = JobRepository(store)
    for _ in range(3):
        assert await other.definition(job.id) == written
    assert definitions == [job.id]
    # A removed job's definition is gone with it.
    await other.remove(job.id)
    with pytest.raises(NotFound):
        await other.definition(job.id)


async def test_a_flush_removes_the_published_events_without_reading_the_job(
    store: StateStore, reads: list[str]
) -> None:
    repository = JobRepository(store)
    events = JobEvents(MemoryBus(), repository)
    job = await stored_job(repository)
    event = make_event("scheduler", "job", job.id, "started", {})
    staged = await repository.modify(job.id, lambda r: r.with_event(event.to_document()), known=job)

    assert await events.flush(staged)

    assert reads == []
    assert (await repository.get(job.id)).outbox == ()
