"""A pipeline written like NVIDIA's COVID-19 reference pipeline, with a Triton-style pipeline
service, run in containers on `aorta up` and driven by NVIDIA's own client.

Two operators (`lung-segmentation`, then `classification-covid-19`, which also reads the
original payload) declare the same `trtis` service: an HTTP server (busybox `httpd`) with an
`http` connection (`NVIDIA_CLARA_TRTISURI`, port 8000) and a `volume` connection (its data
folder at `/models`). The service writes its "model" into `$(NVIDIA_CLARA_SERVICE_DATA_PATH)`
at start; each operator asks the service for it through the connection variable and reads it
from the shared folder. Every image is built on this host from busybox (no registry); the
platform is `aorta up --executor container` on a private Podman API service.

Then the service's lifecycle on the same platform: pipelines with the same image, tag and
command share one service container and another command gets its own; a restarted platform
adopts the running containers; a service that crashes at start faults its job with its last
log lines; Clara.Stop stops every service, and with a short idle period an unneeded one stops.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aorta.testing.clara_client import run_clara_python
from aorta.testing.images import build_busybox_image
from aorta.testing.podman import PodmanEngine
from aorta.testing.ports import free_port
from tests.e2e.container_platform import containers, start_up, stop

MODEL = "covid-19 classifier v1"
SERVICE_COMMAND = (
    "mkdir -p $(NVIDIA_CLARA_SERVICE_DATA_PATH)/covid; "
    f"echo '{MODEL}' > $(NVIDIA_CLARA_SERVICE_DATA_PATH)/covid/config.pbtxt; "
    "echo trtis: serving the model store; "
    "exec httpd -f -v -p 8000 -h $(NVIDIA_CLARA_SERVICE_DATA_PATH)"
)
OPERATOR = """\
set -e
stage="$1"
wget -q -O /tmp/asked "http://$NVIDIA_CLARA_TRTISURI/covid/config.pbtxt"
test "$NVIDIA_CLARA_MODELS" = /models
cp /models/covid/config.pbtxt /tmp/read
echo "$NVIDIA_CLARA_INPUTPATHS" | tr ';' '\n' | while read -r input; do
  ls "${input#*:}"
done > /tmp/inputs
out="${NVIDIA_CLARA_OUTPUTPATHS#*:}"
{ echo "asked: $(cat /tmp/asked)"; echo "read: $(cat /tmp/read)"; sort /tmp/inputs; } \
  > "$out/$stage.txt"
echo "$stage: the service at $NVIDIA_CLARA_TRTISURI answered $(cat /tmp/asked)"
"""
SERVICE = f"""\
  services:
  - name: trtis
    container:
      image: clara/trtis-like
      tag: latest
      command: ["sh", "-c", "{SERVICE_COMMAND}"]
    requests:
      cpu: 1
      memory: 256
    connections:
      http:
      - name: NVIDIA_CLARA_TRTISURI
        port: 8000
      volume:
      - name: NVIDIA_CLARA_MODELS
        path: /models
"""
PIPELINE = (
    """\
api-version: 0.4.0
name: covid-19
orchestrator: Clara
operators:
- name: lung-segmentation
  container:
    image: clara/ai-lung
    tag: latest
    command: ["lung-segmentation"]
  input:
  - path: /input
  output:
  - name: segmentation
    path: /output
"""
    + SERVICE
    + """\
- name: classification-covid-19
  container:
    image: clara/ai-covid
    tag: latest
    command: ["classification-covid-19"]
  input:
  - from: lung-segmentation
    name: segmentation
    path: /label_image
  - path: /input
  output:
  - path: /output
"""
    + SERVICE
)

CLIENT = """
import json, sys, time
from pathlib import Path
import nvidia_clara.pipeline_types as pipeline_types
from nvidia_clara.jobs_client import JobsClient
from nvidia_clara.payloads_client import PayloadsClient
from nvidia_clara.pipelines_client import PipelinesClient

