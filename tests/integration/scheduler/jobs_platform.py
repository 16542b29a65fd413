"""The platform's job path in this process: gateway, pipelines, payloads and scheduler with the
real local executor, on a real nats-server (one per module), SQLite and a local blob folder under
the test's tmp_path. Operators are small Python scripts written to tmp_path and run with
`python -u -m aorta.driver.app` as Clara operators are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from aorta.api import (
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.runtime.service import Running, ServiceContext
from aorta_services.scheduler import app as scheduler_app
from aorta_services.scheduler.app import RunningScheduler

RPC_TIMEOUT = 10.0
SCHEDULER_ENV = {
    "AORTA_SCHEDULER_GPUS": "0",
    "AORTA_SCHEDULER_CPUS": "4",
    "AORTA_SCHEDULER_LEASE_TTL": "0.9",
    "AORTA_SCHEDULER_RESYNC": "0.3",
    "AORTA_SCHEDULER_GRACE": "1",
}
"""For schedulers in processes, whose tests kill a leader and wait for its lease to expire."""

STEADY_LEASE = {"AORTA_SCHEDULER_LEASE_TTL": "120"}
"""A lease for the tests whose one scheduler leads until it stops cleanly, which expires it at
once for the next: the lease is not what they test, and a short one does not hold on a busy
machine (a 0.9 s lease, renewed every 0.3 s, was lost when the event loop stalled past 0.6 s
at load 15: the leader stepped down, killed its runs and re-ran them as attempt 2)."""

STEADY_SCHEDULER_ENV = {**SCHEDULER_ENV, **STEADY_LEASE}

OPERATOR = """\
import os, pathlib, sys, time

name = os.environ["NVIDIA_CLARA_STAGENAME"]
marks = pathlib.Path(os.environ["MARKS"])
# Renamed into place: a test that sees the file may read it at once.
(marks / f"{name}.pid.tmp").write_text(str(os.getpid()))
(marks / f"{name}.pid.tmp").rename(marks / f"{name}.pid")
print(f"{name}: starting", flush=True)
count = 0
for entry in clara_payload.input_entries:
    for path in sorted(pathlib.Path(entry.path).rglob("*")):
        if path.is_file():
            count += 1
            print(f"{name}: read {entry.name}/{path.name}", flush=True)
time.sleep(float(os.environ.get("SLEEP", "0")))
code = int(os.environ.get("EXIT", "0"))
if code:
    print(f"{name}: error: giving up with {code}", flush=True)
    sys.exit(code)
