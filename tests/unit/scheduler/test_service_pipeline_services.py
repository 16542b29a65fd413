"""The leader's pipeline services, over a fake service runner: ready before the first operator,
shared by image+tag+command across jobs and pipelines, stopped when idle or on Clara.Stop,
failing or never fitting jobs with the reason, adopted by a new leader."""

from __future__ import annotations

from aorta import subjects
from aorta.api import jobs_pb2
from aorta.bus import CloudEvent
from aorta.executors.services import service_key
from tests.unit.scheduler.job_calls import appender, wait_for
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import PIPELINE_ID, Harness
from tests.unit.scheduler.service_fakes import ServiceExecutor

P = jobs_pb2
OTHER_PIPELINE = "fedcba9876543210fedcba9876543210"
IDLE = {"AORTA_SERVICE_IDLE_SECONDS": "0.3"}
COMMAND = '[serve, "$(NVIDIA_CLARA_SERVICE_DATA_PATH)"]'


def covid(command: str = COMMAND, requests: str = "{cpu: 1, memory: 256}") -> str:
    """Two operators declaring the same trtis-like service (http and volume connections)."""
    service = (
        "  services:\n"
        "  - name: trtis\n"
        f"    container: {{image: trtis, tag: '19.08', command: {command}}}\n"
        f"    requests: {requests}\n"
        "    connections:\n"
        "      http: [{name: NVIDIA_CLARA_TRTISURI, port: 8000}]\n"
        "      volume: [{name: MODELS_PATH, path: /models}]\n"
    )
    return (
        "api-version: 0.4.0\nname: covid\noperators:\n"
        "- name: segment\n  container: {image: seg, command: [python, seg.py]}\n"
        "  input: [{path: /input}]\n  output: [{path: /output}]\n  requests: {cpu: 1}\n"
        + service
        + "- name: classify\n  container: {image: cls, command: [python, cls.py]}\n"
        "  input: [{from: segment, path: /input}]\n  output: [{path: /output}]\n"
        "  requests: {cpu: 1}\n" + service
    )


