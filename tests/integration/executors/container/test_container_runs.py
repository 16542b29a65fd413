"""The container executor against a real engine: Clara images, commands, read-only inputs,
limits, timeouts, cancels and missing images."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

from aorta.executors import Resources, RunReason
from aorta.executors.container.engine import ContainerEngine
from aorta.executors.container.executor import ContainerExecutor
from aorta.executors.container.settings import ContainerSettings, PullPolicy
from aorta.executors.container.spec import RUN_LABEL
from aorta.testing.images import tag_image
from aorta.testing.podman import PodmanEngine
from tests.integration.executors.conftest import Job, Store, eventually
from tests.integration.executors.container.conftest import MakeExecutor, in_image

EVERY_BYTE = bytes(range(256)) * 1024
NVCR_NAME = "nvcr.io/nvidia/clara/register-results:0.7.2-2010.1"


async def test_a_clara_image_without_a_command_reads_input_and_writes_output(
    executor: ContainerExecutor, job: Job, store: Store, clara_copy_image: str
) -> None:
    await store.put(job.run(()).inputs[0].blob_prefix + "scan.bin", EVERY_BYTE)
    await store.put(job.run(()).inputs[0].blob_prefix + "series/1.dcm", b"DICM\x00\x01")
    run = in_image(job.run(()), "aorta-test/clara-copy:latest")
    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.COMPLETED, outcome.message
    assert sorted(await store.keys(job.output_prefix())) == ["scan.bin", "series/1.dcm"]
    assert await store.read(job.output_prefix() + "scan.bin") == EVERY_BYTE
    assert await store.read(job.output_prefix() + "series/1.dcm") == b"DICM\x00\x01"
    log = (await store.read(run.log_key)).decode()
    assert log.count("copy started") == 1 and "copy done" in log


async def test_a_command_replaces_the_images_own(
    executor: ContainerExecutor, job: Job, store: Store, busybox_image: str
) -> None:
    run = in_image(
        job.run(()),
        busybox_image,
        "sh",
        "-c",
        'echo "$NVIDIA_CLARA_OUTPUTPATHS $COLOUR" > /output/env.txt; echo ran',
    )
    run = replace(run, environment={"COLOUR": "teal"})
    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.COMPLETED, outcome.message
    assert await store.read(job.output_prefix() + "env.txt") == b"op:/output teal\n"
    assert [line async for line in executor.log_lines(run.run_id)] == ["ran"]


async def test_inputs_are_read_only_inside_the_container(
    executor: ContainerExecutor, job: Job, store: Store, busybox_image: str
) -> None:
    await store.put(job.run(()).inputs[0].blob_prefix + "scan.bin", b"scan")
    script = (
        "if echo x > /input/new 2>/dev/null || echo x >> /input/scan.bin 2>/dev/null; "
        "then echo writable; else echo read-only; fi > /output/verdict"
    )
    run = in_image(job.run(()), busybox_image, "sh", "-c", script)
    await executor.start(run)
    assert (await executor.wait(run.run_id)).reason is RunReason.COMPLETED
    assert await store.read(job.output_prefix() + "verdict") == b"read-only\n"


async def test_isolation_seen_from_inside_the_container(
    executor: ContainerExecutor, job: Job, store: Store, busybox_image: str, tmp_path: Path
) -> None:
    blob_root = tmp_path / "blobs"
    assert blob_root.is_dir()
    script = (
        "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status > /output/status; "
        "env > /output/env; "
        "cat /proc/mounts > /output/mounts; "
        f"if [ -e '{blob_root}' ]; then echo visible; else echo absent; fi > /output/blobs; "
        "ls /sys/class/net > /output/net; "
        "echo ok > /tmp/scratch && cat /tmp/scratch > /output/tmp"
    )
    run = in_image(job.run(()), busybox_image, "sh", "-c", script)
    await executor.start(run)
    assert (await executor.wait(run.run_id)).reason is RunReason.COMPLETED
    status = dict(
        line.split(":", 1)
        for line in (await store.read(job.output_prefix() + "status")).decode().splitlines()
    )
    assert int(status["CapEff"].strip(), 16) == 0
    assert int(status["CapPrm"].strip(), 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    env = (await store.read(job.output_prefix() + "env")).decode()
    assert "AORTA_" not in env and "DOCKER_HOST" not in env and "SSH_AUTH_SOCK" not in env
    for name, value in os.environ.items():
        if "SECRET" in name or "PASSWORD" in name or "TOKEN" in name:
            assert value not in env
    assert await store.read(job.output_prefix() + "blobs") == b"absent\n"
    mounts = (await store.read(job.output_prefix() + "mounts")).decode().splitlines()
    targets = {line.split()[1] for line in mounts}
    system = ("/proc", "/dev", "/sys", "/etc/", "/run/")
    assert {t for t in targets if t != "/" and not t.startswith(system)} == {
        "/input",
        "/output",
        "/tmp",
    }
    assert (await store.read(job.output_prefix() + "net")).split() == [b"lo"]
    assert await store.read(job.output_prefix() + "tmp") == b"ok\n"


async def test_a_memory_limit_kills_and_says_out_of_memory(
    executor: ContainerExecutor, job: Job, busybox_image: str
) -> None:
    run = in_image(
        job.run(()), busybox_image, "sh", "-c", "dd if=/dev/zero of=/dev/null bs=256M count=1"
    )
    run = replace(run, resources=Resources(cpu=1, memory_mb=32))
    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.FAILED
    assert "out of memory (limit 32 MiB)" in outcome.message


async def test_a_run_past_its_timeout_is_stopped(
    executor: ContainerExecutor, job: Job, store: Store, busybox_image: str
) -> None:
    run = replace(
        in_image(job.run(()), busybox_image, "sh", "-c", "echo begun; sleep 60"), timeout=1.0
    )
    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.TIMEOUT
    assert "timeout of 1 s" in outcome.message
    assert "begun" in (await store.read(run.log_key)).decode()


async def test_a_cancel_stops_the_container(
    executor: ContainerExecutor, engine: ContainerEngine, job: Job, busybox_image: str
) -> None:
    run = in_image(job.run(()), busybox_image, "sh", "-c", "echo waiting; sleep 60")
    await executor.start(run)

    async def started() -> bool:
        return [line async for line in executor.log_lines(run.run_id)] == ["waiting"]

    await eventually(started, within=30)
    await executor.cancel(run.run_id, grace=1.0)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.CANCELLED
    assert await engine.list({RUN_LABEL: run.run_id}) == []


async def test_a_missing_image_fails_the_start_with_the_image_and_the_reason(
    executor: ContainerExecutor, make_executor: MakeExecutor, job: Job
) -> None:
    run = in_image(job.run(()), "aorta-test/absent:1.0")
    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.START_FAILED
    assert "aorta-test/absent:1.0" in outcome.message and "could not be pulled" in outcome.message

    never = await make_executor(ContainerSettings(pull_policy=PullPolicy.NEVER, instance="never"))
    second = replace(run, run_id=run.run_id + "-never")
    await never.start(second)
    outcome = await never.wait(second.run_id)
    assert outcome.reason is RunReason.START_FAILED
    assert "aorta-test/absent:1.0 is not in the container engine's storage" in outcome.message


async def test_locally_tagged_images_are_found_by_the_names_pipelines_use(
    executor: ContainerExecutor,
    podman_engine: PodmanEngine,
    job: Job,
    store: Store,
    clara_copy_image: str,
) -> None:
    tag_image(podman_engine.cli, clara_copy_image, NVCR_NAME)
    await store.put(job.run(()).inputs[0].blob_prefix + "result.json", b"{}")
    run = in_image(job.run(()), NVCR_NAME)
    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.COMPLETED, outcome.message  # no registry was reachable
    assert await store.read(job.output_prefix() + "result.json") == b"{}"


async def test_starting_a_run_twice_at_once_runs_it_once(
    executor: ContainerExecutor, job: Job, store: Store, busybox_image: str
) -> None:
    run = in_image(job.run(()), busybox_image, "sh", "-c", "echo started")
    await asyncio.gather(executor.start(run), executor.start(run))
    assert (await executor.wait(run.run_id)).reason is RunReason.COMPLETED
    assert (await store.read(run.log_key)).decode().count("started") == 1
