"""Every service with two replicas in processes of their own, one replica SIGKILLed mid-job.

One platform for the module (`aorta.testing.split`): two replicas each of the gateway,
pipelines, payloads, models and scheduler (one leading, one standing by), and the node's
monitor. Each case runs the three-operator job of `test_jobs_processes` through one gateway,
SIGKILLs one replica of one service while the middle operator runs (the scheduler's leader; for
the models service, the replica that owns the Triton server the job holds, its middle operator
listing a model), and reads the outcome through the other gateway: HEALTHY, every output, each
operator completed exactly once. Each service is killed once, so it still has its second
replica when its turn comes; the cases share the platform to stay CI-sized.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from aorta.api import models_pb2_grpc
from aorta.cli.model_archive import zip_folder
from aorta.settings import Settings
from aorta.store.factory import open_state_store
from aorta.testing.split import SplitPlatform, split_platform
from aorta_services.models.server_mirror import COLLECTION
from tests.e2e.api_client import client
from tests.e2e.test_jobs_processes import (
    OPERATOR,
    SCHEDULER_ENV,
    check_outcome,
    definition,
    leader_pid,
    release,
    wait_for_file,
)
from tests.integration.models.test_triton_pool import EXAMPLE, _upload

COUNTS = {"pipelines": 2, "payloads": 2, "models": 2, "scheduler": 2, "monitor": 1, "gateway": 2}
KILLED = ("pipelines", "payloads", "models", "scheduler", "gateway")


async def upload_model(target: str) -> None:
    """Uploads the example segmentation model through the gateway at `target`."""
    async with grpc.aio.insecure_channel(target) as channel:
        answer = await models_pb2_grpc.ModelsStub(channel).UploadModel(_upload(zip_folder(EXAMPLE)))
    assert answer.header.code == 0, list(answer.header.messages)


async def triton_owner_pid(settings: Settings, job_id: str) -> int:
    """The process of the models replica that owns the job's Triton server (replicas are
    named `<host>-<pid>-<random>`)."""
    store = await open_state_store(settings)
    try:
        [record] = await store.collection(COLLECTION).find({"job_id": job_id})
    finally:
        await store.close()
    return int(str(record["owner"]).rsplit("-", 2)[1])


async def until_no_record_of(settings: Settings, job_id: str, within: float = 30.0) -> None:
    store = await open_state_store(settings)
    try:
        async with asyncio.timeout(within):
            while await store.collection(COLLECTION).count({"job_id": job_id}):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SplitPlatform]:
    folder = tmp_path_factory.mktemp("replicas")
    # A killed models replica of this host is dead at once (its pid is gone), so the heartbeat
    # only has to outlast a stall: at 1.5 s a busy machine once stalled a live replica past it,
    # the other took over its claim, and the job got two Triton servers.
    environ = {**SCHEDULER_ENV, "AORTA_MODELS_REPLICA_TTL": "6"}
    with split_platform(folder, COUNTS, environ) as started:
        yield started


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("service", KILLED)
async def test_killing_one_replica_mid_job_changes_no_outcome(
    platform: SplitPlatform, service: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    marks.chmod(0o777)  # the operators' user, not the platform's, writes here
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    replicas = platform.of(service)
    assert len(replicas) == 2, f"{service} should have two live replicas"
    submit_to, read_from = platform.gateways
    if service == "gateway":
        # The client reads through the gateway that stays.
        submit_to, read_from = read_from, submit_to
    text = definition(script, marks)
    if service == "models":
        # The job holds a Triton server while it runs: the replica that owns it is killed.
        await upload_model(submit_to)
        text = text.replace("- name: slow\n", "- name: slow\n  models: [{name: segmentation}]\n")
    async with client(int(submit_to.rsplit(":", 1)[1])) as api:
        job_id, _ = await api.submit(text)
    await wait_for_file(marks / "slow.pid")
    settings = Settings.from_env(platform.environ)
    if service == "scheduler":
        leader = await leader_pid(settings)
        victim = next(r for r in replicas if r.process.pid == leader)
    elif service == "models":
        owner = await triton_owner_pid(settings, job_id)
        victim = next(r for r in replicas if r.process.pid == owner)
    else:
        victim = replicas[0] if service != "gateway" else replicas[1]
    victim.kill()
    release(marks)
    async with client(int(read_from.rsplit(":", 1)[1])) as api:
        status = await api.stopped(job_id)
    check_outcome(status, marks, Path(platform.environ["AORTA_DATA_DIR"]))
    assert len(platform.of(service)) == 1
    if service == "models":
        # The survivor reaps the dead replica's record (its tritonserver died with it).
        await until_no_record_of(settings, job_id)
