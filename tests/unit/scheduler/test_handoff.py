"""An operator's end starts the operators it made ready in the same write, where the engine's
pass would have started them with the same resources, and only there; the end that leaves its
job nothing to run finishes the job in that write."""

from __future__ import annotations

from typing import Any

import pytest

from aorta.api import jobs_pb2
from aorta.ids import JobId
from aorta_services.scheduler.active import ActiveJob, RunHandle, owner
from aorta_services.scheduler.domain import (
    Allocation,
    JobPhase,
    OperatorStatus,
    ResourceLedger,
    transitions,
)
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.resources import Capacity
from aorta_services.scheduler.handoff import Claim, Handoff
from aorta_services.scheduler.repository import JobRepository
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import CHAIN, PIPELINE_ID, Harness
from tests.unit.scheduler.test_transitions import FORK, OK, created


def running(job_id: str = "0123456789abcdef0123456789abcdef") -> JobRecord:
    record = created(job_id)
    queued = transitions.queue(
        record,
        variables={},
        operators=record.operators,
        progress=record.progress,
        models=(),
        timeout=600,
        now=110.0,
    )
    return transitions.admit(queued, now=120.0, rotation=0, triton=None)


def started(record: JobRecord, name: str, allocation: Allocation) -> JobRecord:
    return transitions.start_operator(
        record, name, attempt=1, run_id=f"{name}-1", allocation=allocation, now=130.0
    )


def completed(record: JobRecord, name: str) -> JobRecord:
    return transitions.finish_operator(record, name, attempt=1, outcome=OK, reason="", now=140.0)


class Node:
    """A ledger of `cpus` cores (no over-commit; each operator of FORK asks for 2), the jobs
    the leader runs, and what the hand-off asked of the engine."""

    def __init__(self, cpus: int) -> None:
        self.ledger = ResourceLedger(
            Capacity(gpus=(), cpu=cpus, memory_mb=1 << 20, cpu_overcommit=1)
        )
        self.active: dict[JobId, ActiveJob] = {}
        self.launched: list[tuple[str, JobRecord]] = []
        self.pokes = 0
        self.handoff = Handoff(self.ledger, self.active, self.launch, self.poke)

    def launch(self, job: ActiveJob, claim: Claim, record: JobRecord) -> None:
        self.launched.append((claim.handle.operator, record))

    def poke(self) -> None:
        self.pokes += 1

    def job_running_a(self, job_id: str = "0123456789abcdef0123456789abcdef") -> ActiveJob:
        """A fork job whose `a` runs (allocated, with a run handle) and `b` waits."""
        record = running(job_id)
        allocation = self.ledger.allocate(owner(record.id, "a"), record.operator("a").request)
        job = ActiveJob(started(record, "a", allocation), None, deadline=1e12)
        job.handles["a"] = RunHandle("a", 1, "a-1")
        self.active[job.id] = job
        return job


def test_a_completed_operator_hands_its_room_to_what_it_made_ready() -> None:
    node = Node(cpus=2)
    job = node.job_running_a()

    claims = node.handoff.claim(job, "a", completed(job.record, "a"))

    assert [claim.handle.operator for claim in claims] == ["b"]  # the first ready that fits
    assert claims[0].handle.attempt == 1
    assert job.handles["b"] is claims[0].handle
    assert set(node.ledger.allocations()) == {owner(job.id, "b")}


def test_no_claim_while_another_job_waits_for_room_or_the_job_stops() -> None:
    node = Node(cpus=2)
    job = node.job_running_a()
    other = ActiveJob(running("fedcba9876543210fedcba9876543210"), None, deadline=1e12)
    node.active[other.id] = other  # its `a` and `b` are ready and wait for the node

    assert node.handoff.claim(job, "a", completed(job.record, "a")) == []
    del node.active[other.id]
    job.halt("operator 'x' failed")
    assert node.handoff.claim(job, "a", completed(job.record, "a")) == []
    assert set(node.ledger.allocations()) == {owner(job.id, "a")}
    assert set(job.handles) == {"a"}


