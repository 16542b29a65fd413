"""NVIDIA's own Python client (`nvidia-clara-client` 0.8.1.7), unchanged, running jobs on the
platform: the gateway, the pipelines, payloads and scheduler services (with the real local
executor) on a real nats-server.

The snippets follow the client's own combined example (create a pipeline, create a job, upload
its inputs, list, start, poll `get_status` until STOPPED, list the payload's files, download the
`/operators/...` outputs, read an operator's logs), then cancel a running job, run one whose
operator fails, and stop the platform (Clara.Stop) under a running one. Each prints one JSON
document of what the client saw.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aorta.bus.nats import NatsBus
from aorta.runtime.service import Running, service_context
from aorta.settings import Settings
from aorta.testing.clara_client import run_clara_python
from aorta.testing.nats import async_nats_server
from aorta_services.gateway import app as gateway_app
from aorta_services.monitor import app as monitor_app
from aorta_services.payloads import app as payloads_app
from aorta_services.pipelines import app as pipelines_app
from aorta_services.scheduler import app as scheduler_app

OPERATOR = """\
import os, pathlib, sys, time

name = os.environ["NVIDIA_CLARA_STAGENAME"]
print(f"{name}: job {os.environ['NVIDIA_CLARA_JOBNAME']}", flush=True)
folders = [pathlib.Path(entry.path) for entry in clara_payload.input_entries]
files = [path for folder in folders for path in folder.rglob("*") if path.is_file()]
for path in sorted(files):
    print(f"{name}: read {path.name}", flush=True)
time.sleep(float(os.environ.get("SLEEP", "0")))
if os.environ.get("EXIT", "0") != "0":
    print(f"{name}: error: the volume has no slices", flush=True)
    sys.exit(int(os.environ["EXIT"]))
for entry in clara_payload.output_entries:
    out = pathlib.Path(entry.path)
    out.mkdir(parents=True, exist_ok=True)
    for path in files:
        (out / path.name).write_bytes(path.read_bytes()[::-1])
    (out / "summary.txt").write_text(f"{name}: {len(files)} files\\n")
print(f"{name}: done", flush=True)
"""

PIPELINE = """\
api-version: 0.4.0
name: clara-example
operators:
- name: dicom-reader
  container: {{image: python, command: [python, -u, -m, aorta.driver.app, {script}]}}
  input: [{{path: /input}}]
  output: [{{path: /output}}]
  variables: {{SLEEP: "{reader_sleep}", EXIT: "{reader_exit}"}}
- name: converter
  container: {{image: python, command: [python, -u, -m, aorta.driver.app, {script}]}}
  input: [{{from: dicom-reader, path: /input}}]
  output: [{{path: /output}}]
"""

COMBINED = """
import io, json, os, sys, time
from pathlib import Path
import nvidia_clara.job_types as job_types
import nvidia_clara.pipeline_types as pipeline_types
from nvidia_clara.jobs_client import JobsClient
from nvidia_clara.payloads_client import PayloadsClient
from nvidia_clara.pipelines_client import PipelinesClient

target, definition, results = sys.argv[1], sys.argv[2], Path(sys.argv[3])
jobs_client, payloads_client = JobsClient(target), PayloadsClient(target)
pipeline_client = PipelinesClient(target)
seen = {}


def refusal(call):
    try:
        call()
    except Exception as error:
        return str(error)
    return None


definitions = [pipeline_types.PipelineDefinition(name="example.yaml", content=definition)]
pipeline_id = pipeline_client.create_pipeline(definition=definitions)
job_info = jobs_client.create_job(
    job_name="spleenjob", pipeline_id=pipeline_types.PipelineId(pipeline_id.value)
)
job_id, payload_id = job_info.job_id, job_info.payload_id
for name in ("slice-1.dcm", "slice-2.dcm"):
    data = io.BytesIO(name.encode())
    payloads_client.upload(payload_id=payload_id, blob_name=name, file_object=data)
listed = jobs_client.list_jobs()
seen["listed"] = [
    [j.job_id.value, j.name, j.job_state, j.payload_id.value, j.pipeline_id.value] for j in listed
]
seen["delete_created"] = refusal(lambda: payloads_client.delete_payload(payload_id=payload_id))
token = jobs_client.start_job(job_id=job_id)
seen["started"] = [token.job_id.value, token.job_state, token.job_status, token.job_priority]
deadline = time.monotonic() + 60
job_status = jobs_client.get_status(job_id=job_id)
while job_status.job_state != 3 and time.monotonic() < deadline:
    time.sleep(0.1)
    job_status = jobs_client.get_status(job_id=job_id)
