"""A pipeline service's Deployment, Service and data claim, valid against the schemas, and the
operator pod that mounts the claim read-only."""

from __future__ import annotations

import dataclasses

import pytest

from aorta.errors import Invalid
from aorta.executors.kubernetes.pods import OPERATOR_CONTAINER, operator_pod
from aorta.executors.kubernetes.service_objects import (
    claim_name,
    data_claim,
    data_paths,
    endpoint_environment,
    service_deployment,
    service_name,
    service_service,
)
from aorta.executors.port import OperatorRun, Resources, ServiceMount, VolumeBinding
from aorta.executors.services import (
    SERVICE_DATA_MACRO,
    HttpPort,
    ServiceLaunch,
    SharedVolume,
    service_key,
)
from aorta.kubernetes.settings import KubernetesSettings
from aorta.settings import SettingsError
from aorta.testing.kube_schema import check_schema

COMMAND = ("tritonserver", f"--model-store={SERVICE_DATA_MACRO}/models")
SERVICE = service_key("clara/trtis", "19.08", COMMAND)
JOB = "3fd032fc6e1b4b0bb7b5bd9e3c5a4f21"
PAYLOAD = "b1f0c2d3e4f5061728394a5b6c7d8e9f"
SETTINGS = KubernetesSettings(registry="registry.example:5000", service_storage_class="nfs")
LAUNCH = ServiceLaunch(
    service_id=SERVICE,
    name="trtis",
    image="clara/trtis",
    tag="19.08",
    command=COMMAND,
    resources=Resources(cpu=2, gpu=1, memory_mb=4096),
    variables={"MODELS": "covid"},
    http=(HttpPort("NVIDIA_CLARA_TRTISURI", 8000), HttpPort("GRPC", 8001)),
    volumes=(SharedVolume("MODEL_PATH", "/models"),),
    log_key=f"logs/services/{SERVICE}.log",
)


def test_the_deployment_runs_the_image_with_its_gpus_ports_and_data_claim() -> None:
    deployment = service_deployment(SETTINGS, LAUNCH)
    check_schema(deployment)
    assert deployment["metadata"]["name"] == service_name(SERVICE) == f"aorta-{SERVICE}"
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example:5000/clara/trtis:19.08"
    assert container["args"] == ["tritonserver", "--model-store=/clara/common/models"]
    assert container["resources"]["limits"] == {
        "cpu": "2000m",
        "memory": "4096Mi",
        "nvidia.com/gpu": "1",
    }
    assert [port["containerPort"] for port in container["ports"]] == [8000, 8001]
    assert container["env"] == [
        {"name": "GRPC", "value": "0.0.0.0:8001"},
        {"name": "MODELS", "value": "covid"},
        {"name": "NVIDIA_CLARA_SERVICE_PORT", "value": "8000"},
        {"name": "NVIDIA_CLARA_TRTISURI", "value": "0.0.0.0:8000"},
    ]
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": claim_name(SERVICE)}
    assert pod["automountServiceAccountToken"] is False
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_the_service_and_the_claim() -> None:
    service = service_service(SETTINGS, LAUNCH)
    assert service is not None
    check_schema(service)
    assert [port["port"] for port in service["spec"]["ports"]] == [8000, 8001]
    claim = data_claim(SETTINGS, LAUNCH)
    check_schema(claim)
    assert claim["spec"]["storageClassName"] == "nfs"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_operators_reach_the_service_by_its_dns_name() -> None:
    host = f"aorta-{SERVICE}.aorta-jobs.svc"
    assert endpoint_environment(SETTINGS, LAUNCH) == {
        "NVIDIA_CLARA_TRTISURI": f"{host}:8000",
        "GRPC": f"{host}:8001",
        "MODEL_PATH": "/models",
    }


def test_a_service_without_gpus_ports_or_command() -> None:
    launch = dataclasses.replace(
        LAUNCH, command=(), http=(), resources=Resources(cpu=0, memory_mb=0)
    )
    deployment = service_deployment(SETTINGS, launch)
    check_schema(deployment)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "args" not in container and "readinessProbe" not in container
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"} in container["env"]
    assert service_service(SETTINGS, launch) is None


def test_paths_a_mount_cannot_take_are_refused() -> None:
    nested = (SharedVolume("A", "/clara/common/models"), SharedVolume("B", "/data"))
    assert data_paths(dataclasses.replace(LAUNCH, volumes=nested)) == ["/clara/common", "/data"]
    with pytest.raises(Invalid):
        data_paths(dataclasses.replace(LAUNCH, volumes=(SharedVolume("A", "models"),)))


def test_an_operator_pod_mounts_its_services_claims_read_only() -> None:
    run = OperatorRun(
        run_id=f"{JOB}-seg-1",
        job_id=JOB,
        job_name="covid",
        payload_id=PAYLOAD,
        operator="seg",
        attempt=1,
        image="clara/seg",
        tag="1",
        command=(),
        inputs=(),
        outputs=(VolumeBinding("seg", "/output", f"payloads/{PAYLOAD}/operators/seg/"),),
        resources=Resources(cpu=1, memory_mb=256),
        timeout=60.0,
        log_key=f"logs/{JOB}/seg.log",
        environment=endpoint_environment(SETTINGS, LAUNCH),
        service_mounts=(ServiceMount(claim_name(SERVICE), "/models"),),
    )
    pod = operator_pod(run, SETTINGS, {})
    check_schema(pod)
    operator = next(c for c in pod["spec"]["containers"] if c["name"] == OPERATOR_CONTAINER)
    assert {"name": "service-0", "mountPath": "/models", "readOnly": True} in operator[
        "volumeMounts"
    ]
    assert {
        "name": "service-0",
        "persistentVolumeClaim": {"claimName": claim_name(SERVICE), "readOnly": True},
    } in pod["spec"]["volumes"]


def test_the_claim_settings_are_read_and_checked() -> None:
    settings = KubernetesSettings.from_env(
        {
            "AORTA_K8S_SERVICE_STORAGE_CLASS": "cephfs",
            "AORTA_K8S_SERVICE_DATA_SIZE": "20Gi",
            "AORTA_K8S_SERVICE_DATA_ACCESS": "ReadWriteMany",
        }
    )
    assert settings.service_storage_class == "cephfs"
    assert (settings.service_data_size, settings.service_data_access) == ("20Gi", "ReadWriteMany")
    with pytest.raises(SettingsError, match="AORTA_K8S_SERVICE_DATA_ACCESS"):
        KubernetesSettings.from_env({"AORTA_K8S_SERVICE_DATA_ACCESS": "ReadOnlyMany"})
