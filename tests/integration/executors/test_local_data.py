"""The local executor moves a run's bytes: inputs in, outputs out, the environment contract
between them, the workspace cleaned up afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aorta import payload_layout
from aorta.blobs.local import LocalBlobStore
from aorta.executors import RunReason, VolumeBinding
from aorta.executors.local import run as local_run
from aorta.executors.local.executor import LocalExecutor
from aorta.executors.local.run_plans import HeldPlan, clear_run
from aorta.executors.workspace import Workspace
from tests.integration.executors.conftest import OPERATORS, Job, Store

REPORT_ENV = ("python", "-u", "-m", "aorta.driver.app", str(OPERATORS / "report_env.py"))


async def test_a_driver_operator_gets_its_inputs_its_contract_and_its_outputs_stored(
    executor: LocalExecutor, job: Job, store: Store, tmp_path: Path, interpreter_dir: Path
) -> None:
    payload_input = payload_layout.input_prefix(job.payload_id)
    upstream = job.output_prefix("reader", "volume")
    await store.put(payload_input + "scan.nii", b"scan")
    await store.put(payload_input + "series/a/1.dcm", b"one")
    await store.put(payload_input + "series/b/2.dcm", b"two")
    await store.put(upstream + "volume.bin", b"volume")
    await store.put(job.output_prefix("reader", "volumeX") + "not-mine", b"x")
    run = job.run(
        REPORT_ENV,
        operator="infer",
        inputs=(
            VolumeBinding("payload", "/input", payload_input),
            VolumeBinding("reader/volume", "/data/volume", upstream),
        ),
        outputs=(
            VolumeBinding(
                "infer/segmentation", "/output", job.output_prefix("infer", "segmentation")
            ),
            VolumeBinding("infer/rendering", "/publish", job.output_prefix("infer", "rendering")),
        ),
        timeout=90,
        environment={"TARGET": "spleen", "NVIDIA_TRITON_GRPCURI": "localhost:8001"},
        gpu_devices=(0, 2),
    )

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.COMPLETED, outcome.message
    assert outcome.exit_code == 0
    segmentation = job.output_prefix("infer", "segmentation")
    assert await store.keys(segmentation) == [
        "copies/payload/scan.nii",
        "copies/payload/series/a/1.dcm",
        "copies/payload/series/b/2.dcm",
        "copies/reader_volume/volume.bin",
        "seen.json",
    ]
    assert await store.read(segmentation + "copies/payload/series/b/2.dcm") == b"two"
    assert await store.keys(job.output_prefix("infer", "rendering")) == []

    seen = json.loads(await store.read(segmentation + "seen.json"))
    workspace = tmp_path / "work" / job.job_id / "infer-1"
    volumes = workspace / "volumes"
    assert seen["inputs"] == [
        ["payload", str(volumes / "input")],
        ["reader/volume", str(volumes / "data/volume")],
    ]
    assert seen["outputs"] == [
        ["infer/segmentation", str(volumes / "output")],
        ["infer/rendering", str(volumes / "publish")],
    ]
    assert seen["files"]["payload"] == ["scan.nii", "series/a/1.dcm", "series/b/2.dcm"]
    assert (seen["job_id"].replace("-", ""), seen["job_name"], seen["stage"]) == (
        job.job_id,
        "test-job",
        "infer",
    )
    env = seen["env"]
    assert env["NVIDIA_CLARA_JOBID"] == job.job_id
    assert env["NVIDIA_CLARA_PAYLOADID"] == job.payload_id
    assert env["NVIDIA_CLARA_STAGENAME"] == "infer"
    assert env["NVIDIA_CLARA_STAGETIMEOUT"] == "90"
    assert env["NVIDIA_CLARA_NOSYNCLOCK"] == "1"
    assert env["NVIDIA_TRITON_GRPCURI"] == "localhost:8001"
    assert env["TARGET"] == "spleen"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,2"
    assert env["HOME"] == str(workspace / "home")
    assert env["TMPDIR"] == str(workspace / "tmp")
    assert env["LANG"] == "C.UTF-8"
    assert env["PATH"].split(os.pathsep)[0] == str(interpreter_dir)
    assert seen["cwd"] == str(workspace / "home")
    assert Path(seen["executable"]).parent == interpreter_dir
    # Nothing of the platform's own environment reaches the operator.
    assert not {name for name in env if name.startswith(("AORTA_", "PYTEST_"))}
    # The workspace goes once the outcome is delivered (`close` waits for it); the log stays
    # in the blob store.
    await executor.close()
    assert not workspace.exists()
    assert not workspace.parent.exists()
    log = (await store.read(run.log_key)).decode()
    assert "reported 4 input files" in log


async def test_a_retry_replaces_what_the_previous_attempt_stored(
    executor: LocalExecutor, job: Job, store: Store
) -> None:
    first = job.run(
        ("sh", "-c", 'cd "${NVIDIA_CLARA_OUTPUTPATHS#*:}" && echo 1 > a.txt && echo 1 > b.txt')
    )
    second = job.run(
        ("sh", "-c", 'cd "${NVIDIA_CLARA_OUTPUTPATHS#*:}" && mkdir d && echo 2 > d/a.txt'),
        attempt=2,
    )
    await store.put(job.output_prefix("op-other") + "kept", b"other operator")

    for run in (first, second):
        await executor.start(run)
        assert (await executor.wait(run.run_id)).reason is RunReason.COMPLETED

    assert await store.keys(job.output_prefix()) == ["d/a.txt"]
    assert await store.read(job.output_prefix() + "d/a.txt") == b"2\n"
    assert await store.keys(job.output_prefix("op-other")) == ["kept"]


async def test_a_failed_run_stores_no_outputs_and_keeps_the_earlier_ones(
    executor: LocalExecutor, job: Job, store: Store
) -> None:
    await store.put(job.output_prefix() + "earlier.txt", b"earlier")
    run = job.run(("sh", "-c", 'echo partial > "${NVIDIA_CLARA_OUTPUTPATHS#*:}/x"; exit 4'))

    await executor.start(run)

    assert (await executor.wait(run.run_id)).exit_code == 4
    assert await store.keys(job.output_prefix()) == ["earlier.txt"]


async def test_an_output_name_no_blob_key_can_have_fails_the_run_and_keeps_earlier_outputs(
    executor: LocalExecutor, job: Job, store: Store
) -> None:
    await store.put(job.output_prefix() + "earlier.txt", b"earlier")
    run = job.run(
        ("sh", "-c", 'cd "${NVIDIA_CLARA_OUTPUTPATHS#*:}" && touch ok "$(printf \'a\\tb\')"')
    )

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.FAILED
    assert outcome.exit_code == 0
    assert "could not be stored" in outcome.message
    assert "/output/a\tb" in outcome.message
    assert await store.keys(job.output_prefix()) == ["earlier.txt"]


async def test_links_are_not_stored_and_the_log_says_so(
    executor: LocalExecutor, job: Job, store: Store
) -> None:
    run = job.run(
        (
            "sh",
            "-c",
            'cd "${NVIDIA_CLARA_OUTPUTPATHS#*:}" && echo x > real && ln -s /etc/hostname link',
        )
    )

    await executor.start(run)

    assert (await executor.wait(run.run_id)).reason is RunReason.COMPLETED
    assert await store.keys(job.output_prefix()) == ["real"]
    assert (
        "not stored (not regular files): /output/link" in (await store.read(run.log_key)).decode()
    )


async def test_a_run_that_wrote_nothing_stores_nothing_and_clears_an_earlier_log(
    executor: LocalExecutor,
    job: Job,
    store: Store,
    blobs: LocalBlobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = job.run(("true",), attempt=2)
    await store.put(run.log_key, b"attempt 1 said this\n")
    changes: list[str] = []

    def noting(name: str) -> Callable[..., Any]:
        original = getattr(blobs, name)

        def noted(key: str, *args: Any) -> Any:
            changes.append(f"{name} {key}")
            return original(key, *args)

        return noted

    for name in ("put", "delete", "delete_prefix", "copy"):
        monkeypatch.setattr(blobs, name, noting(name))

    await executor.start(run)

    assert (await executor.wait(run.run_id)).reason is RunReason.COMPLETED
    # The earlier attempt's log goes (ReadLogs reads no log as no lines); nothing is put.
    assert changes == [f"delete {run.log_key}"]
    assert await store.keys(f"logs/{job.job_id}/") == []
    assert await store.keys(job.output_prefix()) == []
    assert await store.keys(payload_layout.payload_checksums_prefix(job.payload_id)) == []


async def test_keep_workspaces_leaves_the_folders_for_inspection(
    blobs: LocalBlobStore, job: Job, tmp_path: Path
) -> None:
    executor = LocalExecutor(blobs, tmp_path / "kept", keep_workspaces=True)
    run = job.run(("sh", "-c", 'echo kept > "${NVIDIA_CLARA_OUTPUTPATHS#*:}/file"'))
    try:
        await executor.start(run)
        assert (await executor.wait(run.run_id)).succeeded
    finally:
        await executor.close()

    workspace = tmp_path / "kept" / job.job_id / "op-1"
    assert (workspace / "volumes/output/file").read_text() == "kept\n"
    assert (workspace / "operator.log").exists()


async def test_a_leftover_workspace_of_a_dead_process_is_replaced(
    executor: LocalExecutor, job: Job, store: Store, tmp_path: Path
) -> None:
    stale = tmp_path / "work" / job.job_id / "op-1" / "volumes" / "output"
    stale.mkdir(parents=True)
    (stale / "stale.txt").write_text("from a crashed platform")
    stale.chmod(0o500)  # operators may leave read-only folders behind
    run = job.run(("sh", "-c", 'echo new > "${NVIDIA_CLARA_OUTPUTPATHS#*:}/new.txt"'))

    await executor.start(run)

    assert (await executor.wait(run.run_id)).succeeded
    assert await store.keys(job.output_prefix()) == ["new.txt"]


async def test_a_run_reports_when_it_staged_ran_exited_and_stored(
    executor: LocalExecutor, job: Job, store: Store
) -> None:
    payload_input = payload_layout.input_prefix(job.payload_id)
    await store.put(payload_input + "scan.nii", b"scan")
    output = job.output_prefix("copy")
    run = job.run(
        ("sh", "-c", "sleep 0.2"),
        operator="copy",
        inputs=(VolumeBinding("payload", "/input", payload_input),),
        outputs=(VolumeBinding("copy", "/output", output),),
    )

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.COMPLETED
    staging, running, exited, stored = (
        outcome.times.staging,
        outcome.times.running,
        outcome.times.exited,
        outcome.times.stored,
    )
    assert staging is not None and running is not None
    assert exited is not None and stored is not None
    assert staging <= running <= exited <= stored
    # `running` is stamped once the start is seen, which a busy loop may see late; staging
    # surely came before the command's 0.2 s.
    assert exited - staging >= 0.2


async def test_the_outcome_does_not_wait_for_the_workspace_removal_but_close_does(
    executor: LocalExecutor, job: Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The removal runs in a worker thread (with the plan's), so it is held there.
    gate, removing = threading.Event(), threading.Event()

    def held(
        workspace: Workspace | None, plan: HeldPlan | None, declared: list[str]
    ) -> list[tuple[str, str]]:
        removing.set()
        gate.wait(timeout=30)
        return clear_run(workspace, plan, declared)

    monkeypatch.setattr(local_run, "clear_run", held)
    run = job.run(("true",))
    await executor.start(run)

    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.COMPLETED, outcome.message
    assert await asyncio.to_thread(removing.wait, 30)
    job_folder = tmp_path / "work" / job.job_id
    assert job_folder.exists()
    closing = asyncio.create_task(executor.close())
    # Nothing else may let `close` return while the removal is held: a short wait suffices.
    done, _ = await asyncio.wait({closing}, timeout=0.2)
    assert not done
    gate.set()
    await asyncio.wait_for(closing, timeout=30)
    assert not job_folder.exists()