target, definition, inputs, results = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
jobs_client, payloads_client = JobsClient(target), PayloadsClient(target)
pipelines_client = PipelinesClient(target)
files = [pipeline_types.PipelineDefinition(name="covid-19.yaml", content=definition)]
pipeline_id = pipelines_client.create_pipeline(definition=files)
seen = {"jobs": []}
for name in ("covid-a", "covid-b"):
    job = jobs_client.create_job(
        job_name=name, pipeline_id=pipeline_types.PipelineId(pipeline_id.value)
    )
    for path in sorted(inputs.iterdir()):
        with path.open("rb") as data:
            payloads_client.upload(payload_id=job.payload_id, blob_name=path.name, file_object=data)
    jobs_client.start_job(job_id=job.job_id)
    deadline = time.monotonic() + 150
    status = jobs_client.get_status(job_id=job.job_id)
    while status.job_state != 3 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = jobs_client.get_status(job_id=job.job_id)
    outputs = {}
    details = payloads_client.get_details(payload_id=job.payload_id)
    for index, detail in enumerate(sorted(f.name for f in details.file_details)):
        if detail.startswith("/operators/"):
            target_file = results / f"{name}-{index}"
            with open(target_file, "wb") as out:
                payloads_client.download_from(
                    payload_id=job.payload_id, blob_name="." + detail, dest_obj=out
                )
            outputs[detail] = target_file.read_text()
    seen["jobs"].append(
        {
            "status": [status.job_state, status.job_status, list(status.messages)],
            "operators": {op: d["status"] for op, d in status.operator_details.items()},
            "outputs": outputs,
            "logs": jobs_client.job_logs(job_id=job.job_id, operator_name="lung-segmentation"),
        }
    )
print(json.dumps(seen))
"""


def build_images(engine: PodmanEngine) -> None:
    """The service's and the two operators' images, built locally from busybox."""
    cli = engine.cli
    build_busybox_image(cli, "clara/trtis-like:latest")
    build_busybox_image(cli, "clara/ai-lung:latest", OPERATOR)
    build_busybox_image(cli, "clara/ai-covid:latest", OPERATOR)


def covid_jobs_share_their_service(
    engine: PodmanEngine, port: int, folder: Path, log: Path
) -> None:
    """Runs two jobs of the COVID-style pipeline through NVIDIA's client on the platform at
    `port`, a fresh one of `engine`, and checks what each operator got from their service."""
    inputs = folder / "inputs"
    inputs.mkdir()
    (inputs / "chest-ct.nii").write_bytes(b"NIfTI" + bytes(range(256)))
    results = folder / "results"
    results.mkdir()
    done = run_clara_python(
        CLIENT,
        args=[f"127.0.0.1:{port}", PIPELINE, str(inputs), str(results)],
        timeout=240,
    )
    services = containers(engine, **{"aorta.component": "service"})
    assert done.returncode == 0, f"{done.stderr}\n{log.read_text()[-4000:]}"
    seen = json.loads(done.stdout)
    for job in seen["jobs"]:
        assert job["status"] == [3, 1, []], f"{job}\n{log.read_text()[-4000:]}"
        assert job["operators"] == {"lung-segmentation": 3, "classification-covid-19": 3}
        by_stage = {name.rsplit("/", 1)[1]: text for name, text in job["outputs"].items()}
        assert by_stage["lung-segmentation.txt"] == (
            f"asked: {MODEL}\nread: {MODEL}\nchest-ct.nii\n"
        )
        assert by_stage["classification-covid-19.txt"] == (
            f"asked: {MODEL}\nread: {MODEL}\nchest-ct.nii\nlung-segmentation.txt\n"
        )
        assert f"answered {MODEL}" in job["logs"][0]
        assert "127.0.0.1:" in job["logs"][0]
    # Four operator runs of two jobs were served by one service container.
    assert len(services) == 1, services
    assert "clara/trtis-like" in str(services[0]["Image"])


RUNS = """
import json, sys, time
import nvidia_clara.pipeline_types as pipeline_types
from nvidia_clara.clara_client import ClaraClient
from nvidia_clara.jobs_client import JobsClient
from nvidia_clara.pipelines_client import PipelinesClient

target, definitions, then_stop = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "stop"
jobs_client, pipelines_client = JobsClient(target), PipelinesClient(target)
seen = {}
for name, definition in definitions.items():
    files = [pipeline_types.PipelineDefinition(name=f"{name}.yaml", content=definition)]
    pipeline_id = pipelines_client.create_pipeline(definition=files)
    job = jobs_client.create_job(
        job_name=name, pipeline_id=pipeline_types.PipelineId(pipeline_id.value)
    )
    jobs_client.start_job(job_id=job.job_id)
    deadline = time.monotonic() + 120
    status = jobs_client.get_status(job_id=job.job_id)
    while status.job_state != 3 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = jobs_client.get_status(job_id=job.job_id)
    seen[name] = [status.job_state, status.job_status, list(status.messages)]
