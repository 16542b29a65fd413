"""Pipeline services on the Kubernetes executor, against the stand-in API server: a Deployment,
a Service and a data claim per service, the connection variables naming the Service, readiness
from the Deployment's ready replicas, adoption by a new runner, stop, and a service that crashes
at start failing with its last log lines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from aorta.errors import NotFound
from aorta.executors.kubernetes.service_objects import (
    claim_name,
    service_name,
)
from aorta.executors.kubernetes.services import KubernetesServiceRunner
from aorta.executors.port import ServiceMount
from aorta.executors.services import (
    SERVICE_DATA_MACRO,
    HttpPort,
    ServiceFailed,
    ServiceLaunch,
    SharedVolume,
    service_key,
)
from tests.integration.executors.conftest import eventually
from tests.integration.kubernetes.k8s_cluster import NAMESPACE, Cluster
from tests.integration.kubernetes.k8s_pipeline_services import CRASH_LOG, ServiceNode

COMMAND = ("tritonserver", f"--model-store={SERVICE_DATA_MACRO}/models")


def trtis(**changes: object) -> ServiceLaunch:
    service_id = service_key("nvcr.io/nvidia/tritonserver", "19.08-py3", COMMAND)
    launch = ServiceLaunch(
        service_id=service_id,
        name="trtis",
        image="nvcr.io/nvidia/tritonserver",
        tag="19.08-py3",
        command=COMMAND,
        http=(HttpPort("NVIDIA_CLARA_TRTISURI", 8000),),
        volumes=(SharedVolume("MODELS", "/models"),),
        ready_timeout=20.0,
        log_key=f"logs/services/{service_id}.log",
    )
    return replace(launch, **changes)  # type: ignore[arg-type]


@pytest.fixture
async def node(stand_in: Cluster) -> AsyncIterator[ServiceNode]:
    assert stand_in.server is not None
    played = ServiceNode(stand_in.server, stand_in.api)
    yield played
    await played.close()


def runner_of(cluster: Cluster) -> KubernetesServiceRunner:
    runner = cluster.executor().service_runner()
    assert isinstance(runner, KubernetesServiceRunner)
    return runner


async def _read(cluster: Cluster, key: str) -> bytes:
    return b"".join([chunk async for chunk in cluster.blobs.get(key)])


async def test_a_service_is_a_deployment_a_service_and_a_claim_named_in_its_variables(
    stand_in: Cluster, node: ServiceNode
) -> None:
    server = node.server
    launch = trtis()
    endpoint = await runner_of(stand_in).ensure(launch)
    name = service_name(launch.service_id)
    assert endpoint.environment == {
        "NVIDIA_CLARA_TRTISURI": f"{name}.{NAMESPACE}.svc:8000",
        "MODELS": "/models",
    }
    assert endpoint.mounts == (ServiceMount(claim_name(launch.service_id), "/models"),)
    deployment = server.get("deployments", NAMESPACE, name)
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["tritonserver", "--model-store=/clara/common/models"]
    assert container["readinessProbe"]["tcpSocket"] == {"port": 8000}
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/clara/common", "/models"]
    service = server.get("services", NAMESPACE, name)
    assert service is not None and service["spec"]["ports"][0]["port"] == 8000
    assert server.get("persistentvolumeclaims", NAMESPACE, claim_name(launch.service_id))


async def test_a_new_runner_adopts_the_running_service_instead_of_starting_another(
    stand_in: Cluster, node: ServiceNode
) -> None:
    server = node.server
    launch = trtis()
    first = await runner_of(stand_in).ensure(launch)
    later = runner_of(stand_in)
    assert await later.running() == [launch.service_id]
    assert await later.ensure(launch) == first
    assert server.names("deployments", NAMESPACE) == [service_name(launch.service_id)]
    assert server.names("pods", NAMESPACE) == [service_name(launch.service_id)]


async def test_stop_removes_the_deployment_and_service_and_keeps_the_data_claim(
    stand_in: Cluster, node: ServiceNode
) -> None:
    server = node.server
    launch = trtis()
    runner = runner_of(stand_in)
    await runner.ensure(launch)
    server.set_log(NAMESPACE, service_name(launch.service_id), "service", "serving\n")
    assert [line async for line in runner.log_lines(launch.service_id)] == ["serving"]
    await runner.stop(launch.service_id, grace=1.0)
    assert server.names("deployments", NAMESPACE) == []
    assert server.names("services", NAMESPACE) == []
    assert server.names("pods", NAMESPACE) == []
    assert server.names("persistentvolumeclaims", NAMESPACE) == [claim_name(launch.service_id)]
    assert await _read(stand_in, launch.log_key) == b"serving\n"
    assert [line async for line in runner.log_lines(launch.service_id)] == ["serving"]
    assert await runner.running() == []


async def test_a_running_services_log_is_copied_to_the_blob_store(
    stand_in: Cluster, node: ServiceNode
) -> None:
    launch = trtis()
    runner = KubernetesServiceRunner(
        stand_in.api, stand_in.blobs, stand_in.settings, log_interval=0.05
    )
    try:
        await runner.ensure(launch)
        pod = service_name(launch.service_id)
        node.server.set_log(NAMESPACE, pod, "service", "loaded covid\n")

        async def copied(text: bytes) -> bool:
            try:
                return await _read(stand_in, launch.log_key) == text
            except NotFound:
                return False

        await eventually(lambda: copied(b"loaded covid\n"))
        node.server.set_log(NAMESPACE, pod, "service", "loaded covid\nserving\n")
        await eventually(lambda: copied(b"loaded covid\nserving\n"))
    finally:
        await runner.close()


async def test_a_service_that_crashes_at_start_fails_with_its_last_log_lines(
    stand_in: Cluster, node: ServiceNode
) -> None:
    server = node.server
    launch = trtis()
    node.crashing.add(launch.service_id)
    with pytest.raises(ServiceFailed) as failed:
        await runner_of(stand_in).ensure(launch)
    message = str(failed.value)
    assert "pipeline service trtis exited at start with status 3" in message
    assert message.endswith("loading models\nerror: no model repository")
    assert server.names("deployments", NAMESPACE) == []
    assert await _read(stand_in, launch.log_key) == CRASH_LOG.encode()


async def test_a_service_without_ports_has_no_service_object(
    stand_in: Cluster, node: ServiceNode
) -> None:
    quiet = trtis(http=(), volumes=(), command=("sleep", "infinity"))
    quiet = replace(quiet, service_id=service_key(quiet.image, quiet.tag, quiet.command))
    endpoint = await runner_of(stand_in).ensure(quiet)
    assert endpoint.environment == {} and endpoint.mounts == ()
    assert node.server.names("services", NAMESPACE) == []