for entry in clara_payload.output_entries:
    folder = pathlib.Path(entry.path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(f"{name} read {count} files\\n")
# Created exclusively: an operator that completed twice would fail here.
(marks / f"{name}.done").open("x").close()
print(f"{name}: done", flush=True)
"""


RUNNER = "python, -u, -m, aorta.driver.app"


def operator_definition(
    script: Path, marks: Path, chain: Mapping[str, Mapping[str, str]], *, timeout: int = 60
) -> str:
    """A pipeline whose operators all run `script`, each reading the previous one's output
    (the first reads the payload); `chain` maps operator names to their extra variables."""
    lines = ["api-version: 0.4.0", "name: scripted", f"timeout: {timeout}", "operators:"]
    previous = None
    for name, variables in chain.items():
        source = f"{{from: {previous}, path: /input}}" if previous else "{path: /input}"
        values = {"MARKS": str(marks), **variables}
        rendered = ", ".join(f'{key}: "{value}"' for key, value in values.items())
        lines += [
            f"- name: {name}",
            f"  container: {{image: python, command: [{RUNNER}, {script}]}}",
            f"  input: [{source}]",
            "  output: [{path: /output}]",
            "  requests: {cpu: 1, memory: 256}",
            f"  variables: {{{rendered}}}",
        ]
        previous = name
    return "\n".join(lines) + "\n"


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


@dataclass
class Platform:
    """The services of one test and gRPC stubs in front of them."""

    port: int
    context: ServiceContext
    channel: grpc.aio.Channel
    tmp_path: Path
    services: list[Running] = field(default_factory=list)

    @property
    def jobs(self) -> jobs_pb2_grpc.JobsAsyncStub:
        return jobs_pb2_grpc.JobsStub(self.channel)  # type: ignore[return-value]

    @property
    def scheduler(self) -> RunningScheduler:
        found = [s for s in self.services if isinstance(s, RunningScheduler)]
        return found[-1]

    async def start_scheduler(self) -> RunningScheduler:
        # The default work dir: outside the data dir, which operators must not reach.
        scheduler = await scheduler_app.start(self.context, environ=STEADY_SCHEDULER_ENV)
        self.services.append(scheduler)
        return scheduler

    def script(self) -> tuple[Path, Path]:
        """The operator script and the folder its marks go to."""
        script = self.tmp_path / "operator.py"
        script.write_text(OPERATOR)
        marks = self.tmp_path / "marks"
        marks.mkdir(exist_ok=True)
        marks.chmod(0o777)  # operators may run as another user
        return script, marks

    async def pipeline(self, definition: str) -> str:
        stub = pipelines_pb2_grpc.PipelinesStub(self.channel)
        request = pipelines_pb2.PipelinesCreateRequest(
            definition=pipelines_pb2.PipelineDefinitionFile(path="p.yaml", content=definition)
        )
        response = await stub.Create(iter([request]))  # type: ignore[arg-type]
        assert response.header.code == 0, response.header
        return str(response.pipeline_id.value)

    async def job(self, pipeline_id: str, name: str = "job") -> tuple[str, str]:
        response = await self.jobs.Create(
            jobs_pb2.JobsCreateRequest(pipeline_id=ident(pipeline_id), name=name)
        )
        assert response.header.code == 0, response.header
        return response.job_id.value, response.payload_id.value

    async def upload(self, payload_id: str, name: str, data: bytes) -> None:
        stub = payloads_pb2_grpc.PayloadsStub(self.channel)
        request = payloads_pb2.PayloadsUploadRequest(
            payload_id=ident(payload_id),
            details=payloads_pb2.PayloadFileDetails(name=name, size=len(data)),
            data=data,
        )
        response = await stub.Upload(iter([request]))  # type: ignore[arg-type]
        assert response.header.code == 0, response.header

    async def start(self, job_id: str) -> jobs_pb2.JobsStartResponse:
        response = await self.jobs.Start(jobs_pb2.JobsStartRequest(job_id=ident(job_id)))
        assert response.header.code == 0, response.header
        return response

    async def status(self, job_id: str) -> jobs_pb2.JobsStatusResponse:
        response = await self.jobs.Status(jobs_pb2.JobsStatusRequest(job_id=ident(job_id)))
        assert response.header.code == 0, response.header
        return response

    async def until(
        self, job_id: str, condition: object, within: float = 60.0
    ) -> jobs_pb2.JobsStatusResponse:
        """The job's status once `condition` holds. `within` only names a failure: at load 12
        three jobs of host operators and a service took over the 30 s it once was."""
        deadline = time.monotonic() + within
        while True:
            status = await self.status(job_id)
            if condition(status):  # type: ignore[operator]
                return status
            assert time.monotonic() < deadline, f"job {job_id} did not get there: {status}"
            await asyncio.sleep(0.05)

    async def stopped(self, job_id: str, within: float = 60.0) -> jobs_pb2.JobsStatusResponse:
        return await self.until(job_id, lambda s: s.state == jobs_pb2.JOB_STATE_STOPPED, within)

    async def logs(self, job_id: str, operator: str) -> list[str]:
        request = jobs_pb2.JobsReadLogsRequest(job_id=ident(job_id), operator_name=operator)
        lines: list[str] = []
        async for message in self.jobs.ReadLogs(request):
            assert message.header.code == 0, message.header
            lines += message.logs
        return lines
