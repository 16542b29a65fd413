"""The platform the operator SDK's end-to-end tests run jobs on, and NVIDIA's client running
them: gateway, pipelines, payloads and scheduler (real local executor) in this process on a real
nats-server, and `run_job`, which drives one job through `nvidia-clara-client` as a Clara user
would and downloads every operator output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aorta.bus.nats import NatsBus
from aorta.runtime.service import Running, service_context
from aorta.settings import Settings
from aorta.testing.clara_client import run_clara_python
from aorta.testing.nats import async_nats_server
from aorta_services.gateway import app as gateway_app
from aorta_services.payloads import app as payloads_app
from aorta_services.pipelines import app as pipelines_app
from aorta_services.scheduler import app as scheduler_app

JOB_STOPPED, JOB_HEALTHY, OPERATOR_COMPLETED = 3, 1, 3
"""Clara's numbers for JobState.Stopped, JobStatus.Healthy and an operator's COMPLETED."""

RUN_JOB = """
import json, sys, time
from pathlib import Path
import nvidia_clara.pipeline_types as pipeline_types
from nvidia_clara.jobs_client import JobsClient
from nvidia_clara.payloads_client import PayloadsClient
from nvidia_clara.pipelines_client import PipelinesClient

target, definition, inputs, results, job_name = sys.argv[1:6]
definition, inputs, results = Path(definition), Path(inputs), Path(results)
jobs, payloads, pipelines = JobsClient(target), PayloadsClient(target), PipelinesClient(target)
files = [pipeline_types.PipelineDefinition(name=definition.name, content=definition.read_text())]
pipeline_id = pipelines.create_pipeline(definition=files)
job = jobs.create_job(job_name=job_name, pipeline_id=pipeline_types.PipelineId(pipeline_id.value))
for path in sorted(inputs.iterdir()):
    with path.open("rb") as data:
        payloads.upload(payload_id=job.payload_id, blob_name=path.name, file_object=data)
jobs.start_job(job_id=job.job_id)
deadline = time.monotonic() + 60
status = jobs.get_status(job_id=job.job_id)
while status.job_state != 3 and time.monotonic() < deadline:
    time.sleep(0.1)
    status = jobs.get_status(job_id=job.job_id)
downloaded = []
for file in payloads.get_details(payload_id=job.payload_id).file_details:
    if file.name.startswith("/operators/"):
        local = results / file.name[len("/operators/"):]
        local.parent.mkdir(parents=True, exist_ok=True)
        with local.open("wb") as out:
            payloads.download_from(
                payload_id=job.payload_id, blob_name="." + file.name, dest_obj=out
            )
        downloaded.append(file.name)
operators = {name: int(d["status"]) for name, d in status.operator_details.items()}
print(json.dumps({
    "job_id": job.job_id.value,
    "state": int(status.job_state),
    "status": int(status.job_status),
    "messages": list(status.messages),
    "operators": operators,
    "downloaded": sorted(downloaded),
    "logs": {name: jobs.job_logs(job_id=job.job_id, operator_name=name) for name in operators},
}))
"""


@dataclass(frozen=True)
class JobRun:
    """What NVIDIA's client saw of one job it ran, and where it put the operators' outputs."""

    seen: dict[str, Any]
    results: Path

    @property
    def job_id(self) -> str:
        return str(self.seen["job_id"])

    def assert_healthy(self, *operators: str) -> None:
        """The job ended STOPPED and HEALTHY with every one of `operators` COMPLETED."""
        seen = self.seen
        assert (seen["state"], seen["status"]) == (JOB_STOPPED, JOB_HEALTHY), seen
        assert seen["operators"] == dict.fromkeys(operators, OPERATOR_COMPLETED), seen

    def json(self, relative: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.results / relative).read_text())
        return loaded


@pytest.fixture
async def sdk_platform(tmp_path: Path) -> AsyncIterator[str]:
    """`host:port` of a gateway before the pipelines, payloads and scheduler services."""
    async with async_nats_server(tmp_path / "nats") as server:
        settings = Settings.from_env(
            {
                "AORTA_DATA_DIR": str(tmp_path / "data"),
                "AORTA_NATS_URL": server.url,
                "AORTA_RPC_TIMEOUT": "10",
            }
        )
        bus = await NatsBus.connect(server.url, name="aorta-e2e", default_timeout=10.0)
        async with service_context(settings, bus) as context:
            environ = {"AORTA_SCHEDULER_GPUS": "0", "AORTA_SCHEDULER_GRACE": "1"}
            services: list[Running] = [
                await pipelines_app.start(context),
                await payloads_app.start(context),
                await scheduler_app.start(context, environ=environ),
            ]
            gateway = await gateway_app.start(context, address="127.0.0.1:0")
            try:
                yield f"127.0.0.1:{gateway.port}"
            finally:
                await gateway.stop(1.0)
                for service in reversed(services):
                    await service.stop(1.0)
                await bus.close()


async def run_job(
    target: str, definition: Path, inputs: Path, results: Path, job_name: str
) -> JobRun:
    """Runs `definition` on the files of `inputs` through NVIDIA's client and downloads every
    operator output under `results/<operator>/...` (the client makes the folders)."""
    arguments = [target, str(definition), str(inputs), str(results), job_name]
    # The client blocks; it runs in a thread so this loop keeps serving it.
    done = await asyncio.to_thread(run_clara_python, RUN_JOB, args=arguments, timeout=100)
    assert done.returncode == 0, done.stderr
    return JobRun(json.loads(done.stdout), results)
