"""Podman's libpod API, used for runs with GPUs: the same container as through the Docker API
(seen from inside), and GPUs asked for by CDI name."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from aorta.executors import Resources, RunReason
from aorta.executors.container.engine import ContainerEngine
from aorta.executors.container.executor import ContainerExecutor
from aorta.executors.container.libpod_spec import CreateApi, CreateRequest, libpod_body
from aorta.executors.container.outcome import memory_limit
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.container.spec import RunPlan
from tests.integration.executors.conftest import Job
from tests.integration.executors.container.conftest import in_image

INSIDE = (
    "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status > /output/status; "
    "ls /sys/class/net > /output/net; "
    'echo "$NVIDIA_CLARA_INPUTPATHS" > /output/paths; '
    "cat /input/scan.txt > /output/copy; "
    "if echo x > /input/new 2>/dev/null; then echo writable; else echo read-only; fi "
    "> /output/input; "
    "echo ok > /tmp/scratch && cat /tmp/scratch > /output/tmp"
)


async def test_a_libpod_container_is_the_same_isolated_container(
    engine: ContainerEngine, job: Job, busybox_image: str, tmp_path: Path
) -> None:
    run = replace(
        in_image(job.run(()), busybox_image, "sh", "-c", INSIDE),
        resources=Resources(cpu=1, memory_mb=48),
    )
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    os.chmod(outputs, 0o777)
    (inputs / "scan.txt").write_text("scan\n")
    plan = RunPlan(run.run_id, run.operator, run.outputs, run.log_key, 60, str(tmp_path))
    body = libpod_body(
        run,
        volumes={"/input": inputs, "/output": outputs},
        plan=plan,
        settings=ContainerSettings(instance="aorta-test"),
    )
    name = f"libpod-{run.run_id}"
    await engine.create(name, CreateRequest(CreateApi.LIBPOD, body))
    try:
        await engine.start(name)
        assert await engine.wait(name) == 0
        container = await engine.inspect(name)
        assert container is not None and memory_limit(container) == "48 MiB"
        assert RunPlan.from_labels(container["Config"]["Labels"]) == plan
    finally:
        await engine.remove(name)
    status = dict(line.split(":", 1) for line in (outputs / "status").read_text().splitlines())
    assert int(status["CapEff"].strip(), 16) == 0 and status["NoNewPrivs"].strip() == "1"
    assert (outputs / "net").read_text().split() == ["lo"]
    assert (outputs / "paths").read_text() == "payload:/input\n"
    assert (outputs / "copy").read_text() == "scan\n"
    assert (outputs / "input").read_text() == "read-only\n"
    assert (outputs / "tmp").read_text() == "ok\n"


async def test_a_gpu_run_on_podman_asks_for_its_devices_by_cdi_name(
    executor: ContainerExecutor, job: Job, busybox_image: str
) -> None:
    # Device 97 exists on no host: the engine must refuse it by that CDI name, which shows the
    # request reached it (a host with a CDI specification resolves the devices it has).
    run = replace(
        in_image(job.run(()), busybox_image, "true"),
        resources=Resources(cpu=1, gpu=1, memory_mb=64, gpu_devices=(97,)),
    )
    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.START_FAILED
    assert "nvidia.com/gpu=97" in outcome.message
