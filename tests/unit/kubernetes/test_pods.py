"""The operator pod manifest: valid against the schemas, and shaped as docs/kubernetes.md says."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from aorta.agent.plan import PLAN_VARIABLE, AgentPlan
from aorta.errors import Invalid
from aorta.executors.kubernetes.pods import (
    FETCH_CONTAINER,
    OPERATOR_CONTAINER,
    PUSH_CONTAINER,
    TOKEN_FOLDER,
    held_deadline,
    operator_environment,
    operator_pod,
)
from aorta.executors.port import OperatorRun, Resources, VolumeBinding
from aorta.kubernetes.settings import KubernetesSettings
from aorta.testing.kube_schema import check_schema

Json = dict[str, Any]
JOB = "3fd032fc6e1b4b0bb7b5bd9e3c5a4f21"
PAYLOAD = "b1f0c2d3e4f5061728394a5b6c7d8e9f"
SETTINGS = KubernetesSettings(registry="registry.example:5000/clara", pull_secrets=("ngc",))
AGENT_ENV = {"AORTA_BLOB_STORE": "s3://aorta", "AORTA_S3_ENDPOINT": "minio:9000"}

RUN = OperatorRun(
    run_id=f"{JOB}-segment-1",
    job_id=JOB,
    job_name="liver",
    payload_id=PAYLOAD,
    operator="segment",
    attempt=1,
    image="clara/ai-liver",
    tag="0.8.1",
    command=("python", "-u", "app.py"),
    inputs=(
        VolumeBinding("payload", "/input", f"payloads/{PAYLOAD}/input/"),
        VolumeBinding("reader/volume", "/volume", f"payloads/{PAYLOAD}/operators/reader/volume/"),
    ),
    outputs=(VolumeBinding("segment", "/output", f"payloads/{PAYLOAD}/operators/segment/"),),
    resources=Resources(cpu=2, gpu=1, memory_mb=4096),
    timeout=600.5,
    log_key=f"logs/{JOB}/segment.log",
    environment={
        "NVIDIA_TRITON_GRPCURI": "triton-x.aorta-jobs.svc:8001",
        "NVIDIA_TRITON_HTTPURI": "triton-x.aorta-jobs.svc:8000",
        "MODEL": "liver",
    },
)


def containers(pod: Json) -> dict[str, Json]:
    spec = pod["spec"]
    return {c["name"]: c for c in [*spec["initContainers"], *spec["containers"]]}


def env_of(container: Json) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


@pytest.mark.parametrize(
    "run",
    [
        RUN,
        dataclasses.replace(RUN, resources=Resources(), command=(), environment={}),
        dataclasses.replace(RUN, inputs=(), outputs=()),
    ],
    ids=["gpu", "cpu-no-command", "no-volumes"],
)
@pytest.mark.parametrize(
    "settings",
    [SETTINGS, KubernetesSettings(blob_secret="", run_as_user=0, run_as_group=0)],
    ids=["configured", "bare"],
)
def test_the_pod_validates_against_the_schemas(
    run: OperatorRun, settings: KubernetesSettings
) -> None:
    check_schema(operator_pod(run, settings, AGENT_ENV))


def test_the_operator_runs_its_own_image_with_the_contract_and_its_requests() -> None:
    pod = operator_pod(RUN, SETTINGS, AGENT_ENV)
    operator = containers(pod)[OPERATOR_CONTAINER]
    env = env_of(operator)

    assert operator["image"] == "registry.example:5000/clara/clara/ai-liver:0.8.1"
    assert operator["args"] == ["python", "-u", "app.py"] and "command" not in operator
    assert env["NVIDIA_CLARA_INPUTPATHS"] == "payload:/input;reader/volume:/volume"
    assert env["NVIDIA_CLARA_OUTPUTPATHS"] == "segment:/output"
    assert env["NVIDIA_CLARA_STAGETIMEOUT"] == "600.5"
    assert env["NVIDIA_TRITON_GRPCURI"] == "triton-x.aorta-jobs.svc:8001"
    assert env["CLARA_TRITON_URI"] == "triton-x.aorta-jobs.svc:8000"
    assert env["MODEL"] == "liver" and env["NVIDIA_CLARA_NOSYNCLOCK"] == "1"
    assert "NVIDIA_VISIBLE_DEVICES" not in env  # it asked for a GPU: the device plugin decides
    wanted = {"cpu": "2000m", "memory": "4096Mi", "nvidia.com/gpu": "1"}
    assert operator["resources"] == {"requests": wanted, "limits": wanted}
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in operator["volumeMounts"]}
    assert mounts == {"/input": True, "/volume": True, "/output": False}
    assert pod["spec"]["activeDeadlineSeconds"] == 601 + SETTINGS.fetch_allowance
    assert pod["metadata"]["annotations"]["aorta/timeout"] == "601"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "ngc"}]


def test_pull_secrets_come_from_the_settings_then_the_pipeline_each_once() -> None:
    pod = operator_pod(RUN, SETTINGS, AGENT_ENV, pipeline_pull_secrets=("ngc-clara", "ngc"))

    assert pod["spec"]["imagePullSecrets"] == [{"name": "ngc"}, {"name": "ngc-clara"}]
    assert "imagePullSecrets" not in operator_pod(RUN, KubernetesSettings(), AGENT_ENV)["spec"]


def test_a_cpu_operator_sees_no_gpu() -> None:
    pod = operator_pod(dataclasses.replace(RUN, resources=Resources()), SETTINGS, AGENT_ENV)

    assert env_of(containers(pod)[OPERATOR_CONTAINER])["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert "tolerations" not in pod["spec"]


def test_the_agent_fetches_into_and_pushes_from_the_same_volumes() -> None:
    pod = operator_pod(RUN, SETTINGS, AGENT_ENV)
    by_name = containers(pod)
    fetch, push, operator = (
        by_name[n] for n in (FETCH_CONTAINER, PUSH_CONTAINER, OPERATOR_CONTAINER)
    )
    plan = AgentPlan.from_environ(env_of(fetch))

    assert fetch["args"] == ["agent", "fetch"] and push["args"] == ["agent", "push"]
    assert plan.inputs == RUN.inputs and plan.outputs == RUN.outputs
    assert plan.log_key == RUN.log_key and plan.container == OPERATOR_CONTAINER
    assert env_of(push)[PLAN_VARIABLE] == plan.to_json()
    volume_of = {m["mountPath"]: m["name"] for m in operator["volumeMounts"]}
    fetched = {
        m["mountPath"]: m["name"] for m in fetch["volumeMounts"] if m["name"].startswith("volume")
    }
    pushed = {
        m["mountPath"]: m["name"] for m in push["volumeMounts"] if m["name"].startswith("volume")
    }
    assert fetched == {
        "/aorta/work/volumes/input": volume_of["/input"],
        "/aorta/work/volumes/volume": volume_of["/volume"],
    }
    assert pushed == {"/aorta/work/volumes/output": volume_of["/output"]}
    assert env_of(fetch)["AORTA_BLOB_STORE"] == "s3://aorta"
    assert fetch["envFrom"] == [{"secretRef": {"name": SETTINGS.blob_secret}}]


def test_only_the_push_sidecar_gets_an_api_token() -> None:
    pod = operator_pod(RUN, SETTINGS, AGENT_ENV)

    assert pod["spec"]["automountServiceAccountToken"] is False
    holders = [
        name
        for name, container in containers(pod).items()
        if any(m["mountPath"] == TOKEN_FOLDER for m in container["volumeMounts"])
    ]
    assert holders == [PUSH_CONTAINER]


def test_every_container_is_unprivileged() -> None:
    pod = operator_pod(RUN, SETTINGS, AGENT_ENV)

    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    for container in containers(pod).values():
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}


def test_paths_that_overlap_or_reserved_variables_are_refused() -> None:
    overlapping = dataclasses.replace(
        RUN, outputs=(VolumeBinding("segment", "/input/masks", "p/"),)
    )
    reserved = dataclasses.replace(RUN, environment={"NVIDIA_CLARA_JOBID": "x"})

    with pytest.raises(Invalid, match="overlap"):
        operator_pod(overlapping, SETTINGS, AGENT_ENV)
    with pytest.raises(Invalid, match="NVIDIA_CLARA_JOBID"):
        operator_environment(reserved)


@pytest.mark.parametrize(
    ("start", "operator_started", "current", "expected"),
    [
        ("2026-01-01T10:00:00Z", "2026-01-01T10:00:42Z", 1201, 642),  # fetch took 42 s
        ("2026-01-01T10:00:00Z", "2026-01-01T10:00:42+00:00", 642, None),  # already held
        ("2026-01-01T10:00:00Z", None, 1201, None),  # the operator has not started
    ],
)
def test_the_deadline_is_held_to_the_timeout_from_the_operator_start(
    start: str, operator_started: str | None, current: int, expected: int | None
) -> None:
    state = {"running": {"startedAt": operator_started}} if operator_started else {"waiting": {}}
    pod = {
        "metadata": {"annotations": {"aorta/timeout": "600"}},
        "spec": {"activeDeadlineSeconds": current},
        "status": {
            "startTime": start,
            "containerStatuses": [{"name": OPERATOR_CONTAINER, "state": state}],
        },
    }

    assert held_deadline(pod) == expected


def test_the_plan_reads_back_and_refuses_a_broken_one() -> None:
    plan = AgentPlan(RUN.inputs, RUN.outputs, RUN.log_key, OPERATOR_CONTAINER)

    assert AgentPlan.from_environ({PLAN_VARIABLE: plan.to_json()}) == plan
    with pytest.raises(Invalid, match=PLAN_VARIABLE):
        AgentPlan.from_environ({PLAN_VARIABLE: json.dumps({"inputs": []})})
    with pytest.raises(Invalid, match="not set"):
        AgentPlan.from_environ({})