seen["status"] = {
    "state": job_status.job_state, "status": job_status.job_status,
    "name": job_status.name, "messages": list(job_status.messages),
    "pipeline_id": job_status.pipeline_id.value, "payload_id": job_status.payload_id.value,
    "created": job_status.date_created is not None, "stopped": job_status.date_stopped is not None,
    "operators": {name: d["status"] for name, d in job_status.operator_details.items()},
}
seen["delete_stopped"] = refusal(lambda: payloads_client.delete_payload(payload_id=payload_id))
payload_details = payloads_client.get_details(payload_id=payload_id)
seen["files"] = sorted(f.name for f in payload_details.file_details)
downloaded = {}
for file in payload_details.file_details:
    name = file.name.split("/")
    if name[1] == "operators":
        target_file = results / "_".join(name[2:])
        with open(target_file, "wb+") as wb:
            payloads_client.download_from(
                payload_id=payload_id, blob_name="." + file.name, dest_obj=wb
            )
        downloaded[file.name] = target_file.read_bytes().decode()
seen["downloaded"] = downloaded
seen["logs"] = jobs_client.job_logs(job_id=job_id, operator_name="dicom-reader")
# The client does not read ReadLogs' header: an unknown operator reads as no lines.
seen["unknown_operator"] = jobs_client.job_logs(job_id=job_id, operator_name="no-such-operator")
print(json.dumps(seen))
"""

TROUBLE = """
import json, sys, time
import nvidia_clara.pipeline_types as pipeline_types
from nvidia_clara.jobs_client import JobsClient
from nvidia_clara.pipelines_client import PipelinesClient
import nvidia_clara.job_types as job_types
from nvidia_clara.clara_client import ClaraClient

target, slow, failing = sys.argv[1], sys.argv[2], sys.argv[3]
jobs_client, pipeline_client = JobsClient(target), PipelinesClient(target)
seen = {}

def pipeline(text):
    files = [pipeline_types.PipelineDefinition(name="p.yaml", content=text)]
    made = pipeline_client.create_pipeline(files)
    return pipeline_types.PipelineId(made.value)

def until_stopped(job_id):
    deadline = time.monotonic() + 60
    status = jobs_client.get_status(job_id=job_id)
    while status.job_state != 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        status = jobs_client.get_status(job_id=job_id)
    return status

running = jobs_client.create_job(job_name="cancel-me", pipeline_id=pipeline(slow))
jobs_client.start_job(job_id=running.job_id)
def reader_status(job_id):
    details = jobs_client.get_status(job_id=job_id).operator_details
    return details.get("dicom-reader", {}).get("status")

def until_reading(job_id):
    # The cancel and the stop below are of a running operator: a job still queued would
    # answer them otherwise, and the checks would then be of something else.
    deadline = time.monotonic() + 60
    while reader_status(job_id) != 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"dicom-reader of {job_id} never ran")
        time.sleep(0.05)

until_reading(running.job_id)
token = jobs_client.cancel_job(job_id=running.job_id, reason="wrong series")
seen["cancel"] = [token.job_state, token.job_status]
status = until_stopped(running.job_id)
seen["canceled"] = [status.job_state, status.job_status, list(status.messages)]
try:
    jobs_client.cancel_job(job_id=running.job_id)
except Exception as error:
    seen["cancel_again"] = str(error)

broken = jobs_client.create_job(job_name="broken", pipeline_id=pipeline(failing))
jobs_client.start_job(job_id=broken.job_id)
status = until_stopped(broken.job_id)
seen["faulted"] = [status.job_state, status.job_status, list(status.messages)]
seen["faulted_operators"] = {n: d["status"] for n, d in status.operator_details.items()}
try:
    jobs_client.start_job(job_id=broken.job_id)
except Exception as error:
    seen["start_again"] = str(error)
