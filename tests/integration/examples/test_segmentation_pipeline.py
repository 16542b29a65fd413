"""The example pipeline end to end through the local executor, operator after operator in DAG
order as the scheduler runs them, with the real blob layout; then its report is checked against
the organs the generator drew."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np

from aorta import ids, operator_env, payload_layout
from aorta.blobs.local import LocalBlobStore
from aorta.executors import OperatorRun, Resources, RunReason, VolumeBinding
from aorta.executors.local.executor import LocalExecutor
from aorta.pipeline_spec import Pipeline, load_pipeline, resolve_parameters
from tests.integration.examples.conftest import EXAMPLE, OPERATORS


def operator_run(pipeline: Pipeline, name: str, job_id: str, payload_id: str) -> OperatorRun:
    """What the scheduler asks the executor for: attempt 1 of operator `name`."""
    operator = pipeline.operator(name)
    inputs = tuple(
        VolumeBinding(
            operator_env.input_entry_name(spec.from_operator, spec.output_name),
            str(spec.path),
            payload_layout.input_prefix(payload_id)
            if spec.from_operator is None
            else payload_layout.operator_output_prefix(
                payload_id, spec.from_operator, spec.output_name
            ),
        )
        for spec in operator.inputs
    )
    outputs = tuple(
        VolumeBinding(
            operator_env.output_entry_name(name, spec.name),
            str(spec.path),
            payload_layout.operator_output_prefix(payload_id, name, spec.name),
        )
        for spec in operator.outputs
    )
    return OperatorRun(
        run_id=f"{job_id}-{name}-1",
        job_id=job_id,
        job_name="segmentation-example",
        payload_id=payload_id,
        operator=name,
        attempt=1,
        image=operator.container.image,
        tag=operator.container.tag,
        command=operator.container.command,
        inputs=inputs,
        outputs=outputs,
        resources=Resources(
            cpu=int(operator.requests.cpu), memory_mb=int(operator.requests.memory)
        ),
        timeout=float(pipeline.stage_timeout(name)),
        log_key=payload_layout.operator_log_key(job_id, name),
        environment=dict(operator.variables),
    )


async def read(blobs: LocalBlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.get(key)])


async def upload(blobs: LocalBlobStore, key: str, path: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield await asyncio.to_thread(path.read_bytes)

    await blobs.put(key, chunks())


async def test_the_pipeline_finds_the_organs_the_generator_drew(
    tmp_path: Path, generator: ModuleType
) -> None:
    blobs = await LocalBlobStore.open(tmp_path / "blobs")
    executor = LocalExecutor(blobs, tmp_path / "work")
    job_id, payload_id = ids.new_id(), ids.new_id()
    scan = generator.write_input(tmp_path / "upload")
    await upload(blobs, payload_layout.input_key(payload_id, scan.name), scan)
    loaded = load_pipeline({"pipeline.yml": (EXAMPLE / "pipeline.yml").read_text()})
    assert loaded.warnings == ()
    # What Jobs.Start does with the variable a local platform passes.
    pipeline = resolve_parameters(loaded.pipeline, {"OPERATORS_DIR": str(OPERATORS)})

    try:
        for name in pipeline.topological_order():
            run = operator_run(pipeline, name, job_id, payload_id)
            await executor.start(run)
            outcome = await executor.wait(run.run_id)
            assert outcome.reason is RunReason.COMPLETED, outcome.message
        writer = payload_layout.operator_output_prefix(payload_id, "writer", None)
        stored = sorted(
            [info.key async for info in blobs.list(payload_layout.payload_prefix(payload_id))]
        )
        report = json.loads(await read(blobs, writer + "report.json"))
        text = (await read(blobs, writer + "report.txt")).decode()
        result = await read(blobs, writer + "result.nii.gz")
        segmentation_log = (
            await read(blobs, payload_layout.operator_log_key(job_id, "segmentation"))
        ).decode()
    finally:
        await executor.close()
        await blobs.close()

    prefix = payload_layout.payload_prefix(payload_id)
    assert [key[len(prefix) :] for key in stored] == [
        "input/ct.nii.gz",
        "operators/reader/volume/volume.json",
        "operators/reader/volume/volume.nii.gz",
        "operators/segmentation/mask/labels.json",
        "operators/segmentation/mask/mask.nii.gz",
        "operators/writer/report.json",
        "operators/writer/report.txt",
        "operators/writer/result.nii.gz",
    ]
    truth = generator.ground_truth()
    found = {row["name"]: row for row in report["labels"]}
    assert set(found) == {"liver", "spleen", "kidney"}
    for name, voxels in truth.items():
        assert abs(found[name]["voxels"] - voxels) <= 0.02 * voxels, (name, found[name], voxels)
        assert found[name]["volume_ml"] == round(found[name]["voxels"] * 1.5 * 1.5 * 3.0 / 1000, 2)
    assert [found[name]["regions"] for name in ("liver", "spleen", "kidney")] == [1, 1, 2]
    assert (
        found["liver"]["mean_intensity"]
        < found["spleen"]["mean_intensity"]
        < found["kidney"]["mean_intensity"]
    )
    assert report["shape"] == list(generator.SHAPE)
    assert report["voxel_size_mm"] == [1.5, 1.5, 3.0]
    assert (report["job"]["name"], report["source"], report["method"]) == (
        "segmentation-example",
        "ct.nii.gz",
        "thresholds",
    )
    assert "kidney" in text and "ct.nii.gz" in text

    mask = nib.Nifti1Image.from_bytes(gzip.decompress(result))
    assert mask.shape == generator.SHAPE
    labels = np.asarray(mask.dataobj)
    assert labels.dtype == np.uint8
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 3}
    assert "kidney: 2 region(s)" in segmentation_log


def test_rendering_gives_what_the_jobs_start_variable_gives(renderer: ModuleType) -> None:
    original = load_pipeline({"pipeline.yml": (EXAMPLE / "pipeline.yml").read_text()}).pipeline
    rendered = load_pipeline({"pipeline.yml": renderer.render()}).pipeline

    with_variable = resolve_parameters(original, {"OPERATORS_DIR": str(OPERATORS)})
    assert resolve_parameters(rendered, {}).operators == with_variable.operators
    # Deployed as images, the scripts are where the images keep them.
    assert (
        resolve_parameters(original, {}).operator("reader").container.command[-1]
        == "/app/reader/main.py"
    )
    assert with_variable.operator("writer").container.command == (
        "python",
        "-u",
        "-m",
        "aorta.driver.app",
        str(OPERATORS / "writer" / "main.py"),
    )
