"""Pipeline services on the container executor, against a real engine: a busybox `httpd` plays
Clara's Triton service (an http connection and a volume connection), operators reach it through
the connection variable and read its data folder; services are shared, adopted by a new runner,
stopped, and a service that crashes at start fails with its last log lines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from aorta.errors import NotFound
from aorta.executors import RunReason
from aorta.executors.container.engine import ContainerEngine
from aorta.executors.container.executor import ContainerExecutor
from aorta.executors.container.service_spec import container_name, data_volume
from aorta.executors.container.services import ContainerServiceRunner
from aorta.executors.services import (
    SERVICE_DATA_MACRO,
    HttpPort,
    ServiceFailed,
    ServiceLaunch,
    SharedVolume,
    service_key,
)
from tests.integration.executors.conftest import Job, Store, eventually
from tests.integration.executors.container.conftest import MakeExecutor, in_image

INSTANCE = "aorta-test"
SERVE = (
    "sh",
    "-c",
    f"echo served-from-data > {SERVICE_DATA_MACRO}/greeting.txt; echo service up; "
    f"exec httpd -f -p 8000 -h {SERVICE_DATA_MACRO}",
)


def trtis_like(image: str, command: tuple[str, ...] = SERVE, **changes: object) -> ServiceLaunch:
    """A Triton-style service: `NVIDIA_CLARA_TRTISURI` on port 8000, its data at `/models`."""
    name, _, tag = image.rpartition(":")
    launch = ServiceLaunch(
        service_id=service_key(name, tag, command),
        name="trtis",
        image=name,
        tag=tag,
        command=command,
        http=(HttpPort("NVIDIA_CLARA_TRTISURI", 8000),),
        volumes=(SharedVolume("MODELS", "/models"),),
        ready_timeout=30.0,
        log_key=f"logs/services/{service_key(name, tag, command)}.log",
    )
    return replace(launch, **changes)  # type: ignore[arg-type]


@pytest.fixture
async def runner(executor: ContainerExecutor) -> ContainerServiceRunner:
    services = executor.service_runner()
    assert isinstance(services, ContainerServiceRunner)
    return services


@pytest.fixture(autouse=True)
async def no_services_left(engine: ContainerEngine) -> AsyncIterator[None]:
    """Removes the services' containers a test left (their volumes are the engine's)."""
    yield
    for container in await engine.list({"aorta.instance": INSTANCE, "aorta.component": "service"}):
        await engine.remove(str(container["Id"]))


async def test_an_operator_reaches_the_service_and_reads_its_data_folder(
    runner: ContainerServiceRunner,
    executor: ContainerExecutor,
    job: Job,
    store: Store,
    busybox_image: str,
) -> None:
    endpoint = await runner.ensure(trtis_like(busybox_image))
    address = endpoint.environment["NVIDIA_CLARA_TRTISURI"]
    assert address.startswith("127.0.0.1:")
    assert endpoint.environment["MODELS"] == "/models"
    script = (
        'wget -q -O /output/fetched.txt "http://$NVIDIA_CLARA_TRTISURI/greeting.txt"; '
        "cat /models/greeting.txt > /output/read.txt; "
        "if echo x > /models/new 2>/dev/null; then echo writable; else echo read-only; fi "
        "> /output/verdict"
    )
    run = in_image(job.run(()), busybox_image, "sh", "-c", script)
    run = replace(run, environment=dict(endpoint.environment), service_mounts=endpoint.mounts)
    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.COMPLETED, outcome.message
    assert await store.read(job.output_prefix() + "fetched.txt") == b"served-from-data\n"
    assert await store.read(job.output_prefix() + "read.txt") == b"served-from-data\n"
    assert await store.read(job.output_prefix() + "verdict") == b"read-only\n"


async def test_one_container_serves_every_ensure_and_a_new_runner_adopts_it(
    runner: ContainerServiceRunner,
    make_executor: MakeExecutor,
    engine: ContainerEngine,
    busybox_image: str,
) -> None:
    launch = trtis_like(busybox_image)
    first = await runner.ensure(launch)
    name = container_name(INSTANCE, launch.service_id)
    started = (await engine.inspect(name) or {})["Id"]
    assert await runner.ensure(launch) == first
    later = (await make_executor()).service_runner()
    assert await later.running() == [launch.service_id]
    assert await later.ensure(launch) == first
    assert (await engine.inspect(name) or {})["Id"] == started
    assert "service up" in [line async for line in later.log_lines(launch.service_id)]


async def test_another_command_is_another_service(
    runner: ContainerServiceRunner, busybox_image: str
) -> None:
    one = trtis_like(busybox_image)
    other_command = (*SERVE[:-1], SERVE[-1] + " -v")
    other = trtis_like(
        busybox_image,
        other_command,
        service_id=service_key(one.image, one.tag, other_command),
    )
    first, second = await runner.ensure(one), await runner.ensure(other)
    assert first.environment["NVIDIA_CLARA_TRTISURI"] != second.environment["NVIDIA_CLARA_TRTISURI"]
    assert await runner.running() == sorted([one.service_id, other.service_id])


async def test_a_stopped_service_keeps_its_log_and_its_data_for_the_next_start(
    runner: ContainerServiceRunner,
    engine: ContainerEngine,
    store: Store,
    busybox_image: str,
) -> None:
    command = (
        "sh",
        "-c",
        f"echo start >> {SERVICE_DATA_MACRO}/starts; cat {SERVICE_DATA_MACRO}/starts; "
        "exec sleep 600",
    )
    launch = trtis_like(busybox_image, command, http=(), volumes=())
    await runner.ensure(launch)
    await runner.stop(launch.service_id, grace=1.0)
    assert await engine.inspect(container_name(INSTANCE, launch.service_id)) is None
    assert await runner.running() == []
    assert (await store.read(launch.log_key)).decode().splitlines() == ["start"]
    await runner.ensure(launch)
    lines = [line async for line in runner.log_lines(launch.service_id)]
    assert lines == ["start", "start"]
    await runner.stop(launch.service_id, grace=1.0)
    await runner.stop(launch.service_id, grace=1.0)
    assert data_volume(INSTANCE, launch.service_id).endswith("-data")


async def test_a_running_services_log_is_kept_in_the_blob_store_as_it_grows(
    runner: ContainerServiceRunner, store: Store, busybox_image: str
) -> None:
    command = ("sh", "-c", "echo first; sleep 2; echo second; exec sleep 600")
    launch = trtis_like(busybox_image, command, http=(), volumes=())
    await runner.ensure(launch)

    async def kept() -> bool:
        try:
            return await store.read(launch.log_key) == b"first\nsecond\n"
        except NotFound:
            return False

    await eventually(kept, within=30.0)


async def test_a_service_that_crashes_at_start_fails_with_its_last_log_lines(
    runner: ContainerServiceRunner, engine: ContainerEngine, busybox_image: str
) -> None:
    command = ("sh", "-c", "echo loading models; echo no model repository >&2; exit 3")
    launch = trtis_like(busybox_image, command)
    with pytest.raises(ServiceFailed) as failed:
        await runner.ensure(launch)
    message = str(failed.value)
    assert "trtis exited at start with status 3" in message
    assert message.endswith("loading models\nno model repository")
    assert await engine.inspect(container_name(INSTANCE, launch.service_id)) is None
    assert [line async for line in runner.log_lines(launch.service_id)] == [
        "loading models",
        "no model repository",
    ]


async def test_a_service_that_never_listens_fails_after_its_ready_timeout(
    runner: ContainerServiceRunner, busybox_image: str
) -> None:
    command = ("sh", "-c", "echo still warming up; exec sleep 600")
    launch = trtis_like(busybox_image, command, ready_timeout=2.0)
    with pytest.raises(ServiceFailed, match="was not ready within 2 s") as failed:
        await runner.ensure(launch)
    assert str(failed.value).endswith("still warming up")


async def test_a_missing_image_fails_the_service_and_an_unknown_one_has_no_log(
    runner: ContainerServiceRunner,
) -> None:
    launch = trtis_like("localhost/aorta-test/no-such-image:1")
    with pytest.raises(ServiceFailed, match="could not start"):
        await runner.ensure(launch)
    with pytest.raises(NotFound):
        [line async for line in runner.log_lines("svc-0000000000000000")]
