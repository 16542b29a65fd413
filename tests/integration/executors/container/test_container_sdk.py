"""An operator written with the SDK, packaged as Clara packages theirs (an image whose
entrypoint is the driver, no `command` in the definition), sees its declared container paths."""

from __future__ import annotations

import json
import uuid

import pytest

from aorta.executors import RunReason
from aorta.executors.container.executor import ContainerExecutor
from aorta.testing.images import build_python_operator_image
from aorta.testing.podman import PodmanEngine
from tests.integration.executors.conftest import OPERATORS, Job, Store
from tests.integration.executors.container.conftest import in_image

SDK_OPERATOR_IMAGE = "localhost/aorta-test/report-env:latest"


@pytest.fixture(scope="module")
def report_env_image(podman_engine: PodmanEngine) -> str:
    return build_python_operator_image(
        podman_engine.cli,
        SDK_OPERATOR_IMAGE,
        files={"/app/main.py": OPERATORS / "report_env.py"},
        entrypoint=["python3", "-u", "-m", "aorta.driver.app", "/app/main.py"],
    )


@pytest.mark.timeout(600)
async def test_an_sdk_operator_image_reads_its_declared_paths(
    executor: ContainerExecutor, job: Job, store: Store, report_env_image: str
) -> None:
    scan = bytes(range(256)) * 64
    await store.put(job.run(()).inputs[0].blob_prefix + "study/scan.bin", scan)
    run = in_image(job.run(()), "aorta-test/report-env:latest")
    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.COMPLETED, outcome.message
    seen = json.loads(await store.read(job.output_prefix() + "seen.json"))
    assert seen["inputs"] == [["payload", "/input"]]
    assert seen["outputs"] == [["op", "/output"]]
    assert seen["files"] == {"payload": ["study/scan.bin"]}
    assert uuid.UUID(seen["job_id"]) == uuid.UUID(job.job_id) and seen["stage"] == "op"
    assert not [name for name in seen["env"] if name.startswith("AORTA_")]
    assert await store.read(job.output_prefix() + "copies/payload/study/scan.bin") == scan
    assert "reported 1 input files" in (await store.read(run.log_key)).decode()
