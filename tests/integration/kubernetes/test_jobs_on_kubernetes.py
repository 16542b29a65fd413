"""Jobs end to end through the Kubernetes executor: the platform in this process, built from its
settings (`AORTA_SCHEDULER_EXECUTOR=kubernetes`, `AORTA_TRITON_BACKEND=kubernetes`), driven
through the gateway with the Clara gRPC stubs, against the stand-in API server; the simulated
kubelet plays each operator pod, its agent code moving the bytes through the shared blob folder
(`k8s_jobs_platform`).

A GPU operator with a model gets its pod, its Triton Deployment and Service, and the model
loaded on a real tritonserver; then cancel, a timeout, and a scheduler crash while a pod runs
and while one ends: the new leader adopts the pod, never starting a second attempt."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
import zipfile

import pytest
import tritonclient.grpc.aio as triton_grpc  # type: ignore[import-untyped]

from aorta.api import jobs_pb2, payloads_pb2, payloads_pb2_grpc
from aorta.kubernetes import names
from aorta.kubernetes.api import Json
from aorta.payload_layout import operator_output_prefix
from aorta_services.scheduler.app import RunningScheduler
from aorta_services.scheduler.domain.runs import run_id
from tests.integration.kubernetes.k8s_cluster import NAMESPACE
from tests.integration.kubernetes.k8s_jobs_platform import KubernetesPlatform, ident
from tests.integration.kubernetes.k8s_kubelet import Play

P = jobs_pb2
pytestmark = pytest.mark.timeout(90)

ECHO_MODEL = "class TritonPythonModel:\n    def initialize(self, args):\n        pass\n"

SEGMENTATION = """\
api-version: 0.6.0
name: k8s-segmentation
pull-secrets: [ngc-clara]
timeout: 120
operators:
- name: segment
  container: {image: clara/segment, tag: "1.0", command: [python, /app/segment.py]}
  input: [{path: /input}]
  output: [{path: /output}]
  requests: {cpu: 1, gpu: 1, memory: 512}
  models: [{name: echo}]
  variables: {TRITON_MODEL_NAME: echo}
"""


def one_operator(name: str, *, timeout: int = 60) -> str:
    """A pipeline of one CPU operator reading the payload; `timeout` is the operator's own."""
    return f"""\
api-version: 0.4.0
name: k8s-{name}
timeout: 120
operators:
- name: {name}
  container: {{image: busybox, tag: "1.36"}}
  input: [{{path: /input}}]
  output: [{{path: /output}}]
  requests: {{cpu: 1, memory: 256}}
  timeout: {timeout}
"""


def model_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "echo/config.pbtxt", 'name: "echo"\nbackend: "python"\nmax_batch_size: 0\n'
        )
        archive.writestr("echo/1/model.py", ECHO_MODEL)
    return buffer.getvalue()


async def job_playing(
    platform: KubernetesPlatform, definition: str, operator: str, play: Play
) -> tuple[str, str]:
    """A created job of a new pipeline whose operator's first attempt plays `play`."""
    job_id, payload_id = await platform.job(await platform.pipeline(definition))
    platform.kubelet.plays[run_id(job_id, operator, 1)] = play
    return job_id, payload_id


def stored_pod(platform: KubernetesPlatform, name: str) -> Json | None:
    return platform.server.get("pods", NAMESPACE, name)


async def operator_running(platform: KubernetesPlatform, name: str, within: float = 30.0) -> Json:
    """The pod once its operator container runs."""
    deadline = time.monotonic() + within
    while True:
        pod = stored_pod(platform, name)
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or []
        if pod is not None and any(
            s["name"] == "operator" and "running" in s["state"] for s in statuses
        ):
            return pod
        assert time.monotonic() < deadline, f"pod {name} never ran its operator: {pod}"
        await asyncio.sleep(0.05)


async def reattached(
    scheduler: RunningScheduler, job_id: str, operator: str, within: float = 30.0
) -> None:
    """Returns once `scheduler` leads and watches a run of the operator."""
    deadline = time.monotonic() + within
    while True:
        engine = scheduler.engine
        if engine is not None and engine.run_id_of(job_id, operator) is not None:
            return
        assert time.monotonic() < deadline, f"the scheduler never took {operator} over"
        await asyncio.sleep(0.02)


