"""A new leader and the runs its executor lists: live runs no job claims are strays to stop,
while the ended runs whose outcome the executor recorded (a day's worth: thousands on a busy
platform) are neither stopped nor logged one by one, and a RUNNING operator whose run ended
unrecorded by the scheduler is finished from that record, never run again."""

from __future__ import annotations

from dataclasses import replace

from structlog.testing import capture_logs

from aorta.api import jobs_pb2
from aorta.executors import RunOutcome, RunReason
from aorta.ids import new_id
from tests.unit.scheduler.job_calls import wait_for
from tests.unit.scheduler.scheduler_fakes import Behaviour, FakeExecutor
from tests.unit.scheduler.scheduler_harness import CHAIN, PIPELINE_ID, Harness

P = jobs_pb2
OLD_RECORDS = 300


def old_records(executor: FakeExecutor) -> None:
    """What a day of other jobs leaves in the executor: ended runs with their outcome."""
    for n in range(OLD_RECORDS):
        run_id = f"old-{n:04d}"
        executor.recorded[run_id] = RunOutcome(run_id, RunReason.COMPLETED, 0)


async def test_a_new_leader_stops_only_the_live_run_no_job_claims(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    first = await harness.replica(behaviours={"second": Behaviour(hang=True)}, name="a")
    job_id = await harness.run()
    await harness.running(job_id, "second")
    await harness.crash(first, keep_runs=True)
    executor = first.executor
    claimed = executor.starts[1]
    old_records(executor)
    stray = replace(claimed, run_id="stray-run", job_id=new_id())  # of a job the store lacks
    await executor.start(stray)
    with capture_logs() as logs:
        second = await harness.replica(name="b", executor=executor)
        assert await executor.until_cancelled(1) == [stray.run_id]

        def watched() -> bool:
            engine = second.service.engine
            return engine is not None and engine.run_id_of(job_id, "second") is not None

        await wait_for(watched)
        executor.complete(claimed.run_id)
        status = await harness.stopped(job_id)
    assert status.status == P.JOB_STATUS_HEALTHY
    assert executor.cancel_calls == [stray.run_id]
    warned = [line["run_id"] for line in logs if line["event"] == "scheduler.stray_run"]
    assert warned == [stray.run_id]
    [summary] = [line for line in logs if line["event"] == "scheduler.reconciled"]
    assert (summary["live"], summary["ended"], summary["strays"]) == (2, OLD_RECORDS, 1)
    assert [(run.operator, run.attempt) for run in executor.starts] == [
        ("first", 1),
        ("second", 1),
        ("second", 1),  # the stray, started by the test
        ("third", 1),
    ]


async def test_a_running_operator_whose_run_ended_unrecorded_is_finished_from_the_record(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    first = await harness.replica(behaviours={"second": Behaviour(hang=True)}, name="a")
    job_id = await harness.run()
    await harness.running(job_id, "second")
    await harness.crash(first)  # its live runs vanish ...
    executor = first.executor
    ended = executor.starts[1].run_id
    # ... but `second` had exited 0 and its executor recorded it: only the record is left.
    executor.recorded[ended] = RunOutcome(ended, RunReason.COMPLETED, 0)
    old_records(executor)
    await harness.replica(name="b", executor=executor)
    status = await harness.stopped(job_id)
    assert status.status == P.JOB_STATUS_HEALTHY
    assert [(run.operator, run.attempt) for run in executor.starts] == [
        ("first", 1),
        ("second", 1),
        ("third", 1),
    ]
    assert executor.cancel_calls == []
