"""What the leader writes of a job its own Start queued: no write only to remove the published
`job.queued` (the job's next write removes it), and no read before a wait reason's write (it
starts from the copy the leader's resync read); the replay leaves an event left for the job's
next write there for a while, then removes it without publishing it again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aorta.api import jobs_pb2
from aorta.bus import CloudEvent, make_event
from aorta.bus.memory import MemoryBus
from aorta.outbox import LEAVE_SECONDS, event_document
from aorta.settings import Settings
from aorta.store.factory import open_state_store
from aorta.store.sqlite_collection import SqliteCollection
from aorta_services.scheduler.domain.definition import Definition
from aorta_services.scheduler.events import JobEvents
from aorta_services.scheduler.repository import JobRepository
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import PIPELINE_ID, Harness, Replica, single
from tests.unit.scheduler.test_transitions import FORK, created

GPU_ENV = {"AORTA_SCHEDULER_GPUS": "1"}


def spy_jobs(monkeypatch: pytest.MonkeyPatch) -> tuple[list[set[str]], list[str]]:
    """The changed fields of every update of the `jobs` collection from now on, and the ids
    of every `get` of it."""
    updates: list[set[str]] = []
    gets: list[str] = []
    update, get = SqliteCollection.update, SqliteCollection.get

    async def updating(
        self: SqliteCollection, id: str, changes: Mapping[str, Any], **kwargs: Any
    ) -> Any:
        if self.name == "jobs":
            updates.append(set(changes) | set(kwargs.get("unset", ())))
        return await update(self, id, changes, **kwargs)

    async def getting(self: SqliteCollection, id: str) -> Any:
        if self.name == "jobs":
            gets.append(id)
        return await get(self, id)

    monkeypatch.setattr(SqliteCollection, "update", updating)
    monkeypatch.setattr(SqliteCollection, "get", getting)
    return updates, gets


async def stored(replica: Replica, job_id: str, within: float = 60.0, **wanted: Any) -> None:
    """Returns once job `job_id`'s document holds `wanted` (read without `get`)."""
    jobs = replica.context.store.collection("jobs")
    deadline = time.monotonic() + within
    while True:
        [document] = await jobs.find({"id": job_id})
        if all(document.get(key) == value for key, value in wanted.items()):
            return
        assert time.monotonic() < deadline, f"job {job_id} never held {wanted}: {document}"
        await asyncio.sleep(0.02)


def removals(updates: Sequence[set[str]]) -> list[set[str]]:
    return [fields for fields in updates if fields <= {"outbox", "outbox_pending"}]


async def test_a_job_queued_on_the_leader_is_never_written_only_to_drop_an_event(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single()})
    replica = await harness.replica()
    await harness.leader()
    job_id = await harness.create()
    updates, _ = spy_jobs(monkeypatch)

    await harness.start(job_id)
    assert (await harness.stopped(job_id)).status == jobs_pb2.JOB_STATUS_HEALTHY
    await stored(replica, job_id, released=True, outbox_pending=False)

    assert updates and removals(updates) == []


async def test_a_waiting_jobs_reason_is_written_from_the_leaders_copy(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu", {"g.yaml": single(requests="{gpu: 1}")})
    replica = await harness.replica(GPU_ENV, behaviours={"only": Behaviour(hang=True)})
    first = await harness.run("first")
    await harness.until(first, lambda s: s.state == jobs_pb2.JOB_STATE_RUNNING)
    second = await harness.create("second")
    updates, gets = spy_jobs(monkeypatch)

    await harness.start(second)
    jobs = replica.context.store.collection("jobs")
    deadline = time.monotonic() + 60
    while not ((await jobs.find({"id": second}))[0]["waiting"]["job"] or {}).get("kind"):
        assert time.monotonic() < deadline, "the second job's reason was never stored"
        await asyncio.sleep(0.02)

    assert gets.count(second) == 1  # Start's own read, none before the reason's write
    # The reason's write removed the `job.queued` that Start published.
    await stored(replica, second, outbox_pending=False)
    assert removals(updates) == []
    await harness.cancel(second)
    await harness.cancel(first)


async def test_the_replay_leaves_a_left_event_to_the_next_write_for_a_while(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)}))
    bus = MemoryBus()
    published: list[CloudEvent] = []

    async def publish(event: CloudEvent) -> None:
        published.append(event)

    monkeypatch.setattr(bus, "publish_event", publish)
    repository = JobRepository(store)
    now = [1000.0]
    events = JobEvents(bus, repository, clock=lambda: now[0])
    try:
        definition = Definition(root="f.yaml", files=(("f.yaml", FORK),))
        job = await repository.insert(replace(created(), visible=True), definition)
        event = event_document(make_event("scheduler", "job", job.id, "queued", {}))
        job = await repository.modify(job.id, lambda r: r.with_event(event), known=job)
        await events.flush(job, later=True)
        updates, gets = spy_jobs(monkeypatch)

        now[0] += LEAVE_SECONDS - 1
        await events.replay()
        # Not even read: the replay finds the job's staged event ids without decoding it.
        assert updates == [] and gets == []
        assert (await repository.get(job.id)).outbox == (event,)

        now[0] += 1
        await events.replay()
        assert (await repository.get(job.id)).outbox == ()
        assert [e.id for e in published] == [event["id"]]  # published once, by the flush
    finally:
        await store.close()