if then_stop:
    host, port = target.rsplit(":", 1)
    ClaraClient(target=host, port=port).stop()
print(json.dumps(seen))
"""


def running_services(engine: PodmanEngine) -> dict[str, str]:
    """The running service containers of `engine`: their service id → container id."""
    found = containers(engine, **{"aorta.component": "service"})
    return {
        str(c["Labels"]["aorta.service"]): str(c["Id"])  # type: ignore[index]
        for c in found
        if c.get("State") == "running"
    }


def run_jobs(
    port: int, definitions: dict[str, str], log: Path, *, then_stop: bool = False
) -> dict[str, list[object]]:
    """Runs one job of each definition (by name) through NVIDIA's client, one after the
    other, then asks Clara.Stop when `then_stop`; each job's [state, status, messages]."""
    done = run_clara_python(
        RUNS,
        args=[f"127.0.0.1:{port}", json.dumps(definitions), "stop" if then_stop else "-"],
        timeout=240,
    )
    assert done.returncode == 0, f"{done.stderr}\n{log.read_text()[-4000:]}"
    seen: dict[str, list[object]] = json.loads(done.stdout)
    return seen


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_service_containers_are_shared_told_apart_adopted_stopped_idled_and_fail_with_logs(
    podman_engine: PodmanEngine, tmp_path: Path
) -> None:
    build_images(podman_engine)
    verbose = PIPELINE.replace("httpd -f -v", "httpd -f -vv")
    crashing = PIPELINE.replace(
        f'command: ["sh", "-c", "{SERVICE_COMMAND}"]',
        'command: ["sh", "-c", "echo trtis: loading; echo trtis: no model store >&2; exit 3"]',
    )
    assert verbose != PIPELINE and crashing != PIPELINE
    healthy = [3, 1, []]
    port = free_port()
    log = tmp_path / "aorta-up.log"
    data_dir = tmp_path / "platform"
    platform = start_up(podman_engine, data_dir, port, log)
    try:
        covid_jobs_share_their_service(podman_engine, port, tmp_path, log)
        seen = run_jobs(port, {"first": PIPELINE, "same": PIPELINE, "other": verbose}, log)
        assert seen == {"first": healthy, "same": healthy, "other": healthy}, log.read_text()[
            -4000:
        ]
        # The same image, tag and command is one service; another command another.
        before = running_services(podman_engine)
        assert len(before) == 2, before
    finally:
        assert stop(platform) == 0, log.read_text()[-4000:]
    # The services outlive the platform; the next one adopts them rather than starting others.
    assert running_services(podman_engine) == before
    platform = start_up(podman_engine, data_dir, port, log)
    try:
        seen = run_jobs(port, {"again": PIPELINE}, log)
        assert seen == {"again": healthy}, log.read_text()[-4000:]
        assert running_services(podman_engine) == before
        seen = run_jobs(port, {"doomed": crashing}, log, then_stop=True)
        state, status, messages = seen["doomed"]
        assert (state, status) == (3, 2), seen
        assert isinstance(messages, list)
        text = "\n".join(messages)
        assert "pipeline service trtis exited at start with status 3" in text
        assert "trtis: loading\ntrtis: no model store" in text
        # Clara.Stop stops every service (the leader does it once the request is recorded).
        deadline = time.monotonic() + 60
        while running_services(podman_engine):
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
    finally:
        assert stop(platform) == 0, log.read_text()[-4000:]
    # With a short idle period the service stops once no job has needed it for that long.
    idle = {"AORTA_SERVICE_IDLE_SECONDS": "1"}
    platform = start_up(podman_engine, data_dir, port, log, environ=idle)
    try:
        assert run_jobs(port, {"last": PIPELINE}, log) == {"last": healthy}
        deadline = time.monotonic() + 60
        while running_services(podman_engine):
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
    finally:
        assert stop(platform) == 0, log.read_text()[-4000:]
