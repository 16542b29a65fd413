"""The whole platform as containers of the Aorta image, played by `podman kube play` from Pods
generated out of `deploy/` (tests/e2e/deploy_pods.py), driven from the host by NVIDIA's client.

NATS and every service run in their own Pods (the stateless services, the scheduler and the
models service as two replicas each, the monitor once), with the production adapters:
`AORTA_STATE_STORE` a MongoDB URL (the wire stand-in `aorta.testing.mongo_wire`, a host process,
since no MongoDB server can be installed here) and `AORTA_BLOB_STORE` an S3 bucket (moto's S3
server on the host). The scheduler's container executor drives the same Podman engine through
its API socket, mounted into its Pod, to run the job's operator as a container. Every Pod is
ready when the readiness probes of its manifest pass, checked from the host. While the job's
operator runs, the leading scheduler replica is SIGKILLed: the other one takes over and the
job ends as it would have.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aorta.testing.clara_client import run_clara_python
from aorta.testing.images import build_busybox_image
from aorta.testing.platform_image import build_aorta_image
from aorta.testing.podman import PodmanCli, PodmanEngine, PodmanError
from aorta.testing.ports import free_port
from aorta.testing.s3 import S3Server
from tests.e2e.deploy_pods import HostWiring, PodSet, Probe, generate

REPLICAS = {
    "nats": 1,
    "aorta-pipelines": 2,
    "aorta-payloads": 2,
    "aorta-models": 2,
    "aorta-scheduler": 2,
    "aorta-monitor": 1,
    "aorta-gateway": 2,
}
# Long enough for the test to kill the leading scheduler while it runs.
COPIER = """\
set -e
echo "copier: $(ls /input | wc -l) files"
sleep 4
cp /input/* /output/
wc -c < /input/scan.bin | tr -d ' ' > /output/size.txt
"""
PIPELINE = """\
api-version: 0.4.0
name: deployed
operators:
- name: copier
  container:
    image: deploy-test/copier
    tag: latest
  input:
  - path: /input
  output:
  - path: /output
"""
CLIENT = """
import json, sys, time
from pathlib import Path
import nvidia_clara.pipeline_types as pipeline_types
from nvidia_clara.jobs_client import JobsClient
from nvidia_clara.payloads_client import PayloadsClient
from nvidia_clara.pipelines_client import PipelinesClient

first, second, definition, scan = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
pipelines = PipelinesClient(first)
files = [pipeline_types.PipelineDefinition(name="deployed.yaml", content=definition)]
pipeline_id = pipelines.create_pipeline(definition=files)
jobs, payloads = JobsClient(first), PayloadsClient(first)
job = jobs.create_job(job_name="deployed", pipeline_id=pipeline_types.PipelineId(pipeline_id.value))
with scan.open("rb") as data:
    payloads.upload(payload_id=job.payload_id, blob_name="scan.bin", file_object=data)
jobs.start_job(job_id=job.job_id)
# The other gateway replica answers for the same job: the state is in the store, not a replica.
other = JobsClient(second)
deadline = time.monotonic() + 150
status = other.get_status(job_id=job.job_id)
while status.job_state != 3 and time.monotonic() < deadline:
    time.sleep(0.3)
    status = other.get_status(job_id=job.job_id)
details = PayloadsClient(second).get_details(payload_id=job.payload_id)
seen = {
    "status": [status.job_state, status.job_status],
    "files": sorted(f.name for f in details.file_details),
    "log": jobs.job_logs(job_id=job.job_id, operator_name="copier"),
}
with open(sys.argv[5], "wb") as out:
    payloads.download_from(
        payload_id=job.payload_id, blob_name="./operators/copier/scan.bin", dest_obj=out
    )
print(json.dumps(seen))
"""


@contextmanager
def mongodb_stand_in(log: Path) -> Iterator[str]:
    """The MongoDB wire stand-in as a host process; its URL."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "aorta.testing.mongo_wire", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(lambda: _accepts(port), 30, f"the MongoDB stand-in on port {port}")
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    finally:
        process.terminate()
        process.wait(10)


def _accepts(port: int) -> bool:
    with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise TimeoutError(f"{what} was not ready within {timeout:.0f} s")


def ready(probe: Probe) -> bool:
    """Whether one readiness probe of a manifest passes now, as the kubelet checks it."""
    if probe.kind == "http":
        url = f"http://127.0.0.1:{probe.port}{probe.path}"
        with suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
        return False
    with grpc.insecure_channel(f"127.0.0.1:{probe.port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@contextmanager
def played(cli: PodmanCli, pods: PodSet, path: Path) -> Iterator[None]:
    """`podman kube play` of the Pods; `kube down` afterwards."""
    pods.write(path)
    cli.run("kube", "play", str(path))
    try:
        yield
    finally:
        with suppress(PodmanError):
            cli.run("kube", "down", str(path))


def pod_logs(cli: PodmanCli, pods: PodSet) -> str:
    """The tail of every container's log, for a failure's message."""
    tails = []
    for pod in pods.pods:
        for container in pod["spec"]["containers"]:
            name = f"{pod['metadata']['name']}-{container['name']}"
            # podman writes a container's standard error to its own.
            done = subprocess.run(
                cli.argv("logs", "--tail", "15", name),
                env=dict(cli.environ),
                capture_output=True,
                text=True,
                check=False,
            )
            tails.append(f"--- {name}\n{(done.stdout + done.stderr)[-3000:]}")
    return "\n".join(tails)


def operator_running(cli: PodmanCli) -> bool:
    """Whether the job's operator container runs on the engine."""
    listed = cli.run("ps", "--format", "{{.Names}}", "--filter", "label=aorta.operator=copier")
    return bool(listed.strip())


def kill_leader(cli: PodmanCli) -> str:
    """SIGKILLs the scheduler replica that leads (the one whose log says so); its name."""
    for index in range(REPLICAS["aorta-scheduler"]):
        name = f"aorta-scheduler-{index}-scheduler"
        done = subprocess.run(
            cli.argv("logs", name),
            env=dict(cli.environ),
            capture_output=True,
            text=True,
            check=False,
        )
        if "scheduler.leading" in done.stdout + done.stderr:
            cli.run("kill", "--signal", "KILL", name)
            return name
    raise AssertionError("no scheduler replica leads")


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_platform_runs_as_containers_of_its_image_with_mongodb_and_s3(
    tmp_path: Path,
) -> None:
    with (
        PodmanEngine() as engine,
        S3Server() as s3,
        mongodb_stand_in(tmp_path / "mongo.log") as url,
    ):
        cli = engine.cli
        image = build_aorta_image(cli)
        build_busybox_image(cli, "deploy-test/copier:latest", COPIER)
        wiring = HostWiring(tmp_path, s3.endpoint, url, engine.socket, image)
        pods = generate(wiring, REPLICAS)
        scan = tmp_path / "scan.bin"
        scan.write_bytes(bytes(range(256)) * 40)
        with played(cli, pods, tmp_path / "pods.yaml"):
            try:
                _wait(lambda: all(ready(p) for p in pods.probes), 120, "every Pod")
            except TimeoutError as error:
                raise AssertionError(f"{error}\n{pod_logs(cli, pods)}") from None
            first, second = (f"127.0.0.1:{port}" for port in pods.gateway_ports)
            with ThreadPoolExecutor(1) as client:
                driven = client.submit(
                    run_clara_python,
                    CLIENT,
                    args=[first, second, PIPELINE, str(scan), str(tmp_path / "result.bin")],
                    timeout=200,
                )
                _wait(lambda: operator_running(cli) or driven.done(), 150, "the operator")
                finished_first = driven.done()
                killed = kill_leader(cli)
                done = driven.result()
            logs = pod_logs(cli, pods) if done.returncode else ""
    assert done.returncode == 0, f"{done.stderr}\n{logs}"
    seen = json.loads(done.stdout)
    # The leader was killed while the operator ran; the other replica took over.
    assert killed.startswith("aorta-scheduler-")
    assert not finished_first, "the client finished before its operator was seen running"
    assert seen["status"] == [3, 1]
    assert seen["files"] == [
        "/input/scan.bin",
        "/operators/copier/scan.bin",
        "/operators/copier/size.txt",
    ]
    assert seen["log"] == ["copier: 1 files"]
    assert (tmp_path / "result.bin").read_bytes() == scan.read_bytes()
    # Every Pod the manifests describe ran: two replicas of each scaled service.
    assert {p.pod for p in pods.probes} == {
        f"{name}-{index}" for name, count in REPLICAS.items() for index in range(count)
    }
