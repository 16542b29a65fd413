"""The create body of an operator's container: Clara's semantics and isolation by default."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aorta import ids, operator_env
from aorta.errors import Invalid
from aorta.executors import OperatorRun, Resources, VolumeBinding
from aorta.executors.container.devices import EngineKind
from aorta.executors.container.libpod_spec import CreateApi, CreateRequest, create_request
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.container.spec import (
    ATTEMPT_LABEL,
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    JOB_LABEL,
    OPERATOR_LABEL,
    PLAN_LABEL,
    RUN_LABEL,
    RunPlan,
    container_name,
    create_body,
    image_reference,
)

JOB = ids.new_id()
PAYLOAD = ids.new_id()
WORK = Path("/var/tmp/aorta-runs-0") / JOB / "seg-1"


def _run(**changes: Any) -> OperatorRun:
    run = OperatorRun(
        run_id=f"{JOB}-seg-1",
        job_id=JOB,
        job_name="liver",
        payload_id=PAYLOAD,
        operator="seg",
        attempt=1,
        image="clara/dicom-test",
        tag="0.7.2",
        command=(),
        inputs=(
            VolumeBinding("payload", "/input", f"payloads/{PAYLOAD}/input/"),
            VolumeBinding("reader/volume", "/app/in", f"payloads/{PAYLOAD}/operators/reader/v/"),
        ),
        outputs=(VolumeBinding("seg", "/app/out", f"payloads/{PAYLOAD}/operators/seg/"),),
        resources=Resources(cpu=3, gpu=0, memory_mb=512),
        timeout=90.0,
        log_key=f"logs/{JOB}/seg.log",
        environment={"MODEL": "liver", "THRESHOLD": "0.5"},
    )
    return replace(run, **changes)


def _plan(run: OperatorRun) -> RunPlan:
    return RunPlan(run.run_id, run.operator, run.outputs, run.log_key, run.timeout, str(WORK))


def _volumes(run: OperatorRun) -> dict[str, Path]:
    return {b.path: WORK / "volumes" / b.path.lstrip("/") for b in (*run.inputs, *run.outputs)}


def _body(
    run: OperatorRun | None = None, *, settings: ContainerSettings | None = None
) -> dict[str, Any]:
    run = run or _run()
    return create_body(
        run, volumes=_volumes(run), plan=_plan(run), settings=settings or ContainerSettings()
    )


def _request(run: OperatorRun, engine: EngineKind) -> CreateRequest:
    return create_request(
        run, volumes=_volumes(run), plan=_plan(run), engine=engine, settings=ContainerSettings()
    )


def _env(body: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in body["Env"])


def test_the_image_runs_its_own_entrypoint_and_command_without_a_command() -> None:
    body = _body()
    assert body["Image"] == "clara/dicom-test:0.7.2"
    assert "Cmd" not in body and "Entrypoint" not in body


def test_a_command_replaces_the_images_command_only() -> None:
    body = _body(_run(command=("python3", "/app/main.py", "--fast")))
    assert body["Cmd"] == ["python3", "/app/main.py", "--fast"]
    assert "Entrypoint" not in body


def test_image_references_default_to_latest_and_keep_digests() -> None:
    assert image_reference("clara/ai", "") == "clara/ai:latest"
    assert image_reference("nvcr.io/nvidia/clara/x", "0.7.2-2010.1") == (
        "nvcr.io/nvidia/clara/x:0.7.2-2010.1"
    )
    assert image_reference("clara/ai@sha256:" + "a" * 64, "1") == "clara/ai@sha256:" + "a" * 64


def test_inputs_are_read_only_and_outputs_read_write_at_their_declared_paths() -> None:
    binds = _body()["HostConfig"]["Binds"]
    assert binds == [
        f"{WORK}/volumes/input:/input:ro",
        f"{WORK}/volumes/app/in:/app/in:ro",
        f"{WORK}/volumes/app/out:/app/out:rw",
    ]


def test_nothing_but_the_runs_own_folders_is_mounted() -> None:
    body = _body()
    host = body["HostConfig"]
    sources = [bind.split(":", 1)[0] for bind in host["Binds"]]
    assert all(Path(source).is_relative_to(WORK / "volumes") for source in sources)
    assert "Mounts" not in host and "VolumesFrom" not in host and "Volumes" not in body
    assert host["Tmpfs"] == {"/tmp": "rw,nosuid,nodev"}


def test_the_environment_carries_the_container_paths_and_the_operators_variables() -> None:
    env = _env(_body())
    assert env[operator_env.INPUT_PATHS] == "payload:/input;reader/volume:/app/in"
    assert env[operator_env.OUTPUT_PATHS] == "seg:/app/out"
    assert env[operator_env.JOB_ID] == JOB
    assert env[operator_env.STAGE_NAME] == "seg"
    assert env[operator_env.PAYLOAD_ID] == PAYLOAD
    assert env["MODEL"] == "liver" and env["THRESHOLD"] == "0.5"


def test_the_environment_is_built_from_nothing_of_the_platforms() -> None:
    env = _env(_body())
    allowed = operator_env.RESERVED_NAMES | {
        "MODEL",
        "THRESHOLD",
        "PYTHONUNBUFFERED",
        "NVIDIA_VISIBLE_DEVICES",
    }
    assert set(env) <= allowed
    assert not [name for name in env if name.startswith("AORTA_") or name == "DOCKER_HOST"]
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"  # no GPU asked: none handed by a CUDA image


def test_a_run_variable_with_a_reserved_name_is_refused() -> None:
    with pytest.raises(Invalid):
        _body(_run(environment={operator_env.JOB_ID: "mine"}))


def test_isolation_by_default() -> None:
    host = _body()["HostConfig"]
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"]
    assert "CapAdd" not in host
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"] == "none"
    assert host["RestartPolicy"] == {"Name": "no"}


def test_an_operator_that_reaches_triton_gets_the_service_network_only() -> None:
    triton = {
        operator_env.TRITON_GRPC_URI: "127.0.0.1:8001",
        operator_env.TRITON_HTTP_URI: "127.0.0.1:8000",
    }
    assert _body(_run(environment=triton))["HostConfig"]["NetworkMode"] == "host"
    custom = ContainerSettings(service_network="aorta-triton")
    body = _body(_run(environment=triton), settings=custom)
    assert body["HostConfig"]["NetworkMode"] == "aorta-triton"


def test_cpu_and_memory_requests_become_enforced_limits_without_swap() -> None:
    host = _body()["HostConfig"]
    assert host["NanoCpus"] == 3_000_000_000
    assert host["Memory"] == 512 * 1024 * 1024
    assert host["MemorySwap"] == host["Memory"]


def test_no_gpu_no_device_request_and_the_docker_api_on_every_engine() -> None:
    for engine in EngineKind:
        request = _request(_run(), engine)
        assert request.api is CreateApi.DOCKER
        host = request.body["HostConfig"]
        assert "DeviceRequests" not in host and "Devices" not in host


def test_docker_gets_a_device_request_for_exactly_the_assigned_gpus() -> None:
    run = _run(resources=Resources(cpu=1, gpu=2, memory_mb=256, gpu_devices=(1, 3)))
    request = _request(run, EngineKind.DOCKER)
    assert request.api is CreateApi.DOCKER
    host = request.body["HostConfig"]
    assert host["DeviceRequests"] == [
        {"Driver": "nvidia", "DeviceIDs": ["1", "3"], "Capabilities": [["gpu"]]}
    ]
    assert "Devices" not in host
    assert "NVIDIA_VISIBLE_DEVICES" not in _env(request.body)


def test_podman_creates_a_gpu_run_through_libpod_with_cdi_names_of_the_assigned_gpus() -> None:
    run = _run(
        command=("python3", "main.py"),
        resources=Resources(cpu=2, gpu=1, memory_mb=256, gpu_devices=(2,)),
    )
    request = _request(run, EngineKind.PODMAN)
    assert request.api is CreateApi.LIBPOD
    body = request.body
    assert body["devices"] == [{"path": "nvidia.com/gpu=2"}]
    assert body["image"] == "clara/dicom-test:0.7.2"
    assert body["command"] == ["python3", "main.py"]
    assert body["mounts"] == [
        {"destination": "/input", "type": "bind", "source": f"{WORK}/volumes/input",
         "options": ["rbind", "ro"]},
        {"destination": "/app/in", "type": "bind", "source": f"{WORK}/volumes/app/in",
         "options": ["rbind", "ro"]},
        {"destination": "/app/out", "type": "bind", "source": f"{WORK}/volumes/app/out",
         "options": ["rbind", "rw"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["rw", "nosuid", "nodev"]},
    ]  # fmt: skip
    assert body["privileged"] is False and body["cap_drop"] == ["ALL"]
    assert body["no_new_privileges"] is True
    assert body["netns"] == {"nsmode": "none"}
    assert body["resource_limits"] == {
        "memory": {"limit": 256 << 20, "swap": 256 << 20},
        "cpu": {"quota": 200_000, "period": 100_000},
    }
    assert body["env"][operator_env.OUTPUT_PATHS] == "seg:/app/out"
    assert "NVIDIA_VISIBLE_DEVICES" not in body["env"]
    assert RunPlan.from_labels(body["labels"]) == _plan(run)


def test_labels_name_the_run_job_operator_and_platform_instance() -> None:
    run = _run()
    labels = _body(run, settings=ContainerSettings(instance="ward-7"))["Labels"]
    assert labels[INSTANCE_LABEL] == "ward-7"
    assert labels[COMPONENT_LABEL] == "operator"
    assert labels[RUN_LABEL] == run.run_id
    assert labels[JOB_LABEL] == JOB
    assert labels[OPERATOR_LABEL] == "seg"
    assert labels[ATTEMPT_LABEL] == "1"
    assert RunPlan.from_labels(labels) == _plan(run)


def test_the_container_name_is_the_instance_and_run() -> None:
    assert container_name("aorta", f"{JOB}-seg-1") == f"aorta-{JOB}-seg-1"


def test_a_plan_label_that_cannot_be_read_is_invalid() -> None:
    with pytest.raises(Invalid):
        RunPlan.from_labels({PLAN_LABEL: "{not json"})
    with pytest.raises(Invalid):
        RunPlan.from_labels({})


def test_paths_a_bind_mount_cannot_name_are_refused() -> None:
    run = _run(outputs=(VolumeBinding("seg", "/app/o:ut", f"payloads/{PAYLOAD}/o/"),))
    with pytest.raises(Invalid, match="cannot be bind-mounted"):
        _body(run)