def environment(pod: Json) -> dict[str, str]:
    return {item["name"]: item["value"] for item in pod["spec"]["containers"][0]["env"]}


async def outputs(platform: KubernetesPlatform, payload_id: str, operator: str) -> list[str]:
    prefix = operator_output_prefix(payload_id, operator, None)
    return [info.key.removeprefix(prefix) async for info in platform.context.blobs.list(prefix)]


async def test_a_gpu_operator_runs_as_a_pod_beside_a_triton_deployment_with_its_model(
    platform: KubernetesPlatform,
) -> None:
    await platform.upload_model("echo", model_zip())
    play = Play(log="segmenting\nlungs found", write={"mask.txt": "lungs"})
    job_id, payload_id = await job_playing(platform, SEGMENTATION, "segment", play)
    await platform.upload(payload_id, "scan/ct.dcm", b"CT")

    await platform.start(job_id)
    status = await platform.stopped(job_id)

    assert (status.state, status.status) == (P.JOB_STATE_STOPPED, P.JOB_STATUS_HEALTHY), status
    [pod] = platform.pods
    name = names.pod_name(job_id, "segment", 1)
    assert pod["metadata"]["name"] == name
    assert stored_pod(platform, name) is None  # deleted once its outcome was read
    operator, sidecar = pod["spec"]["containers"]
    assert operator["image"] == "clara/segment:1.0"
    assert operator["args"] == ["python", "/app/segment.py"]
    assert operator["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert operator["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert [(c["name"], c["args"]) for c in pod["spec"]["initContainers"]] == [
        ("fetch-inputs", ["agent", "fetch"])
    ]
    assert (sidecar["name"], sidecar["args"], sidecar["image"]) == (
        "push-outputs",
        ["agent", "push"],
        "aorta:test",
    )
    assert pod["spec"]["imagePullSecrets"] == [{"name": "ngc-clara"}]
    env = environment(pod)
    assert env["NVIDIA_CLARA_JOBID"] == job_id
    assert env["NVIDIA_CLARA_PAYLOADID"] == payload_id
    assert env["NVIDIA_CLARA_STAGENAME"] == "segment"
    assert env["NVIDIA_CLARA_INPUTPATHS"] == "payload:/input"
    assert env["NVIDIA_CLARA_OUTPUTPATHS"] == "segment:/output"
    assert env["TRITON_MODEL_NAME"] == "echo"
    assert "NVIDIA_VISIBLE_DEVICES" not in env  # the device plugin gives the pod its GPU

    server = platform.server
    [deployment] = server.names("deployments", NAMESPACE)
    assert server.names("services", NAMESPACE) == [deployment]
    assert env["NVIDIA_TRITON_GRPCURI"] == f"{deployment}.{NAMESPACE}.svc:8001"
    assert env["NVIDIA_TRITON_HTTPURI"] == f"{deployment}.{NAMESPACE}.svc:8000"
    # What the operator would have done: reach the model at the address it was given.
    client = triton_grpc.InferenceServerClient(env["NVIDIA_TRITON_GRPCURI"])
    try:
        assert await client.is_model_ready("echo")
    finally:
        await client.close()

    mask = await platform.download(payload_id, "/operators/segment/mask.txt")
    scan = await platform.download(payload_id, "/operators/segment/scan/ct.dcm")
    assert (mask, scan) == (b"lungs", b"CT")
    # The agent recorded what it pushed: Details names a checksum for every output.
    details = payloads_pb2_grpc.PayloadsStub(platform.channel).Details(
        payloads_pb2.PayloadsDetailsRequest(payload_id=ident(payload_id))
    )
    checksums = [line async for item in details for line in item.header.messages]
    for name, data in (("mask.txt", b"lungs"), ("scan/ct.dcm", b"CT")):
        digest = hashlib.sha256(data).hexdigest()
        assert f"sha256 {digest} /operators/segment/{name}" in checksums, checksums
    logs = await platform.logs(job_id, "segment")
    assert logs[:2] == ["segmenting", "lungs found"]
    assert logs[-1].startswith("[aorta] exited with code 0; outputs stored"), logs


async def test_cancel_deletes_the_running_pod(platform: KubernetesPlatform) -> None:
    play = Play(log="working", hang=True)
    job_id, payload_id = await job_playing(platform, one_operator("sleeper"), "sleeper", play)
    await platform.start(job_id)
    name = names.pod_name(job_id, "sleeper", 1)
    await operator_running(platform, name)

    canceled = await platform.jobs.Cancel(
        P.JobsCancelRequest(job_id=ident(job_id), reason="wrong patient")
    )

    assert (canceled.job_state, canceled.job_status) == (P.JOB_STATE_STOPPED, P.JOB_STATUS_CANCELED)
    status = await platform.until(
        job_id, lambda s: s.operator_details[0].status == P.JOB_OPERATOR_STATUS_FAULTED
    )
    assert status.messages[0] == "canceled: wrong patient"
    assert ("pods", name, 1) in platform.server.deletions  # AORTA_SCHEDULER_GRACE
    assert stored_pod(platform, name) is None
    assert await outputs(platform, payload_id, "sleeper") == []


async def test_an_operator_past_its_timeout_faults_the_job(platform: KubernetesPlatform) -> None:
    play = Play(log="still going", hang=True)
    definition = one_operator("sleeper", timeout=1)
    job_id, payload_id = await job_playing(platform, definition, "sleeper", play)

    await platform.start(job_id)
    status = await platform.stopped(job_id, within=20)

    assert status.status == P.JOB_STATUS_FAULTED
    assert status.messages[0].startswith(
        "operator 'sleeper' timed out after 1 s: ran past its timeout of 1 s"
    ), status.messages
    assert (await platform.logs(job_id, "sleeper"))[0] == "still going"
    assert stored_pod(platform, names.pod_name(job_id, "sleeper", 1)) is None
    assert await outputs(platform, payload_id, "sleeper") == []


async def test_a_restarted_scheduler_adopts_the_running_pod(platform: KubernetesPlatform) -> None:
    # Runs until the new leader took it over, however long a busy machine makes that.
    release = asyncio.Event()
    play = Play(log="slow", write={"done.txt": "yes"}, release=release)
    job_id, payload_id = await job_playing(platform, one_operator("slow"), "slow", play)
    await platform.upload(payload_id, "a.dcm", b"A")
    await platform.start(job_id)
    name = names.pod_name(job_id, "slow", 1)
    await operator_running(platform, name)

    await platform.crash_scheduler()
    scheduler = await platform.start_scheduler()
    await reattached(scheduler, job_id, "slow")
    assert await operator_running(platform, name, within=0)  # adopted while it runs
    release.set()
    status = await platform.stopped(job_id)

    assert status.status == P.JOB_STATUS_HEALTHY, status.messages
    assert platform.pod_creates(name) == 1
    assert [pod["metadata"]["name"] for pod in platform.pods] == [name]
    assert sorted(await outputs(platform, payload_id, "slow")) == ["a.dcm", "done.txt"]
    assert (await platform.logs(job_id, "slow"))[0] == "slow"


async def test_a_pod_that_ended_while_no_scheduler_ran_is_collected_not_run_again(
    platform: KubernetesPlatform,
) -> None:
    # Ends once the scheduler is down, not before: a pod ended and recorded by the old leader
    # would tell nothing.
    release = asyncio.Event()
    play = Play(log="quick", write={"done.txt": "yes"}, release=release)
    job_id, payload_id = await job_playing(platform, one_operator("quick"), "quick", play)
    # A second attempt would finish too: the job's end then tells nothing, the pods do.
    platform.kubelet.plays[run_id(job_id, "quick", 2)] = play
    await platform.start(job_id)
    name = names.pod_name(job_id, "quick", 1)
    await operator_running(platform, name)

    await platform.crash_scheduler()
    release.set()
    while (stored_pod(platform, name) or {}).get("status", {}).get("phase") != "Succeeded":
        await platform.server.next_change()
    await platform.start_scheduler()
    status = await platform.stopped(job_id)

    assert status.status == P.JOB_STATUS_HEALTHY, status.messages
    assert [pod["metadata"]["name"] for pod in platform.pods] == [name]
    assert stored_pod(platform, name) is None  # read, then deleted by the new scheduler
    assert await outputs(platform, payload_id, "quick") == ["done.txt"]
    assert (await platform.logs(job_id, "quick"))[0] == "quick"