stoppable = jobs_client.create_job(job_name="stop-me", pipeline_id=pipeline(slow))
jobs_client.start_job(job_id=stoppable.job_id)
until_reading(stoppable.job_id)
ClaraClient(target).stop()
status = until_stopped(stoppable.job_id)
seen["platform_stop"] = [status.job_state, status.job_status, list(status.messages)]
stopped = jobs_client.list_jobs(job_types.JobFilter(has_job_state=[job_types.JobState.Stopped]))
seen["stopped_jobs"] = sorted(j.name for j in stopped)
print(json.dumps(seen))
"""


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    """`host:port` of a gateway before the pipelines, payloads, scheduler and monitor (which
    answers Clara.Stop) services."""
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
                await monitor_app.start(context, environ={}),
            ]
            gateway = await gateway_app.start(context, address="127.0.0.1:0")
            try:
                yield f"127.0.0.1:{gateway.port}"
            finally:
                await gateway.stop(1.0)
                for service in reversed(services):
                    await service.stop(1.0)
                await bus.close()


def definition(script: Path, *, sleep: int = 0, exit_code: int = 0) -> str:
    return PIPELINE.format(script=script, reader_sleep=sleep, reader_exit=exit_code)


async def run_client(code: str, *args: str) -> dict[str, Any]:
    # The client blocks; it runs in a thread so this loop keeps serving it.
    result = await asyncio.to_thread(run_clara_python, code, args=list(args), timeout=100)
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout)
    return seen


@pytest.mark.timeout(150)
async def test_nvidias_combined_example_runs_a_job_end_to_end(target: str, tmp_path: Path) -> None:
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    results = tmp_path / "results"
    results.mkdir()
    seen = await run_client(COMBINED, target, definition(script), str(results))
    job_id, name, state, payload_id, pipeline_id = seen["listed"][0]
    assert (name, state) == ("spleenjob", 1) and len(job_id) == len(payload_id) == 32
    assert seen["started"][0] == job_id and seen["started"][2] == 1
    status = seen["status"]
    assert (status["state"], status["status"]) == (3, 1), status
    assert (status["name"], status["messages"]) == ("spleenjob", [])
    assert (status["pipeline_id"], status["payload_id"]) == (pipeline_id, payload_id)
    assert status["created"] and status["stopped"]
    assert status["operators"] == {"dicom-reader": 3, "converter": 3}
    # A job's payload goes with its job only: refused before it ran and after it stopped, its
    # files all still there.
    assert f"the input of job {job_id}, which has not run" in seen["delete_created"]
    assert f"the read-only payload of job {job_id}, which stopped" in seen["delete_stopped"]
    assert seen["files"] == [
        "/input/slice-1.dcm",
        "/input/slice-2.dcm",
        "/operators/converter/slice-1.dcm",
        "/operators/converter/slice-2.dcm",
        "/operators/converter/summary.txt",
        "/operators/dicom-reader/slice-1.dcm",
        "/operators/dicom-reader/slice-2.dcm",
        "/operators/dicom-reader/summary.txt",
    ]
    assert seen["downloaded"]["/operators/dicom-reader/slice-1.dcm"] == "mcd.1-ecils"
    assert seen["downloaded"]["/operators/converter/slice-1.dcm"] == "slice-1.dcm"
    assert seen["downloaded"]["/operators/converter/summary.txt"] == "converter: 3 files\n"
    assert "dicom-reader: read slice-2.dcm" in seen["logs"]
    assert seen["logs"][-1] == "dicom-reader: done"
    assert seen["unknown_operator"] == []


@pytest.mark.timeout(150)
async def test_cancel_and_a_failing_operator_through_nvidias_client(
    target: str, tmp_path: Path
) -> None:
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    slow, failing = definition(script, sleep=60), definition(script, exit_code=4)
    seen = await run_client(TROUBLE, target, slow, failing)
    assert seen["cancel"] == [3, 3]
    state, status, messages = seen["canceled"]
    assert (state, status) == (3, 3) and messages == ["canceled: wrong series"]
    assert "cannot be canceled: it is STOPPED (CANCELED)" in seen["cancel_again"]
    state, status, messages = seen["faulted"]
    assert (state, status) == (3, 2)
    assert "operator 'dicom-reader' failed with exit code 4" in messages[0]
    assert "dicom-reader: error: the volume has no slices" in messages[0]
    assert seen["faulted_operators"] == {"dicom-reader": 4, "converter": 1}
    assert "cannot be started" in seen["start_again"]
    state, status, messages = seen["platform_stop"]
    assert (state, status) == (3, 5)
    assert messages == ["terminated: the platform was stopped (Clara.Stop)"]
    assert seen["stopped_jobs"] == ["broken", "cancel-me", "stop-me"]
