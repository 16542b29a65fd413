"""The scheduler's metrics say what happened to its jobs: one created, each state it entered
counted once, its wait in the queue observed; the leader's counts of the store match it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from aorta.bus import CloudEvent
from aorta.bus.memory import MemoryBus
from aorta.observability import metrics
from aorta.settings import Settings
from aorta.store.factory import open_state_store
from aorta_services.scheduler.events import JobEvents
from aorta_services.scheduler.job_metrics import JobGauges
from aorta_services.scheduler.repository import JobRepository
from tests.unit.scheduler.scheduler_harness import PIPELINE_ID, Harness, single
from tests.unit.scheduler.staged_events import job_with_created_event
from tests.unit.scheduler.test_service_events import until_published


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


TRANSITIONS = (("PENDING", "HEALTHY"), ("RUNNING", "HEALTHY"), ("STOPPED", "HEALTHY"))


def counts() -> dict[str, float]:
    """The scheduler's counters now, to compare before and after."""
    figures = {
        "created": value("aorta_jobs_created_total"),
        "waits": value("aorta_queue_wait_seconds_count"),
    }
    for state, status in TRANSITIONS:
        figures[f"{state}/{status}"] = value(
            "aorta_job_transitions_total", state=state, status=status
        )
    return figures


@pytest.fixture
def recording() -> Iterator[None]:
    metrics.set_recording(True)
    yield
    metrics.set_recording(True)


async def test_one_job_is_counted_once_in_each_state_it_entered(
    harness: Harness, recording: None
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single()})
    replica = await harness.replica()
    before = counts()
    job_id = await harness.run("counted")
    await harness.stopped(job_id)
    await until_published(replica)
    after = counts()
    assert after["created"] - before["created"] == 1
    # created and queued are both PENDING on Clara's wire; started and stopped once each.
    assert after["PENDING/HEALTHY"] - before["PENDING/HEALTHY"] == 2
    assert after["RUNNING/HEALTHY"] - before["RUNNING/HEALTHY"] == 1
    assert after["STOPPED/HEALTHY"] - before["STOPPED/HEALTHY"] == 1
    assert after["waits"] - before["waits"] == 1

    await JobGauges(JobRepository(replica.context.store)).count()
    assert value("aorta_jobs", phase="succeeded") == 1
    assert value("aorta_jobs", phase="running") == 0
    assert value("aorta_queue_depth", priority="normal") == 0
    assert value("aorta_events_pending") == 0


async def test_nothing_is_counted_while_metrics_are_off(harness: Harness, recording: None) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "single", {"s.yaml": single()})
    replica = await harness.replica()
    metrics.set_recording(False)
    before = counts()
    job_id = await harness.run("uncounted")
    await harness.stopped(job_id)
    await until_published(replica)
    assert counts() == before


async def test_an_event_published_by_two_flushes_at_once_is_counted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recording: None
) -> None:
    """A writer's flush and the leader's replay can publish one staged event at the same
    moment (the bus keeps one, by its id): the metrics count it once."""
    store = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)}))
    bus = MemoryBus()
    both_publishing = asyncio.Barrier(2)

    async def publish(event: CloudEvent) -> None:
        await both_publishing.wait()

    monkeypatch.setattr(bus, "publish_event", publish)
    repository = JobRepository(store)
    events = JobEvents(bus, repository)
    try:
        job, _ = await job_with_created_event(repository)
        before = counts()
        await asyncio.gather(events.flush(job), events.flush(job))
        after = counts()
        assert after["created"] - before["created"] == 1
        assert (await repository.get(job.id)).outbox == ()
    finally:
        await store.close()