def test_a_claim_its_write_did_not_start_is_given_back_and_the_pass_asked() -> None:
    node = Node(cpus=4)
    job = node.job_running_a()
    after = completed(job.record, "a")
    claims = node.handoff.claim(job, "a", after)
    assert [claim.handle.operator for claim in claims] == ["b", "c"]
    stored = started(after, "b", claims[0].allocation)
    stored = transitions.start_operator(
        stored,
        "c",
        attempt=1,
        run_id=claims[1].handle.run_id,
        allocation=claims[1].allocation,
        now=150.0,
    )

    node.handoff.settle(job, claims, stored)

    # `b` was started under another run id (another writer's): only `c` runs from here.
    assert [name for name, _ in node.launched] == ["c"]
    assert set(job.handles) == {"a", "c"}
    assert set(node.ledger.allocations()) == {owner(job.id, "c")}
    assert node.pokes == 1


async def test_a_chain_never_stores_an_end_without_the_next_start(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    statuses: list[tuple[OperatorStatus, ...]] = []
    write = JobRepository.modify

    async def spied(self: JobRepository, *args: Any, **kwargs: Any) -> JobRecord:
        record = await write(self, *args, **kwargs)
        if record.phase is JobPhase.RUNNING:
            progress = record.job_progress()
            statuses.append(tuple(progress.status(name) for name in ("first", "second", "third")))
        return record

    monkeypatch.setattr(JobRepository, "modify", spied)
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    await harness.replica()

    job_id = await harness.run()
    await harness.stopped(job_id)

    done, running_, pending = (
        OperatorStatus.COMPLETED,
        OperatorStatus.RUNNING,
        OperatorStatus.PENDING,
    )
    assert (done, running_, pending) in statuses
    assert (done, done, running_) in statuses
    assert (done, pending, pending) not in statuses
    assert (done, done, pending) not in statuses


def _writes(monkeypatch: pytest.MonkeyPatch) -> list[JobRecord]:
    """Every job record `JobRepository.modify` stores from now on, in order."""
    stored: list[JobRecord] = []
    write = JobRepository.modify

    async def spied(self: JobRepository, *args: Any, **kwargs: Any) -> JobRecord:
        record = await write(self, *args, **kwargs)
        stored.append(record)
        return record

    monkeypatch.setattr(JobRepository, "modify", spied)
    return stored


@pytest.mark.parametrize(("exit_code", "phase"), [(0, JobPhase.SUCCEEDED), (3, JobPhase.FAULTED)])
async def test_the_last_end_and_the_jobs_finish_are_one_write(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, exit_code: int, phase: JobPhase
) -> None:
    stored = _writes(monkeypatch)
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    await harness.replica(behaviours={"third": Behaviour(exit_code=exit_code)})

    job_id = await harness.run()
    await harness.stopped(job_id)

    ends = [r for r in stored if r.job_progress().status("third") is not OperatorStatus.RUNNING]
    ends = [r for r in ends if r.operator("third").attempt]
    # The first write that holds the last operator's end holds the job's stop too, and the
    # job's `stopped` is staged after the operator's.
    assert ends[0].phase is phase and ends[0].stopped == ends[0].operator("third").stopped
    staged = [event["type"].removeprefix("org.aorta.job.") for event in ends[0].outbox]
    assert staged[-2:] == ["operator.stopped", "stopped"]
    assert not any(r.phase is JobPhase.RUNNING and r.job_progress().outcome() for r in stored)


async def test_an_end_with_a_sibling_still_running_leaves_the_job_running(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = _writes(monkeypatch)
    harness.peers.add_pipeline(PIPELINE_ID, "fork", {"f.yaml": FORK})
    await harness.replica(behaviours={"a": Behaviour(exit_code=3), "b": Behaviour(seconds=0.5)})

    job_id = await harness.run()
    status = await harness.stopped(job_id)

    assert status.status == jobs_pb2.JOB_STATUS_FAULTED
    faulted = next(r for r in stored if r.job_progress().status("a") is OperatorStatus.FAULTED)
    assert faulted.phase is JobPhase.RUNNING  # `b` still ran: the job stopped only after it
    final = stored[-1]
    assert final.job_progress().status("b") is not OperatorStatus.RUNNING