async def test_two_jobs_and_two_pipelines_share_one_service_until_it_idles(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": covid()})
    harness.peers.add_pipeline(OTHER_PIPELINE, "covid-2", {"c.yaml": covid()})
    executor = ServiceExecutor(behaviours={"segment": Behaviour(seconds=0.2)})
    await harness.replica(IDLE, executor=executor)
    first = await harness.run("first")
    second = await harness.run("second", pipeline_id=OTHER_PIPELINE)
    for job_id in (first, second):
        assert (await harness.stopped(job_id)).status == P.JOB_STATUS_HEALTHY
    runner = executor.services
    assert [launch.name for launch in runner.started] == ["trtis"]
    assert runner.started[0].service_id == service_key(
        "trtis", "19.08", ("serve", "$(NVIDIA_CLARA_SERVICE_DATA_PATH)")
    )
    for run in executor.starts:
        assert run.environment["NVIDIA_CLARA_TRTISURI"] == "10.0.0.1:8001"
        assert run.environment["MODELS_PATH"] == "/models"
        assert [(m.source, m.path) for m in run.service_mounts] == [
            (f"data-{runner.started[0].service_id}", "/models")
        ]
    await runner.until(lambda: runner.stopped == [runner.started[0].service_id])


async def test_a_different_command_starts_another_service(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": covid()})
    harness.peers.add_pipeline(OTHER_PIPELINE, "strict", {"c.yaml": covid("[serve, --strict]")})
    executor = ServiceExecutor()
    await harness.replica(executor=executor)
    for job_id in (await harness.run("a"), await harness.run("b", pipeline_id=OTHER_PIPELINE)):
        assert (await harness.stopped(job_id)).status == P.JOB_STATUS_HEALTHY
    commands = [launch.command for launch in executor.services.started]
    assert commands == [("serve", "$(NVIDIA_CLARA_SERVICE_DATA_PATH)"), ("serve", "--strict")]
    assert executor.services.stopped == []


async def test_clara_stop_stops_every_service(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": covid()})
    harness.peers.add_pipeline(OTHER_PIPELINE, "strict", {"c.yaml": covid("[serve, --strict]")})
    executor = ServiceExecutor()
    await harness.replica(executor=executor)
    for job_id in (await harness.run("a"), await harness.run("b", pipeline_id=OTHER_PIPELINE)):
        await harness.stopped(job_id)
    runner = executor.services
    assert len(runner.alive) == 2
    await harness.client.request(subjects.SCHEDULER_PLATFORM_STOP, b'{"reason": "x"}')
    await runner.until(lambda: not runner.alive)
    assert sorted(runner.stopped) == sorted(launch.service_id for launch in runner.started)
    # The next job that needs the service starts it again.
    again = await harness.run("again")
    assert (await harness.stopped(again)).status == P.JOB_STATUS_HEALTHY
    assert len(runner.alive) == 1


async def test_a_service_crashing_at_start_faults_its_job_with_its_last_lines(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": covid()})
    executor = ServiceExecutor()
    executor.services.crash["trtis"] = ("loading models", "error: no model store")
    await harness.replica(executor=executor)
    job_id = await harness.run("doomed")
    status = await harness.stopped(job_id)
    assert status.status == P.JOB_STATUS_FAULTED
    message = "\n".join(status.messages)
    assert "service 'trtis' failed: pipeline service trtis exited (exit code 1)" in message
    assert "error: no model store" in message
    assert executor.starts == []


async def test_a_service_needing_a_gpu_the_node_lacks_faults_the_job_at_once(
    harness: Harness,
) -> None:
    gpu = covid(requests="{gpu: 1}")
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": gpu})
    executor = ServiceExecutor()
    await harness.replica(executor=executor)
    status = await harness.stopped(await harness.run("gpu"))
    assert status.status == P.JOB_STATUS_FAULTED
    assert "can never run on this node" in status.messages[-1]
    assert "'trtis'" in status.messages[-1] and "1 GPU(s)" in status.messages[-1]
    assert executor.services.started == []


async def test_a_job_whose_service_does_not_fit_now_waits_queued(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": covid(requests="{gpu: 1}")})
    blocker = (
        "api-version: 0.4.0\nname: blocker\noperators:\n"
        "- name: hog\n  container: {image: x, command: [hog]}\n  output: [{path: /out}]\n"
        "  requests: {gpu: 1}\n"
    )
    harness.peers.add_pipeline(OTHER_PIPELINE, "blocker", {"b.yaml": blocker})
    executor = ServiceExecutor(behaviours={"hog": Behaviour(hang=True)})
    await harness.replica({"AORTA_SCHEDULER_GPUS": "1"}, executor=executor)
    hog = await harness.run("hog", pipeline_id=OTHER_PIPELINE)
    await harness.until(hog, lambda s: s.state == P.JOB_STATE_RUNNING)
    waiting = await harness.run("waiting")
    status = await harness.until(waiting, lambda s: any("trtis" in m for m in s.messages))
    assert status.state == P.JOB_STATE_PENDING
    assert list(status.messages) == [
        "waiting: waits for the service trtis: no room on the node to start it yet"
    ]
    assert executor.services.started == []
    await harness.cancel(hog)
    assert (await harness.stopped(waiting)).status == P.JOB_STATUS_HEALTHY
    assert executor.services.started[0].resources.gpu_devices == (0,)


async def test_a_new_leader_adopts_the_running_service(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": covid()})
    executor = ServiceExecutor()
    first = await harness.replica(executor=executor, name="first")
    await harness.stopped(await harness.run("a"))
    await harness.crash(first, keep_runs=True)
    await harness.replica(executor=executor, name="second")
    await harness.leader()
    assert (await harness.stopped(await harness.run("b"))).status == P.JOB_STATUS_HEALTHY
    assert len(executor.services.started) == 1
    assert executor.services.stopped == []


async def test_a_service_that_exited_after_it_was_ready_starts_again_for_the_next_job(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": covid()})
    executor = ServiceExecutor()
    await harness.replica(executor=executor)
    assert (await harness.stopped(await harness.run("a"))).status == P.JOB_STATUS_HEALTHY
    executor.services.alive.clear()  # the service's process died while it was idle
    assert (await harness.stopped(await harness.run("b"))).status == P.JOB_STATUS_HEALTHY
    assert [launch.name for launch in executor.services.started] == ["trtis", "trtis"]


async def test_an_idle_service_stops_once_every_pipeline_declaring_it_is_removed(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": covid()})
    harness.peers.add_pipeline(OTHER_PIPELINE, "covid-2", {"c.yaml": covid()})
    executor = ServiceExecutor()
    await harness.replica(executor=executor)
    await harness.stopped(await harness.run("a"))
    await harness.stopped(await harness.run("b", pipeline_id=OTHER_PIPELINE))
    runner = executor.services
    del harness.peers.pipelines[PIPELINE_ID]
    # The other pipeline still declares it: a few resyncs later it still runs.
    await harness.stopped(await harness.run("c", pipeline_id=OTHER_PIPELINE))
    assert runner.stopped == []
    del harness.peers.pipelines[OTHER_PIPELINE]
    await runner.until(lambda: runner.stopped == [runner.started[0].service_id])


async def test_service_lifecycle_events_are_cloudevents(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": covid()})
    harness.peers.add_pipeline(OTHER_PIPELINE, "broken", {"c.yaml": covid("[crash]")})
    executor = ServiceExecutor()
    seen: list[CloudEvent] = []
    subscription = await harness.client.subscribe_events(
        "aorta.events.service.>", appender(seen), deliver="all"
    )
    try:
        await harness.replica(IDLE, executor=executor)
        await harness.stopped(await harness.run("fine"))
        executor.services.crash["trtis"] = ("boom",)
        await harness.stopped(await harness.run("broken", pipeline_id=OTHER_PIPELINE))
        await wait_for(lambda: len(seen) == 5)
    finally:
        await subscription.drain()
    fine, broken = (launch.service_id for launch in executor.services.started)
    assert {e.source for e in seen} == {"aorta/scheduler"}
    by_service = {sid: [e.type for e in seen if e.subject == sid] for sid in (fine, broken)}
    assert by_service == {
        fine: ["org.aorta.service.started", "org.aorta.service.ready", "org.aorta.service.stopped"],
        broken: ["org.aorta.service.started", "org.aorta.service.failed"],
    }
    [ready] = [e.data for e in seen if e.type == "org.aorta.service.ready"]
    assert ready["name"] == "trtis" and ready["state"] == "READY"
    assert ready["address"] == "10.0.0.1:8001"
    [failed] = [e.data for e in seen if e.type == "org.aorta.service.failed"]
    assert "boom" in failed["message"]
