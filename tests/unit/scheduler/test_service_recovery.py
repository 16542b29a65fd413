"""Crash safety: a replica dies mid-job, or two replicas race on one store; jobs still end right
and no operator runs twice (at once, or after it completed)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import pytest

from aorta import subjects
from aorta.api import jobs_pb2
from aorta.errors import Conflict, NotFound, Unavailable
from aorta.ids import JobId, PayloadId, PipelineId, new_id
from aorta.settings import Settings
from aorta.store.factory import open_state_store
from aorta_services.scheduler import reconcile
from aorta_services.scheduler.active import ActiveJob, RunHandle
from aorta_services.scheduler.domain import Allocation, JobPhase, JobPriority, transitions
from aorta_services.scheduler.domain.definition import Definition, operator_records, progress_of
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.operator_runs import OperatorRunner
from aorta_services.scheduler.reconcile import ABANDONED_CREATION_AGE
from aorta_services.scheduler.repository import DEFINITIONS, JobRepository
from tests.unit.scheduler.job_calls import wait_for
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import CHAIN, PIPELINE_ID, Harness, ident, single

P = jobs_pb2


async def test_a_crash_mid_job_reruns_only_the_interrupted_operator(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    first = await harness.replica(behaviours={"second": Behaviour(hang=True)}, name="first")
    job_id = await harness.run()
    await harness.running(job_id, "second")
    await harness.crash(first)
    second = await harness.replica(name="second")
    status = await harness.stopped(job_id)
    assert status.status == P.JOB_STATUS_HEALTHY
    assert first.executor.started_operators() == ["first", "second"]
    assert second.executor.started_operators() == ["second", "third"]
    assert [run.attempt for run in second.executor.starts] == [2, 1]
    assert all(d.status == P.JOB_OPERATOR_STATUS_COMPLETED for d in status.operator_details)


async def test_queued_jobs_survive_a_crash_in_their_order(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu", {"g.yaml": single(requests="{gpu: 1}")})
    env = {"AORTA_SCHEDULER_GPUS": "1"}
    first = await harness.replica(env, behaviours={"only": Behaviour(hang=True)}, name="first")
    jobs = [await harness.run(f"job{n}") for n in range(3)]
    await harness.until(jobs[0], lambda s: s.state == P.JOB_STATE_RUNNING)
    await harness.crash(first)
    second = await harness.replica(env, name="second")
    for job_id in jobs:
        assert (await harness.stopped(job_id)).status == P.JOB_STATUS_HEALTHY
    assert [run.job_name for run in second.executor.starts] == ["job0", "job1", "job2"]
    assert second.executor.starts[0].attempt == 2


async def test_a_clean_stop_hands_over_without_waiting_for_the_lease(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    # A lease far longer than the wait below: a follower that waited for it, or for its next
    # try (every third of the TTL), would not take over in time.
    env = {"AORTA_SCHEDULER_LEASE_TTL": "600"}
    first = await harness.replica(env, behaviours={"second": Behaviour(hang=True)}, name="a")
    assert (await harness.leader()) is first
    second = await harness.replica(env, name="b")
    job_id = await harness.run()
    await harness.running(job_id, "second")
    await first.service.stop(1.0)
    # The stop freed the lease; the follower, poked, takes it at once.
    second.service.leadership.poke()
    status = await harness.stopped(job_id, within=60)
    assert status.status == P.JOB_STATUS_HEALTHY
    assert first.executor.closed
    assert second.executor.started_operators() == ["second", "third"]


async def test_two_replicas_never_run_an_operator_twice(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    quick = {"first": Behaviour(seconds=0.01), "second": Behaviour(seconds=0.01)}
    replicas = [await harness.replica(behaviours=quick, name=name) for name in ("a", "b")]
    jobs = await asyncio.gather(*(harness.run(f"job{n}") for n in range(12)))
    for job_id in jobs:
        assert (await harness.stopped(job_id)).status == P.JOB_STATUS_HEALTHY
    starts = Counter(
        (run.job_id, run.operator) for replica in replicas for run in replica.executor.starts
    )
    assert len(starts) == 12 * 3 and set(starts.values()) == {1}
    leaders = [r for r in replicas if r.executor.starts]
    assert len(leaders) == 1


async def test_leadership_passes_when_the_leader_dies(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    first = await harness.replica(behaviours={"third": Behaviour(hang=True)}, name="a")
    # `a` leads before `b` starts: started together, either may take the free lease first.
    assert (await harness.leader()) is first
    second = await harness.replica(name="b")
    job_id = await harness.run()
    await harness.running(job_id, "third")
    await harness.crash(first)
    assert (await harness.leader()) is second
    status = await harness.stopped(job_id)
    assert status.status == P.JOB_STATUS_HEALTHY
    assert second.executor.started_operators() == ["third"]


async def test_a_job_canceled_while_no_one_leads_is_cleaned_up(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    first = await harness.replica(behaviours={"second": Behaviour(hang=True)}, name="a")
    job_id = await harness.run()
    await harness.running(job_id, "second")
    await harness.crash(first)
    second = await harness.replica(name="b", env={"AORTA_SCHEDULER_LEASE_TTL": "0.6"})
    await harness.cancel(job_id)
    status = await harness.until(job_id, lambda s: s.operator_details[1].status == 4)
    assert status.status == P.JOB_STATUS_CANCELED
    assert list(status.messages) == ["canceled"]
    payload = status.payload_id.value
    await harness.until(job_id, lambda s: payload in harness.peers.released)
    assert second.executor.starts == []


async def test_the_operator_start_itself_is_guarded(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    replica = await harness.replica(behaviours={"first": Behaviour(hang=True)})
    job_id = await harness.run()
    await harness.running(job_id, "first")
    repository = JobRepository(replica.context.store)
    allocation = Allocation(gpus=(), cpu=1, memory_mb=1024)

    async def try_start(run_id: str) -> bool:
        try:
            await repository.modify(
                job_id,  # type: ignore[arg-type]
                lambda r: transitions.start_operator(
                    r, "first", attempt=2, run_id=run_id, allocation=allocation, now=0.0
                ),
            )
        except Conflict:
            return False
        return True

    results = await asyncio.gather(*(try_start(f"rival-{n}") for n in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    await harness.cancel(job_id)


async def test_a_leader_that_lost_its_lease_stops_its_runs_without_recording_them(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    first = await harness.replica(behaviours={"second": Behaviour(hang=True)}, name="a")
    assert (await harness.leader()) is first
    second = await harness.replica(name="b")
    job_id = await harness.run()
    await harness.running(job_id, "second")
    # Replica b writes the lease, as it would once a's had expired (a paused, say).
    await second.context.store.collection("leases").update("scheduler", {"holder": "b"})
    second.service.leadership.poke()
    first.service.leadership.poke()
    status = await harness.stopped(job_id)
    assert status.status == P.JOB_STATUS_HEALTHY
    await wait_for(lambda: first.service.engine is None)
    assert await first.executor.until_cancelled(1) == [first.executor.starts[1].run_id]
    assert [(r.operator, r.attempt) for r in second.executor.starts] == [
        ("second", 2),
        ("third", 1),
    ]


async def test_runs_that_outlive_their_scheduler_are_reattached_not_rerun(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    first = await harness.replica(behaviours={"second": Behaviour(hang=True)}, name="a")
    job_id = await harness.run()
    await harness.running(job_id, "second")
    await harness.crash(first, keep_runs=True)
    # The executor (Kubernetes, say) still runs `second`; the next leader waits for it, and
    # it ends only once that leader watches it.
    second = await harness.replica(name="b", executor=first.executor)

    def watched() -> bool:
        engine = second.service.engine
        return engine is not None and engine.run_id_of(job_id, "second") is not None

    await wait_for(watched)
    first.executor.complete(first.executor.starts[1].run_id)
    status = await harness.stopped(job_id)
    assert status.status == P.JOB_STATUS_HEALTHY
    assert [(r.operator, r.attempt) for r in first.executor.starts] == [
        ("first", 1),
        ("second", 1),
        ("third", 1),
    ]


async def test_every_replica_reads_a_running_operators_lines_from_the_leader(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    lines = ("loading 1", "loading 2")
    await harness.replica(behaviours={"first": Behaviour(hang=True, lines=lines)}, name="a")
    await harness.replica(name="b")
    job_id = await harness.run()
    await harness.running(job_id, "first")
    request = jobs_pb2.JobsReadLogsRequest(job_id=ident(job_id), operator_name="first")
    # Requests alternate between the two replicas: the follower asks the leader.
    for _ in range(4):
        stream = harness.client.request_stream(
            subjects.SCHEDULER_READ_LOGS, request.SerializeToString()
        )
        replies = [jobs_pb2.JobsReadLogsResponse.FromString(item) async for item in stream]
        assert [line for reply in replies for line in reply.logs] == list(lines)
    await harness.cancel(job_id)


async def left_by_a_crash(harness: Harness, repository: JobRepository, *, age: float) -> JobId:
    """What a replica that died inside `Jobs.Create`, between making the job's payload and
    revealing the job, leaves: the job stored hidden `age` seconds ago, and its payload."""
    definition = Definition(root="c.yaml", files=(("c.yaml", CHAIN),))
    pipeline = definition.pipeline()
    record = JobRecord(
        id=JobId(new_id()),
        name="job",
        pipeline_id=PipelineId(PIPELINE_ID),
        pipeline_name="chain",
        payload_id=PayloadId(""),
        priority=JobPriority.NORMAL,
        phase=JobPhase.CREATED,
        created=time.time() - age,
        progress=progress_of(pipeline).to_document(),
        operators=operator_records(pipeline, default_timeout=600, max_timeout=1800),
        visible=False,
        released=True,
    )
    await repository.insert(record, definition)
    body = {"job_id": record.id, "input_payloads": []}
    await harness.client.request(subjects.PAYLOADS_CREATE_FOR_JOB, json.dumps(body).encode())
    return record.id


async def test_a_leader_removes_a_creation_a_crash_left_with_its_payload(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    store = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(harness.tmp_path)}))
    try:
        repository = JobRepository(store)
        abandoned = await left_by_a_crash(harness, repository, age=2 * ABANDONED_CREATION_AGE)
        # Younger than the sweep's age: maybe still being created by another replica.
        recent = await left_by_a_crash(harness, repository, age=0)
    finally:
        await store.close()
    replica = await harness.replica()
    repository = JobRepository(replica.context.store)
    deadline = time.monotonic() + 60
    # The definition goes last, after the job.
    while await replica.context.store.collection(DEFINITIONS).count({"id": abandoned}):
        assert time.monotonic() < deadline, "the abandoned creation was not removed"
        await asyncio.sleep(0.02)
    assert not await replica.context.store.collection("jobs").count({"id": abandoned})
    assert harness.peers.discarded == [abandoned]
    assert list(harness.peers.payloads.values()) == [recent]
    with pytest.raises(NotFound):
        await repository.definition(abandoned)
    assert not (await repository.get(recent, hidden=True)).visible


async def test_a_creation_whose_payload_cannot_be_discarded_waits_for_the_next_sweep(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    harness.peers.discard_error = Unavailable("the payloads service went away")
    store = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(harness.tmp_path)}))
    try:
        abandoned = await left_by_a_crash(
            harness, JobRepository(store), age=2 * ABANDONED_CREATION_AGE
        )
    finally:
        await store.close()
    replica = await harness.replica()
    # The leader still takes over and runs jobs; the job stays, hidden, with its payload.
    assert (await harness.stopped(await harness.run())).status == P.JOB_STATUS_HEALTHY
    assert harness.peers.discarding.is_set() and harness.peers.discarded == []
    assert abandoned in harness.peers.payloads.values()
    stored = await JobRepository(replica.context.store).get(abandoned, hidden=True)
    assert not stored.visible


async def test_a_leader_sweeps_abandoned_creations_again_after_its_takeover(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconcile, "ABANDONED_SWEEP_INTERVAL", 0.0)
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    replica = await harness.replica()
    assert (await harness.stopped(await harness.run())).status == P.JOB_STATUS_HEALTHY
    # Left after the takeover: only a later sweep, from the leader's resync, can find it.
    abandoned = await left_by_a_crash(
        harness, JobRepository(replica.context.store), age=2 * ABANDONED_CREATION_AGE
    )
    deadline = time.monotonic() + 60
    while await replica.context.store.collection("jobs").count({"id": abandoned}):
        assert time.monotonic() < deadline, "the abandoned creation was not swept"
        await asyncio.sleep(0.02)
    assert harness.peers.discarded == [abandoned]


async def test_a_refused_start_refreshes_the_leaders_stale_copy_of_the_job(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    replica = await harness.replica(behaviours={"first": Behaviour(hang=True)})
    job_id = await harness.run()
    await harness.running(job_id, "first")
    engine = replica.service.engine
    assert engine is not None
    leaders = engine.active[JobId(job_id)]
    stale = ActiveJob(record=leaders.record, pipeline=leaders.pipeline, deadline=leaders.deadline)
    # Canceled behind the leader's back, as when a cancel lands while the job is admitted:
    # before, the leader tried the same refused start on every pass, for ever.
    repository = JobRepository(replica.context.store)
    await repository.modify(JobId(job_id), lambda r: transitions.cancel(r, reason="", now=0.0))
    runner = OperatorRunner(engine._parts, lambda job, operator: None)
    allocation = Allocation(gpus=(), cpu=1, memory_mb=1024)
    await runner.run(stale, RunHandle("second", 1, "rival"), allocation, reattach=False)
    assert stale.stop.is_set()
    assert stale.record.phase is JobPhase.CANCELED
    assert stale.launchable() == []
    assert all(run.run_id != "rival" for run in replica.executor.starts)
