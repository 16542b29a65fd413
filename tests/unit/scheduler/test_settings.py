"""SchedulerSettings from an environment mapping, and the executor they name."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.bus.memory import MemoryBus
from aorta.errors import Unavailable
from aorta.executors.container.executor import ContainerExecutor
from aorta.executors.local.executor import LocalExecutor
from aorta.runtime.service import ServiceContext, service_context
from aorta.settings import Settings, SettingsError
from aorta_services.scheduler.app import make_executor
from aorta_services.scheduler.domain import Capacity, QueueWeights
from aorta_services.scheduler.settings import NodeFacts, SchedulerSettings
from tests.unit.executors.test_engine_probe import PODMAN_VERSION, engine_answers, fake_engine

NODE = NodeFacts(gpus=2, cpus=8, memory_mb=32000)


def read(environ: dict[str, str]) -> SchedulerSettings:
    return SchedulerSettings.from_env(environ, data_dir=Path("/data"), node=NODE)


def test_defaults_come_from_the_node_and_clara() -> None:
    settings = read({})
    assert settings.capacity == Capacity(gpus=(0, 1), cpu=8, memory_mb=32000, cpu_overcommit=4.0)
    assert settings.weights == QueueWeights(4, 2, 1)
    assert (settings.aging, settings.hold_after) == (300.0, 900.0)
    assert (settings.default_timeout, settings.max_timeout, settings.grace) == (600, 1800, 15.0)
    assert settings.lease_ttl == 10.0
    assert settings.executor == "local"
    assert settings.work_dir is None  # the local executor's own, outside the data dir
    assert settings.run_as == "aorta-operator"


def test_every_variable_is_read() -> None:
    settings = read(
        {
            "AORTA_SCHEDULER_GPUS": "0,3",
            "AORTA_SCHEDULER_CPUS": "2",
            "AORTA_SCHEDULER_MEMORY_MB": "4096",
            "AORTA_SCHEDULER_CPU_OVERCOMMIT": "1.5",
            "AORTA_SCHEDULER_WEIGHTS": "8:3:1",
            "AORTA_SCHEDULER_AGING": "60",
            "AORTA_SCHEDULER_HOLD_AFTER": "120",
            "AORTA_SCHEDULER_DEFAULT_TIMEOUT": "30",
            "AORTA_SCHEDULER_MAX_TIMEOUT": "90",
            "AORTA_SCHEDULER_GRACE": "2",
            "AORTA_SCHEDULER_LEASE_TTL": "3",
            "AORTA_SCHEDULER_RESYNC": "0.5",
            "AORTA_SCHEDULER_EXECUTOR": "kubernetes",
            "AORTA_SCHEDULER_WORK_DIR": "/scratch",
            "AORTA_LOCAL_RUN_AS": "1234:99",
        }
    )
    assert settings.capacity == Capacity(gpus=(0, 3), cpu=2, memory_mb=4096, cpu_overcommit=1.5)
    assert settings.weights == QueueWeights(8, 3, 1)
    assert (settings.aging, settings.hold_after) == (60.0, 120.0)
    assert (settings.default_timeout, settings.max_timeout, settings.grace) == (30, 90, 2.0)
    assert (settings.lease_ttl, settings.resync) == (3.0, 0.5)
    assert settings.executor == "kubernetes"
    assert settings.work_dir == Path("/scratch")
    assert settings.run_as == "1234:99"


@pytest.mark.parametrize("inside", ["/data/work", "/data", "/data/./runs"])
def test_a_work_dir_inside_the_data_dir_is_refused(inside: str) -> None:
    with pytest.raises(SettingsError, match=r"AORTA_SCHEDULER_WORK_DIR=.*inside the data dir"):
        read({"AORTA_SCHEDULER_WORK_DIR": inside})


@pytest.mark.parametrize(
    ("value", "gpus"), [("0", ()), ("1", (0,)), ("3", (0, 1, 2)), ("2,", (2,)), ("1, 0", (1, 0))]
)
def test_gpus_are_a_count_or_a_list_of_indices(value: str, gpus: tuple[int, ...]) -> None:
    assert read({"AORTA_SCHEDULER_GPUS": value}).capacity.gpus == gpus


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"AORTA_SCHEDULER_GPUS": "two"}, "AORTA_SCHEDULER_GPUS='two' is neither"),
        ({"AORTA_SCHEDULER_GPUS": "1,1"}, "names a device twice"),
        ({"AORTA_SCHEDULER_GPUS": "1,x"}, "not a list of device indices"),
        ({"AORTA_SCHEDULER_CPUS": "0"}, "AORTA_SCHEDULER_CPUS=0 is below the minimum 1"),
        ({"AORTA_SCHEDULER_CPU_OVERCOMMIT": "0.5"}, "below the minimum 1"),
        ({"AORTA_SCHEDULER_WEIGHTS": "4:2"}, "three whole numbers"),
        ({"AORTA_SCHEDULER_WEIGHTS": "400:2:1"}, "from 1 to 100"),
        ({"AORTA_SCHEDULER_DEFAULT_TIMEOUT": "2000"}, "above AORTA_SCHEDULER_MAX_TIMEOUT=1800"),
        ({"AORTA_SCHEDULER_LEASE_TTL": "0.1"}, "below the minimum 0.3"),
        ({"AORTA_SCHEDULER_EXECUTOR": "docker"}, "must be one of local, kubernetes"),
        ({"AORTA_SCHEDULER_AGING": "inf"}, "not a finite number"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(
    environ: dict[str, str], complaint: str
) -> None:
    with pytest.raises(SettingsError, match=complaint):
        read(environ)


def test_aorta_executor_names_the_executor_and_the_older_name_still_works() -> None:
    assert read({"AORTA_EXECUTOR": "container"}).executor == "container"
    assert read({"AORTA_SCHEDULER_EXECUTOR": "auto"}).executor == "auto"
    both = {"AORTA_EXECUTOR": "local", "AORTA_SCHEDULER_EXECUTOR": "kubernetes"}
    assert read(both).executor == "local"
    with pytest.raises(SettingsError, match="AORTA_EXECUTOR='docker' must be one of"):
        read({"AORTA_EXECUTOR": "docker"})


def test_the_node_is_measured() -> None:
    facts = NodeFacts.measure(gpus=1)
    assert facts.gpus == 1 and facts.cpus >= 1 and facts.memory_mb >= 1


@pytest.fixture
async def context(tmp_path: Path) -> AsyncIterator[ServiceContext]:
    settings = Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)})
    bus = MemoryBus(default_timeout=1.0)
    async with service_context(settings, bus) as context:
        yield context
    await bus.close()


async def test_the_local_executor_is_the_default(context: ServiceContext) -> None:
    executor = await make_executor(read({}), context, {})
    assert isinstance(executor, LocalExecutor)
    await executor.close()


async def test_the_kubernetes_executor_reads_the_k8s_settings_of_the_same_environment(
    context: ServiceContext, tmp_path: Path
) -> None:
    settings = read({"AORTA_SCHEDULER_EXECUTOR": "kubernetes"})
    with pytest.raises(SettingsError, match="AORTA_K8S_NAMESPACE='Jobs' is not a DNS label"):
        await make_executor(settings, context, {"AORTA_K8S_NAMESPACE": "Jobs"})
    missing = tmp_path / "no-kubeconfig"
    with pytest.raises(
        Unavailable, match=re.escape(f"cannot load Kubernetes credentials from {missing}")
    ):
        await make_executor(settings, context, {"AORTA_K8S_KUBECONFIG": str(missing)})


async def test_auto_runs_containers_on_the_engine_that_answers(
    context: ServiceContext, tmp_path: Path
) -> None:
    socket = tmp_path / "podman.sock"
    environ = {"AORTA_CONTAINER_HOST": f"unix://{socket}"}
    async with fake_engine(socket, engine_answers(PODMAN_VERSION)):
        executor = await make_executor(read({"AORTA_EXECUTOR": "auto"}), context, environ)
        try:
            assert isinstance(executor, ContainerExecutor)
        finally:
            await executor.close()


async def test_auto_runs_host_processes_without_an_engine(
    context: ServiceContext, tmp_path: Path
) -> None:
    environ = {"AORTA_CONTAINER_HOST": f"unix://{tmp_path / 'none.sock'}"}
    executor = await make_executor(read({"AORTA_EXECUTOR": "auto"}), context, environ)
    assert isinstance(executor, LocalExecutor)
    await executor.close()
    with pytest.raises(Unavailable, match="no container engine answered"):
        await make_executor(read({"AORTA_EXECUTOR": "container"}), context, environ)


def test_a_local_scheduler_never_loads_the_kubernetes_client() -> None:
    # A fresh interpreter: this one may have loaded the client for another test.
    script = (
        "import sys\n"
        "import aorta.executors.local.executor, aorta_services.scheduler.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('kubernetes')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"
