"""Pipeline services through the whole platform on the Kubernetes executor (the stand-in,
`k8s_jobs_platform`): the scheduler makes a service's Deployment, Service and data claim before
the operator's pod, the pod names the Service in its connection variable and mounts the claim,
and a scheduler that crashed and restarted adopts the running service instead of making it
again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aorta.api import jobs_pb2
from aorta.kubernetes import names
from aorta.kubernetes.api import Json
from aorta_services.scheduler.domain.runs import run_id
from tests.integration.kubernetes.k8s_cluster import NAMESPACE
from tests.integration.kubernetes.k8s_jobs_platform import KubernetesPlatform
from tests.integration.kubernetes.k8s_kubelet import Play
from tests.integration.kubernetes.k8s_pipeline_services import ServiceNode

P = jobs_pb2
pytestmark = pytest.mark.timeout(90)

COVID = """\
api-version: 0.4.0
name: k8s-covid
timeout: 120
operators:
- name: segment
  container: {image: busybox, tag: "1.36"}
  input: [{path: /input}]
  output: [{path: /output}]
  requests: {cpu: 1, memory: 256}
  services:
  - name: trtis
    container:
      image: clara/trtis
      tag: "19.08"
      command: [trtserver, "--model-store=$(NVIDIA_CLARA_SERVICE_DATA_PATH)/models"]
    requests: {cpu: 1, memory: 256}
    connections:
      http: [{name: NVIDIA_CLARA_TRTISURI, port: 8000}]
      volume: [{name: MODELS_PATH, path: /models}]
"""


@pytest.fixture
async def node(platform: KubernetesPlatform) -> AsyncIterator[ServiceNode]:
    assert platform.cluster is not None
    played = ServiceNode(platform.server, platform.cluster.api)
    yield played
    await played.close()


async def run_job(platform: KubernetesPlatform, name: str) -> jobs_pb2.JobsStatusResponse:
    job_id, payload_id = await platform.job(await platform.pipeline(COVID), name)
    platform.kubelet.plays[run_id(job_id, "segment", 1)] = Play(log="segmented")
    await platform.upload(payload_id, "scan.nii", b"NIfTI")
    await platform.start(job_id)
    return await platform.stopped(job_id)


def service_deployments(platform: KubernetesPlatform) -> list[str]:
    prefix = f"{names.PLATFORM}-svc-"
    return [n for n in platform.server.names("deployments", NAMESPACE) if n.startswith(prefix)]


def operator_env(pod: Json) -> dict[str, str]:
    operator = pod["spec"]["containers"][0]
    return {item["name"]: item["value"] for item in operator["env"] if "value" in item}


async def test_the_service_runs_before_the_pod_that_reaches_it_and_survives_a_scheduler_crash(
    platform: KubernetesPlatform, node: ServiceNode
) -> None:
    # The platform's one scheduler leads: a second one started here could win the lease, and
    # the crash below, of the newest, would then hit the replica standing by.
    status = await run_job(platform, "first")
    assert status.status == P.JOB_STATUS_HEALTHY, status.messages
    [deployment] = service_deployments(platform)
    assert platform.server.names("services", NAMESPACE) == [deployment]
    assert platform.server.names("persistentvolumeclaims", NAMESPACE) == [f"{deployment}-data"]
    [pod] = platform.pods
    assert operator_env(pod)["NVIDIA_CLARA_TRTISURI"] == f"{deployment}.{NAMESPACE}.svc:8000"
    assert operator_env(pod)["MODELS_PATH"] == "/models"
    claims = [v for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert [c["persistentVolumeClaim"]["claimName"] for c in claims] == [f"{deployment}-data"]

    await platform.crash_scheduler()
    await platform.start_scheduler()
    status = await run_job(platform, "second")
    assert status.status == P.JOB_STATUS_HEALTHY, status.messages
    # One Deployment, never deleted, and its one pod: the new leader adopted the service.
    assert service_deployments(platform) == [deployment]
    assert not [d for d in platform.server.deletions if d[0] == "deployments"]
    assert platform.server.creates.count(("pods", deployment)) == 1
    # One pod per job (the lease outlasts a busy machine's stalls: no second attempt), and
    # each reached the service.
    assert len(platform.pods) == 2
    addresses = {operator_env(pod)["NVIDIA_CLARA_TRTISURI"] for pod in platform.pods}
    assert addresses == {f"{deployment}.{NAMESPACE}.svc:8000"}
