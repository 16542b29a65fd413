"""How the leader runs jobs: priority, admission, parallel branches, timeouts, cancel, failure,
Clara.Stop and Triton acquisition."""

from __future__ import annotations

import json

from aorta import subjects
from aorta.api import jobs_pb2
from aorta.bus import Request
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import CHAIN, FORK, PIPELINE_ID, Harness, single

GPU_ENV = {"AORTA_SCHEDULER_GPUS": "1"}
P = jobs_pb2


async def test_immediate_first_then_the_weighted_rotation(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu", {"g.yaml": single(requests="{gpu: 1}")})
    replica = await harness.replica(GPU_ENV, behaviours={"only": Behaviour(hang=True)})
    blocker = await harness.create("blocker", priority=P.JOB_PRIORITY_IMMEDIATE)
    await harness.start(blocker)
    await harness.until(blocker, lambda s: s.state == P.JOB_STATE_RUNNING)
    order = [
        ("L1", P.JOB_PRIORITY_LOWER),
        ("N1", P.JOB_PRIORITY_NORMAL),
        ("H1", P.JOB_PRIORITY_HIGHER),
        ("I1", P.JOB_PRIORITY_IMMEDIATE),
        ("H2", P.JOB_PRIORITY_HIGHER),
        ("N2", P.JOB_PRIORITY_NORMAL),
    ]
    jobs = {}
    for name, priority in order:
        jobs[name] = await harness.create(name, priority=priority)
    for name, _ in order:
        await harness.start(jobs[name])
    replica.executor.behaviours["only"] = Behaviour()
    await harness.cancel(blocker)
    for job_id in jobs.values():
        assert (await harness.stopped(job_id)).status == P.JOB_STATUS_HEALTHY
    started = [run.job_name for run in replica.executor.starts]
    # IMMEDIATE first; then the 4:2:1 cycle H N H L H N H, skipping empty classes.
    assert started == ["blocker", "I1", "H1", "N1", "H2", "L1", "N2"]


async def test_a_second_gpu_job_waits_queued_until_the_first_finishes(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu", {"g.yaml": single(requests="{gpu: 1}")})
    replica = await harness.replica(GPU_ENV, behaviours={"only": Behaviour(seconds=0.4)})
    first = await harness.run("first")
    await harness.until(first, lambda s: s.state == P.JOB_STATE_RUNNING)
    second = await harness.run("second")
    waiting = await harness.status(second)
    assert waiting.state == P.JOB_STATE_PENDING
    await harness.stopped(second)
    runs = replica.executor.starts
    assert [run.job_name for run in runs] == ["first", "second"]
    assert all(run.resources.gpu_devices == (0,) for run in runs)
    first_end = replica.executor.intervals[runs[0].run_id][1]
    second_start = replica.executor.intervals[runs[1].run_id][0]
    assert second_start >= first_end


async def test_parallel_branches_run_at_once_and_the_join_waits_for_both(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "fork", {"f.yaml": FORK})
    slow = Behaviour(seconds=0.3)
    replica = await harness.replica(behaviours={"left": slow, "right": slow})
    job_id = await harness.run()
    assert (await harness.stopped(job_id)).status == P.JOB_STATUS_HEALTHY
    spans = {
        run.operator: replica.executor.intervals[run.run_id] for run in replica.executor.starts
    }
    assert replica.executor.max_alive == 2
    assert spans["left"][0] < spans["right"][1] and spans["right"][0] < spans["left"][1]
    assert spans["join"][0] >= max(spans["left"][1], spans["right"][1])


async def test_an_operator_past_its_timeout_faults_the_job(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "slow", {"s.yaml": single(extra="  timeout: 1\n")})
    replica = await harness.replica(behaviours={"only": Behaviour(hang=True)})
    job_id = await harness.run()
    status = await harness.stopped(job_id)
    assert status.status == P.JOB_STATUS_FAULTED
    assert "operator 'only' timed out after 1 s" in status.messages[0]
    assert replica.executor.starts[0].timeout == 1.0
    assert status.operator_details[0].status == P.JOB_OPERATOR_STATUS_FAULTED


async def test_a_job_past_its_own_timeout_is_terminated(harness: Harness) -> None:
    definition = single(extra="  timeout: 30\n").replace("name: single\n", "name: s\ntimeout: 1\n")
    harness.peers.add_pipeline(PIPELINE_ID, "slow", {"s.yaml": definition})
    replica = await harness.replica(behaviours={"only": Behaviour(hang=True)})
    job_id = await harness.run()
    status = await harness.stopped(job_id)
    assert status.status == P.JOB_STATUS_TERMINATED
    assert status.messages[0] == "terminated: the job ran past its timeout of 1 s"
    assert await replica.executor.until_cancelled(1) == [replica.executor.starts[0].run_id]


async def test_cancel_mid_run_stops_the_running_operators(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "fork", {"f.yaml": FORK})
    hang = Behaviour(hang=True)
    replica = await harness.replica(behaviours={"left": hang, "right": hang})
    job_id = await harness.run()
    await harness.running(job_id, "left")
    await harness.running(job_id, "right")
    canceled = await harness.cancel(job_id, "the scan was wrong")
    assert (canceled.job_state, canceled.job_status) == (P.JOB_STATE_STOPPED, P.JOB_STATUS_CANCELED)
    status = await harness.until(
        job_id, lambda s: all(d.status != P.JOB_OPERATOR_STATUS_RUNNING for d in s.operator_details)
    )
    assert status.messages[0] == "canceled: the scan was wrong"
    assert sorted(await replica.executor.until_cancelled(2)) == sorted(
        r.run_id for r in replica.executor.starts
    )
    details = {d.name: d.status for d in status.operator_details}
    assert details == {
        "left": P.JOB_OPERATOR_STATUS_FAULTED,
        "right": P.JOB_OPERATOR_STATUS_FAULTED,
        "join": P.JOB_OPERATOR_STATUS_PENDING,
    }
    payload = status.payload_id.value
    await harness.until(job_id, lambda s: payload in harness.peers.released)


async def test_a_queued_job_is_canceled_at_once_and_never_runs(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu", {"g.yaml": single(requests="{gpu: 1}")})
    replica = await harness.replica(GPU_ENV, behaviours={"only": Behaviour(seconds=0.3)})
    first = await harness.run("first")
    await harness.until(first, lambda s: s.state == P.JOB_STATE_RUNNING)
    queued = await harness.run("queued")
    canceled = await harness.cancel(queued)
    assert canceled.job_status == P.JOB_STATUS_CANCELED
    await harness.stopped(first)
    assert [run.job_name for run in replica.executor.starts] == ["first"]


async def test_a_failing_operator_faults_the_job_with_its_exit_code_and_last_lines(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"c.yaml": CHAIN})
    lines = ("loading", "reading volume", "error: no DICOM series found")
    replica = await harness.replica(behaviours={"second": Behaviour(exit_code=3, lines=lines)})
    job_id = await harness.run()
    status = await harness.stopped(job_id)
    assert status.status == P.JOB_STATUS_FAULTED
    assert "operator 'second' failed with exit code 3" in status.messages[0]
    assert "error: no DICOM series found" in status.messages[0]
    assert replica.executor.started_operators() == ["first", "second"]
    assert [d.status for d in status.operator_details] == [
        P.JOB_OPERATOR_STATUS_COMPLETED,
        P.JOB_OPERATOR_STATUS_FAULTED,
        P.JOB_OPERATOR_STATUS_PENDING,
    ]


async def test_a_failure_stops_the_other_branch(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "fork", {"f.yaml": FORK})
    behaviours = {"left": Behaviour(seconds=0.1, exit_code=1), "right": Behaviour(hang=True)}
    replica = await harness.replica(behaviours=behaviours)
    status = await harness.stopped(await harness.run())
    assert status.status == P.JOB_STATUS_FAULTED
    assert len(status.messages) == 1 and "operator 'left' failed" in status.messages[0]
    cancelled = await replica.executor.until_cancelled(1)
    assert [r.operator for r in replica.executor.starts if r.run_id in cancelled] == ["right"]


async def test_clara_stop_terminates_queued_and_running_jobs(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu", {"g.yaml": single(requests="{gpu: 1}")})
    replica = await harness.replica(GPU_ENV, behaviours={"only": Behaviour(hang=True)})
    running = await harness.run("running")
    await harness.until(running, lambda s: s.state == P.JOB_STATE_RUNNING)
    queued = await harness.run("queued")
    answer = await harness.client.request(subjects.SCHEDULER_PLATFORM_STOP, b'{"reason": "x"}')
    assert json.loads(answer) == {"stopped": {"jobs": 2}}
    for job_id in (running, queued):
        status = await harness.stopped(job_id)
        assert status.status == P.JOB_STATUS_TERMINATED
        assert status.messages[0] == "terminated: the platform was stopped (Clara.Stop)"
    await harness.until(running, lambda s: s.operator_details[0].status == 4)
    assert await replica.executor.until_cancelled(1) == [replica.executor.starts[0].run_id]
    replica.executor.behaviours["only"] = Behaviour()
    after = await harness.run("after")
    assert (await harness.stopped(after)).status == P.JOB_STATUS_HEALTHY


async def test_operators_with_models_get_a_triton_server_for_the_job(harness: Harness) -> None:
    models = "  models: [{name: spleen}, {name: liver}]\n"
    harness.peers.add_pipeline(PIPELINE_ID, "infer", {"i.yaml": single(extra=models)})
    calls: list[tuple[str, dict[str, object]]] = []

    async def acquire(request: Request) -> bytes:
        calls.append(("acquire", json.loads(request.data)))
        return json.dumps({"grpc_uri": "127.0.0.1:8001", "http_uri": "127.0.0.1:8000"}).encode()

    async def release(request: Request) -> bytes:
        calls.append(("release", json.loads(request.data)))
        return b"{}"

    served = [
        await harness.client.serve(subjects.MODELS_ACQUIRE_TRITON, acquire, queue="models"),
        await harness.client.serve(subjects.MODELS_RELEASE_TRITON, release, queue="models"),
    ]
    replica = await harness.replica()
    job_id = await harness.run()
    assert (await harness.stopped(job_id)).status == P.JOB_STATUS_HEALTHY
    environment = dict(replica.executor.starts[0].environment)
    assert environment == {
        "NVIDIA_TRITON_GRPCURI": "127.0.0.1:8001",
        "NVIDIA_TRITON_HTTPURI": "127.0.0.1:8000",
    }
    await harness.until(job_id, lambda s: len(calls) == 2)
    assert calls == [
        ("acquire", {"job_id": job_id, "models": ["spleen", "liver"], "gpus": []}),
        ("release", {"job_id": job_id}),
    ]
    for subscription in served:
        await subscription.drain()


async def test_the_triton_server_is_asked_for_on_the_gpus_the_job_was_given(
    harness: Harness,
) -> None:
    extra = "  models: [{name: spleen}]\n"
    definition = single(requests="{gpu: 1}", extra=extra)
    harness.peers.add_pipeline(PIPELINE_ID, "infer", {"i.yaml": definition})
    asked: list[dict[str, object]] = []

    async def acquire(request: Request) -> bytes:
        asked.append(json.loads(request.data))
        return json.dumps({"grpc_uri": "127.0.0.1:8001", "http_uri": "127.0.0.1:8000"}).encode()

    async def release(request: Request) -> bytes:
        return b"{}"

    served = [
        await harness.client.serve(subjects.MODELS_ACQUIRE_TRITON, acquire, queue="models"),
        await harness.client.serve(subjects.MODELS_RELEASE_TRITON, release, queue="models"),
    ]
    replica = await harness.replica({"AORTA_SCHEDULER_GPUS": "3,5"})
    job_id = await harness.run()
    assert (await harness.stopped(job_id)).status == P.JOB_STATUS_HEALTHY
    assert asked == [{"job_id": job_id, "models": ["spleen"], "gpus": [3]}]
    assert replica.executor.starts[0].resources.gpu_devices == (3,)
    for subscription in served:
        await subscription.drain()


async def test_without_a_models_service_a_job_with_models_faults_clearly(harness: Harness) -> None:
    extra = "  models: [{name: spleen}]\n"
    harness.peers.add_pipeline(PIPELINE_ID, "infer", {"i.yaml": single(extra=extra)})
    replica = await harness.replica()
    status = await harness.stopped(await harness.run())
    assert status.status == P.JOB_STATUS_FAULTED
    assert "no Triton server with the models spleen could be had" in status.messages[0]
    assert "is the models service running?" in status.messages[0]
    assert replica.executor.starts == []
