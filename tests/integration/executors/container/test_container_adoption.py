"""Crash safety: containers outlive their executor, and the next one adopts them instead of
running them again, whether they still run or finished while nobody watched."""

from __future__ import annotations

from pathlib import Path

from aorta.executors import OperatorRun, RunReason
from aorta.executors.container.engine import ContainerEngine
from aorta.executors.container.executor import ContainerExecutor
from aorta.executors.container.libpod_spec import create_request
from aorta.executors.container.outcome import has_exited
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.container.spec import RUN_LABEL, RunPlan, container_name
from aorta.executors.container.volume_modes import open_volumes
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import create_workspace
from tests.integration.executors.conftest import Job, Store, eventually
from tests.integration.executors.container.conftest import MakeExecutor, in_image

INSTANCE = "aorta-test"


def _slow_run(job: Job, image: str, seconds: float) -> OperatorRun:
    script = f"echo started; sleep {seconds}; echo finished > /output/result"
    return in_image(job.run(()), image, "sh", "-c", script)


async def _started(executor: ContainerExecutor, run: OperatorRun) -> None:
    async def logged() -> bool:
        return "started" in [line async for line in executor.log_lines(run.run_id)]

    await eventually(logged, within=30)


async def test_a_running_container_is_adopted_not_run_again(
    make_executor: MakeExecutor,
    engine: ContainerEngine,
    job: Job,
    store: Store,
    busybox_image: str,
) -> None:
    run = _slow_run(job, busybox_image, 2)
    crashed = await make_executor()
    await crashed.start(run)
    await _started(crashed, run)
    await crashed.close()  # the platform is gone; its container is not
    [container] = await engine.list({RUN_LABEL: run.run_id})
    assert container["State"] == "running"

    restarted = await make_executor()
    assert run.run_id in await restarted.running()
    await restarted.start(run)  # the scheduler asking again changes nothing
    outcome = await restarted.wait(run.run_id)

    assert outcome.reason is RunReason.COMPLETED, outcome.message
    assert await store.read(job.output_prefix() + "result") == b"finished\n"
    assert (await store.read(run.log_key)).decode().count("started") == 1
    assert await engine.list({RUN_LABEL: run.run_id}) == []


async def test_a_container_that_ended_while_nobody_watched_is_finished_not_run_again(
    make_executor: MakeExecutor,
    engine: ContainerEngine,
    job: Job,
    store: Store,
    busybox_image: str,
) -> None:
    run = _slow_run(job, busybox_image, 0.5)
    crashed = await make_executor()
    await crashed.start(run)
    await _started(crashed, run)
    await crashed.close()

    async def exited() -> bool:
        container = await engine.inspect(container_name(INSTANCE, run.run_id))
        return container is not None and has_exited(container)

    await eventually(exited, within=30)
    restarted = await make_executor()
    await restarted.start(run)  # a known run id: adopted from its container
    outcome = await restarted.wait(run.run_id)

    assert outcome.reason is RunReason.COMPLETED, outcome.message
    assert await store.read(job.output_prefix() + "result") == b"finished\n"
    assert (await store.read(run.log_key)).decode().count("started") == 1
    assert await engine.list({RUN_LABEL: run.run_id}) == []


async def test_platforms_sharing_an_engine_never_adopt_each_others_containers(
    make_executor: MakeExecutor, job: Job, busybox_image: str
) -> None:
    run = _slow_run(job, busybox_image, 60)
    ours = await make_executor()
    await ours.start(run)
    await _started(ours, run)

    theirs = await make_executor(ContainerSettings(instance="another-platform"))
    assert run.run_id not in await theirs.running()
    assert (await theirs.wait(run.run_id)).reason is RunReason.LOST

    await ours.cancel(run.run_id, grace=0)
    assert (await ours.wait(run.run_id)).reason is RunReason.CANCELLED


async def test_a_run_whose_outcome_was_read_before_the_crash_is_not_run_again(
    make_executor: MakeExecutor, job: Job, store: Store, busybox_image: str
) -> None:
    run = _slow_run(job, busybox_image, 0)
    crashed = await make_executor()
    await crashed.start(run)
    first = await crashed.wait(run.run_id)  # container removed; the scheduler never recorded it
    assert first.reason is RunReason.COMPLETED, first.message
    # A leader that lost its lease before it recorded the outcome, and took it again.
    assert run.run_id in await crashed.running()
    await crashed.close()

    restarted = await make_executor()
    assert run.run_id in await restarted.running()
    await restarted.start(run)
    assert await restarted.wait(run.run_id) == first
    assert (await store.read(run.log_key)).decode().count("started") == 1


async def test_a_container_created_but_never_started_is_started_once(
    make_executor: MakeExecutor,
    engine: ContainerEngine,
    container_settings: ContainerSettings,
    job: Job,
    store: Store,
    busybox_image: str,
    tmp_path: Path,
) -> None:
    # What a platform killed between creating the container and starting it leaves behind.
    run = in_image(
        job.run(()), busybox_image, "sh", "-c", "echo started; echo made > /output/result"
    )
    workspace = Workspace.for_run(tmp_path / "work", run.job_id, run.operator, run.attempt)
    await create_workspace(workspace, [*run.inputs, *run.outputs])
    open_volumes(workspace, run)
    plan = RunPlan(
        run.run_id, run.operator, run.outputs, run.log_key, run.timeout, str(workspace.folder)
    )
    request = create_request(
        run,
        volumes={b.path: workspace.volume(b.path) for b in [*run.inputs, *run.outputs]},
        plan=plan,
        engine=engine.kind,
        settings=container_settings,
    )
    await engine.create(container_name(INSTANCE, run.run_id), request)

    restarted = await make_executor()
    assert run.run_id in await restarted.running()
    outcome = await restarted.wait(run.run_id)
    assert outcome.reason is RunReason.COMPLETED, outcome.message
    assert await store.read(job.output_prefix() + "result") == b"made\n"
    assert (await store.read(run.log_key)).decode().count("started") == 1
