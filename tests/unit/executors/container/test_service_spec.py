"""The container of a pipeline service, and what an operator that declares one gets: its data
folder read-only and the network that reaches the service's published ports."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aorta import ids
from aorta.errors import Invalid
from aorta.executors import OperatorRun, Resources, VolumeBinding
from aorta.executors.container.devices import EngineKind
from aorta.executors.container.libpod_spec import CreateApi, create_request
from aorta.executors.container.service_spec import (
    DATA_PATH,
    container_name,
    create_body,
    data_paths,
    data_volume,
    exposed_ports,
    podman_spec,
    service_labels,
)
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.container.spec import RunPlan, needs_network
from aorta.executors.container.spec import create_body as operator_body
from aorta.executors.port import ServiceMount
from aorta.executors.service_ports import http_ports, own_environment
from aorta.executors.services import (
    SERVICE_DATA_MACRO,
    HttpPort,
    ServiceLaunch,
    SharedVolume,
    service_key,
)

COMMAND = ("tritonserver", f"--model-store={SERVICE_DATA_MACRO}/models")
SERVICE = service_key("nvcr.io/nvidia/tritonserver", "19.08-py3", COMMAND)
JOB = ids.new_id()
WORK = Path("/var/tmp/aorta-runs-0") / JOB / "seg-1"


def _launch(**changes: Any) -> ServiceLaunch:
    launch = ServiceLaunch(
        service_id=SERVICE,
        name="trtis",
        image="nvcr.io/nvidia/tritonserver",
        tag="19.08-py3",
        command=COMMAND,
        resources=Resources(cpu=2, gpu=1, memory_mb=2048, gpu_devices=(1,)),
        variables={"MODELS": "liver"},
        http=(HttpPort("NVIDIA_CLARA_TRTISURI", 8000),),
        volumes=(SharedVolume("MODEL_PATH", "/models"),),
        log_key=f"logs/services/{SERVICE}.log",
    )
    return replace(launch, **changes)


def _run(**changes: Any) -> OperatorRun:
    run = OperatorRun(
        run_id=f"{JOB}-seg-1",
        job_id=JOB,
        job_name="covid",
        payload_id=ids.new_id(),
        operator="seg",
        attempt=1,
        image="clara/seg",
        tag="1",
        command=(),
        inputs=(),
        outputs=(VolumeBinding("seg", "/output", "payloads/p/operators/seg/"),),
        resources=Resources(cpu=1, memory_mb=256),
        timeout=60.0,
        log_key=f"logs/{JOB}/seg.log",
    )
    return replace(run, **changes)


def test_the_service_container_publishes_its_ports_on_loopback_and_mounts_its_data() -> None:
    body = create_body(_launch(), "aorta", {"NVIDIA_CLARA_TRTISURI": 8000}, 15.0)
    volume = data_volume("aorta", SERVICE)
    assert body["Image"] == "nvcr.io/nvidia/tritonserver:19.08-py3"
    assert body["Cmd"] == ["tritonserver", f"--model-store={DATA_PATH}/models"]
    assert body["Labels"] == service_labels(_launch(), "aorta")
    assert body["Labels"]["aorta.component"] == "service"
    assert "MODELS=liver" in body["Env"] and "NVIDIA_VISIBLE_DEVICES=1" in body["Env"]
    assert "NVIDIA_CLARA_TRTISURI=0.0.0.0:8000" in body["Env"]
    host = body["HostConfig"]
    assert host["PortBindings"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert host["Binds"] == [f"{volume}:{DATA_PATH}:rw", f"{volume}:/models:rw"]
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["DeviceRequests"][0]["DeviceIDs"] == ["1"]
    assert host["NanoCpus"] == 2_000_000_000 and host["Memory"] == 2048 << 20


def test_podman_gets_the_same_container_through_its_own_api() -> None:
    body = podman_spec(_launch(), "aorta", {"NVIDIA_CLARA_TRTISURI": 8000}, 15.0)
    assert body["devices"] == [{"path": "nvidia.com/gpu=1"}]
    assert body["portmappings"][0]["container_port"] == 8000
    assert body["portmappings"][0]["host_ip"] == "127.0.0.1"
    assert [v["Dest"] for v in body["volumes"]] == [DATA_PATH, "/models"]
    assert body["resource_limits"]["cpu"]["quota"] == 200_000
    assert body["env"]["NVIDIA_VISIBLE_DEVICES"] == "1"


def test_a_service_without_command_gpus_or_limits_runs_the_images_own_unlimited() -> None:
    launch = _launch(command=(), resources=Resources(cpu=0, memory_mb=0), http=(), volumes=())
    body = create_body(launch, "aorta", {}, 15.0)
    assert "Cmd" not in body and "NanoCpus" not in body["HostConfig"]
    assert "NVIDIA_VISIBLE_DEVICES=void" in body["Env"]
    assert "resource_limits" not in podman_spec(launch, "aorta", {}, 15.0)


def test_volume_paths_inside_the_data_path_are_not_mounted_twice() -> None:
    volumes = (SharedVolume("A", "/clara/common/models"), SharedVolume("B", "/data"))
    assert data_paths(_launch(volumes=volumes)) == [DATA_PATH, "/data"]
    with pytest.raises(Invalid, match="absolute"):
        data_paths(_launch(volumes=(SharedVolume("A", "relative/models"),)))


def test_a_connection_without_a_port_takes_the_one_the_image_exposes_else_one_from_8000() -> None:
    launch = _launch(http=(HttpPort("URI"),))
    assert http_ports(launch, (8500,)) == {"URI": 8500}
    with pytest.raises(Invalid, match="exposes 8000, 8001"):
        http_ports(launch, (8000, 8001))
    both = _launch(http=(HttpPort("A"), HttpPort("B", 8000), HttpPort("C")))
    assert http_ports(both) == {"A": 8001, "B": 8000, "C": 8002}


def test_the_service_reads_where_it_listens_from_its_environment() -> None:
    launch = _launch(http=(HttpPort("URI"), HttpPort("GRPC", 8001)), variables={"GRPC": "mine"})
    ports = http_ports(launch)
    assert own_environment(launch, ports) == {
        "URI": "0.0.0.0:8000",
        "GRPC": "mine",
        "NVIDIA_CLARA_SERVICE_PORT": "8000",
    }
    body = create_body(launch, "aorta", ports, 15.0)
    assert "URI=0.0.0.0:8000" in body["Env"]
    assert sorted(body["HostConfig"]["PortBindings"]) == ["8000/tcp", "8001/tcp"]
    image: dict[str, Any] = {
        "Config": {"ExposedPorts": {"8001/tcp": {}, "8000/tcp": {}, "53/udp": {}}}
    }
    assert exposed_ports(image) == (8000, 8001)


def test_names_follow_the_instance_and_the_service() -> None:
    assert container_name("aorta", SERVICE) == f"aorta-service-aorta-{SERVICE}"
    assert data_volume("aorta", SERVICE) == f"aorta-service-aorta-{SERVICE}-data"


def test_an_operator_gets_its_services_data_folders_read_only_and_the_network() -> None:
    mount = ServiceMount(data_volume("aorta", SERVICE), "/models")
    run = _run(service_mounts=(mount,))
    plan = RunPlan(run.run_id, run.operator, run.outputs, run.log_key, 60.0, str(WORK))
    volumes = {"/output": WORK / "output"}
    body = operator_body(run, volumes=volumes, plan=plan, settings=ContainerSettings())
    assert f"{mount.source}:/models:ro" in body["HostConfig"]["Binds"]
    assert body["HostConfig"]["NetworkMode"] == "host"
    request = create_request(
        replace(run, resources=Resources(cpu=1, memory_mb=256, gpu=1, gpu_devices=(0,))),
        volumes=volumes,
        plan=plan,
        engine=EngineKind.PODMAN,
        settings=ContainerSettings(),
    )
    assert request.api is CreateApi.LIBPOD
    assert request.body["volumes"] == [{"Name": mount.source, "Dest": "/models", "Options": ["ro"]}]


def test_an_operator_given_a_service_address_on_loopback_gets_the_network() -> None:
    assert needs_network(_run(environment={"NVIDIA_CLARA_TRTISURI": "127.0.0.1:40123"}))
    assert not needs_network(_run(environment={"NVIDIA_CLARA_TRTISURI": "remote:8000"}))
    assert not needs_network(_run(environment={"COLOUR": "teal"}))


def test_a_service_folder_a_mount_cannot_name_is_refused() -> None:
    run = _run(service_mounts=(ServiceMount("vol", "/a:b"),))
    plan = RunPlan(run.run_id, run.operator, run.outputs, run.log_key, 60.0, str(WORK))
    with pytest.raises(Invalid, match="cannot be mounted"):
        operator_body(
            run, volumes={"/output": WORK / "output"}, plan=plan, settings=ContainerSettings()
        )
