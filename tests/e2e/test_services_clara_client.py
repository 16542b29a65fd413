"""Pipeline services on `aorta up` (local executor), driven by NVIDIA's own client.

A pipeline written like NVIDIA's COVID-19 reference pipeline: two operators declare the same
`trtis`-style service, with an `http` connection (`NVIDIA_CLARA_TRTISURI`) and a `volume`
connection. The service is a host process answering HTTP and writing a "model" into its data
folder (`$(NVIDIA_CLARA_SERVICE_DATA_PATH)`); each operator asks it over the connection variable
and reads the model from the shared folder. Two jobs and a second pipeline with the same
service share one running service; `aorta list services` shows it; Clara.Stop stops it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aorta.testing.clara_client import run_clara_python
from aorta.testing.embedded import aorta_up
from aorta.testing.ports import free_port
from tests.e2e.branch_pipeline import AortaCli

pytestmark = pytest.mark.timeout(240)

SERVICE = """\
import http.server, os, pathlib, sys

data, marks = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(data / "lung-model.txt").write_text("covid-19 segmentation v1")
with (marks / "starts").open("a") as starts:
    starts.write(f"{os.getpid()}\\n")
host, port = os.environ["NVIDIA_CLARA_TRTISURI"].split(":")


class Inference(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"trtis: ready"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


print(f"trtis serving on {port}", flush=True)
http.server.HTTPServer((host, int(port)), Inference).serve_forever()
"""

OPERATOR = """\
import os, pathlib, urllib.request

name = os.environ["NVIDIA_CLARA_STAGENAME"]
answer = urllib.request.urlopen(f"http://{os.environ['NVIDIA_CLARA_TRTISURI']}/", timeout=10)
model = (pathlib.Path(os.environ["MODEL_PATH"]) / "lung-model.txt").read_text()
for entry in clara_payload.output_entries:
    out = pathlib.Path(entry.path)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.txt").write_text(f"{answer.read().decode()} | {model}")
print(f"{name}: used {model}", flush=True)
"""

CLIENT = """
import io, json, sys, time
import nvidia_clara.pipeline_types as pipeline_types
from nvidia_clara.jobs_client import JobsClient
from nvidia_clara.payloads_client import PayloadsClient
from nvidia_clara.pipelines_client import PipelinesClient

target, definition = sys.argv[1], sys.argv[2]
jobs_client, payloads_client = JobsClient(target), PayloadsClient(target)
pipelines_client = PipelinesClient(target)
seen = {"jobs": {}}

def pipeline():
    files = [pipeline_types.PipelineDefinition(name="covid.yaml", content=definition)]
    return pipeline_types.PipelineId(pipelines_client.create_pipeline(files).value)

first, second = pipeline(), pipeline()
jobs = []
for name, pipeline_id in (("patient-1", first), ("patient-2", first), ("patient-3", second)):
    job = jobs_client.create_job(job_name=name, pipeline_id=pipeline_id)
    jobs_client.start_job(job_id=job.job_id)
    jobs.append((name, job))
for name, job in jobs:
    deadline = time.monotonic() + 90
    status = jobs_client.get_status(job_id=job.job_id)
    while status.job_state != 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        status = jobs_client.get_status(job_id=job.job_id)
    details = payloads_client.get_details(payload_id=job.payload_id)
    outputs = {}
    for file in details.file_details:
        if file.name.startswith("/operators/"):
            sink = io.BytesIO()
            payloads_client.download_from(
                payload_id=job.payload_id, blob_name="." + file.name, dest_obj=sink
            )
            outputs[file.name] = sink.getvalue().decode()
    seen["jobs"][name] = {
        "state": status.job_state, "status": status.job_status, "messages": list(status.messages),
        "outputs": outputs,
    }
print(json.dumps(seen))
"""

STOP = """
import sys
from nvidia_clara.clara_client import ClaraClient
ClaraClient(sys.argv[1]).stop()
"""


def definition(tmp: Path) -> str:
    service = (
        "  services:\n"
        "  - name: trtis\n"
        "    container:\n"
        "      image: clara/trtis\n"
        "      tag: 0.1.8\n"
        f'      command: [python, -u, {tmp / "service.py"}, "$(NVIDIA_CLARA_SERVICE_DATA_PATH)",'
        f" {tmp / 'marks'}]\n"
        "    requests: {cpu: 1, memory: 256}\n"
        "    connections:\n"
        "      http: [{name: NVIDIA_CLARA_TRTISURI}]\n"
        "      volume: [{name: MODEL_PATH, path: /models}]\n"
    )

    def operator(name: str, source: str) -> str:
        return (
            f"- name: {name}\n"
            "  container:\n"
            f"    image: clara/ai-covid-{name}\n"
            "    tag: 0.8.1\n"
            f"    command: [python, -u, -m, aorta.driver.app, {tmp / 'operator.py'}]\n"
            f"  input: [{source}]\n"
            "  output: [{path: /output}]\n"
            "  requests: {cpu: 1, memory: 256}\n" + service
        )

    return (
        "api-version: 0.4.0\nname: covid-19\noperators:\n"
        + operator("lung-segmentation", "{path: /input}")
        + operator("classification", "{from: lung-segmentation, path: /input}")
    )


class Platform(AortaCli):
    def services(self) -> list[dict[str, object]]:
        listed: list[dict[str, object]] = json.loads(self.aorta("list", "services", "-o", "json"))
        return listed


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    grpc_port = free_port()
    # Long enough that the service stays up between the jobs; Clara.Stop ends it.
    environ = {"AORTA_SERVICE_IDLE_SECONDS": "600"}
    with aorta_up(tmp_path / "data", grpc_port, environ=environ):
        yield Platform(grpc_port)


def test_a_covid_like_pipeline_shares_its_trtis_service_and_clara_stop_ends_it(
    platform: Platform, tmp_path: Path
) -> None:
    (tmp_path / "service.py").write_text(SERVICE)
    (tmp_path / "operator.py").write_text(OPERATOR)
    marks = tmp_path / "marks"
    marks.mkdir()
    marks.chmod(0o777)  # the service may run as the operators' user
    done = run_clara_python(CLIENT, args=[platform.host, definition(tmp_path)], timeout=180)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    for name, job in seen["jobs"].items():
        assert (job["state"], job["status"]) == (3, 1), (name, job["messages"])
        assert job["outputs"] == {
            f"/operators/{op}/{op}.txt": "trtis: ready | covid-19 segmentation v1"
            for op in ("lung-segmentation", "classification")
        }
    # One service for three jobs of two pipelines.
    assert len((marks / "starts").read_text().split()) == 1
    [service] = platform.services()
    assert (service["name"], service["image"], service["tag"]) == ("trtis", "clara/trtis", "0.1.8")
    assert service["state"] == "ready" and str(service["address"]).startswith("127.0.0.1:")
    log = platform.aorta("logs", "--service", "trtis")
    assert log.startswith("trtis serving on ")

    stopped = run_clara_python(STOP, args=[platform.host])
    assert stopped.returncode == 0, stopped.stderr
    deadline = time.monotonic() + 30
    while platform.services()[0]["state"] != "stopped":
        assert time.monotonic() < deadline, platform.services()
        time.sleep(0.1)
