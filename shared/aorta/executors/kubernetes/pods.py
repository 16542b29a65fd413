"""The pod of one operator run, as a plain manifest: pure, no client, no I/O.

Anatomy (docs/kubernetes.md):

- init container `fetch-inputs` (the Aorta image, `aorta agent fetch`): pulls every input
  prefix from the blob store into its `emptyDir` volume;
- container `operator`: the operator's own image, unmodified (`args` carry the definition's
  `command`, which is Clara's rule: arguments to the image's entrypoint, or the command when it
  has none), with the environment contract and each declared path mounted where it was declared
  (inputs read-only), and the claim of each pipeline service's data folder it declares
  (`service_mounts`) read-only at its path;
- container `push-outputs` (`aorta agent push`): waits, through the API, for the operator
  container to end, then pushes its outputs (exit 0 only) and its log. It alone mounts a token of
  the agent service account: the operator container gets no API credentials.

The kubelet enforces the stage timeout (`activeDeadlineSeconds`, ending the pod with reason
`DeadlineExceeded`), but counts it from the pod's start, while the port counts it from the
operator's: a pod is created with the timeout plus `AORTA_K8S_FETCH_ALLOWANCE`, and once its
operator container has started the executor shortens the deadline to end exactly one timeout
after that start (`held_deadline`; Kubernetes lets a deadline be lowered, never raised).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from aorta import ids, operator_env
from aorta.agent.plan import (
    NAMESPACE_VARIABLE,
    PLAN_VARIABLE,
    POD_VARIABLE,
    WORK_FOLDER,
    AgentPlan,
)
from aorta.errors import Invalid
from aorta.executors.port import OperatorRun, VolumeBinding
from aorta.executors.workspace import Workspace
from aorta.kubernetes import names
from aorta.kubernetes.settings import KubernetesSettings

Json = dict[str, Any]

OPERATOR_CONTAINER = "operator"
FETCH_CONTAINER = "fetch-inputs"
PUSH_CONTAINER = "push-outputs"
TOKEN_FOLDER = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where in-cluster clients look for a token; mounted in the push sidecar only."""
TIMEOUT_ANNOTATION = "aorta/timeout"
"""The stage timeout in whole seconds, counted from the operator container's start."""
LOG_KEY_ANNOTATION = "aorta/log-key"
VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"

_TOKEN_SECONDS = 3607  # the kubelet refreshes a projected token before 80 % of its life
_AGENT_WORKSPACE = Workspace(Path(WORK_FOLDER))


def image_reference(settings: KubernetesSettings, image: str, tag: str) -> str:
    """`registry/image:tag`; Clara definitions name images without the registry."""
    reference = f"{image}:{tag or 'latest'}"
    return f"{settings.registry}/{reference}" if settings.registry else reference


def operator_environment(run: OperatorRun) -> dict[str, str]:
    """The operator container's variables, as the local executor builds them but with the
    declared paths themselves (they are mounted there).

    `PYTHONUNBUFFERED=1` first (Python operators show their output while they run); then the
    run's `environment` (the Triton addresses and their legacy aliases in it become the
    contract's); then the contract (`aorta.operator_env`). A run without GPUs gets
    `NVIDIA_VISIBLE_DEVICES=void` unless its variables say otherwise: CUDA base images set it
    to `all`, which would hand every GPU of the node to an operator that asked for none.
    `Invalid` for what the contract refuses.
    """
    variables = dict(run.environment)
    grpc = variables.pop(operator_env.TRITON_GRPC_URI, None)
    http = variables.pop(operator_env.TRITON_HTTP_URI, None)
    for legacy in (operator_env.LEGACY_TRITON_URI, operator_env.LEGACY_TRTIS_URI):
        http = http or variables.pop(legacy, None)
        variables.pop(legacy, None)
    contract = operator_env.OperatorEnvironment(
        job_id=ids.job_id(run.job_id),
        job_name=run.job_name,
        stage_name=run.operator,
        stage_timeout=run.timeout,
        payload_id=ids.payload_id(run.payload_id),
        inputs=tuple(operator_env.PathEntry(b.entry_name, b.path) for b in run.inputs),
        outputs=tuple(operator_env.PathEntry(b.entry_name, b.path) for b in run.outputs),
        triton_grpc_uri=grpc,
        triton_http_uri=http,
        nosynclock=True,
        variables=variables,
    )
    env = {"PYTHONUNBUFFERED": "1"} | contract.to_env()
    if run.resources.gpu == 0:
        env.setdefault(VISIBLE_DEVICES, "void")
    return env


def run_labels(run: OperatorRun, settings: KubernetesSettings) -> dict[str, str]:
    """The labels of a run's pod; `running()` and `wait()` select on them."""
    return {
        **names.base_labels(settings.instance, names.OPERATOR_COMPONENT),
        names.JOB_LABEL: names.label_value(run.job_id),
        names.OPERATOR_LABEL: names.label_value(run.operator.lower()),
        names.ATTEMPT_LABEL: str(run.attempt),
        names.RUN_LABEL: names.label_value(run.run_id),
    }


def operator_pod(
    run: OperatorRun,
    settings: KubernetesSettings,
    agent_env: Mapping[str, str],
    *,
    pipeline_pull_secrets: Sequence[str] = (),
) -> Json:
    """The manifest of `run`'s pod (see the module docstring).

    `agent_env` is what the agent containers need to open the blob store (`AORTA_BLOB_STORE`,
    `AORTA_S3_ENDPOINT`, ...; never credentials: those come from `settings.blob_secret`).
    `pipeline_pull_secrets` are the pipeline's `pull-secrets`, added after the settings' own.
    Raises `Invalid` for declared paths that overlap or are not plain rooted folders, and for
    run variables that use a reserved name.
    """
    volumes = _volumes(run)
    plan = AgentPlan(
        inputs=run.inputs, outputs=run.outputs, log_key=run.log_key, container=OPERATOR_CONTAINER
    )
    agent_base = [
        {"name": PLAN_VARIABLE, "value": plan.to_json()},
        *({"name": k, "value": v} for k, v in sorted(agent_env.items())),
    ]
    fetch = _agent_container(FETCH_CONTAINER, "fetch", settings, agent_base)
    fetch["volumeMounts"] = [
        *_agent_mounts(run.inputs, volumes, read_only=False),
        {"name": "agent-tmp", "mountPath": "/tmp"},
    ]
    push = _agent_container(
        PUSH_CONTAINER,
        "push",
        settings,
        [
            *agent_base,
            _field_env(POD_VARIABLE, "name"),
            _field_env(NAMESPACE_VARIABLE, "namespace"),
        ],
    )
    push["volumeMounts"] = [
        *_agent_mounts(run.outputs, volumes, read_only=True),
        {"name": "agent-tmp", "mountPath": "/tmp"},
        {"name": "agent-api", "mountPath": TOKEN_FOLDER, "readOnly": True},
    ]
    operator = {
        "name": OPERATOR_CONTAINER,
        "image": image_reference(settings, run.image, run.tag),
        "env": [{"name": k, "value": v} for k, v in sorted(operator_environment(run).items())],
        "resources": _resources(run, settings),
        "volumeMounts": [
            *({"name": volumes[b.path], "mountPath": b.path, "readOnly": True} for b in run.inputs),
            *({"name": volumes[b.path], "mountPath": b.path} for b in run.outputs),
            *(
                {"name": f"service-{index}", "mountPath": mount.path, "readOnly": True}
                for index, mount in enumerate(run.service_mounts)
            ),
        ],
        "securityContext": container_security(read_only_root=False),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if run.command:
        operator["args"] = list(run.command)
    timeout = max(1, math.ceil(run.timeout))
    spec: Json = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": timeout + settings.fetch_allowance,
        "terminationGracePeriodSeconds": settings.termination_grace,
        "serviceAccountName": settings.agent_service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security(settings),
        "initContainers": [fetch],
        "containers": [operator, push],
        "volumes": [
            *({"name": name, "emptyDir": {}} for name in volumes.values()),
            *(
                {
                    "name": f"service-{index}",
                    "persistentVolumeClaim": {"claimName": mount.source, "readOnly": True},
                }
                for index, mount in enumerate(run.service_mounts)
            ),
            {"name": "agent-tmp", "emptyDir": {}},
            _token_volume(),
        ],
    }
    if run.resources.gpu:
        spec["tolerations"] = [
            {"key": settings.gpu_resource, "operator": "Exists", "effect": "NoSchedule"}
        ]
    secrets = pull_secrets(settings, pipeline_pull_secrets)
    if secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in secrets]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": names.pod_name(run.job_id, run.operator, run.attempt),
            "namespace": settings.namespace,
            "labels": run_labels(run, settings),
            "annotations": {
                names.RUN_ID_ANNOTATION: run.run_id,
                names.OPERATOR_ANNOTATION: run.operator,
                LOG_KEY_ANNOTATION: run.log_key,
                TIMEOUT_ANNOTATION: str(timeout),
            },
        },
        "spec": spec,
    }


def held_deadline(pod: Json) -> int | None:
    """The `activeDeadlineSeconds` that ends `pod` one stage timeout after its operator
    container started, when that is below its current deadline; None when the operator has
    not started yet or the deadline is already that tight."""
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    timeout = ((pod.get("metadata") or {}).get("annotations") or {}).get(TIMEOUT_ANNOTATION)
    started = None
    for container in status.get("containerStatuses") or ():
        if container.get("name") == OPERATOR_CONTAINER:
            state = container.get("state") or {}
            started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
    if not (started and status.get("startTime") and timeout and spec.get("activeDeadlineSeconds")):
        return None
    waited = _instant(str(started)) - _instant(str(status["startTime"]))
    deadline = max(0, math.ceil(waited.total_seconds())) + int(timeout)
    return deadline if deadline < int(spec["activeDeadlineSeconds"]) else None


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def pull_secrets(settings: KubernetesSettings, pipeline: Sequence[str]) -> list[str]:
    """The settings' pull secrets, then the pipeline's `pull-secrets`, each once."""
    return list(dict.fromkeys([*settings.pull_secrets, *pipeline]))


def _volumes(run: OperatorRun) -> dict[str, str]:
    """One volume name per declared path, checked by the local executor's rules: plain rooted
    folders (`Workspace.volume` raises `Invalid` otherwise), none inside another."""
    folders: dict[str, PurePosixPath] = {}
    for binding in (*run.inputs, *run.outputs):
        folder = PurePosixPath(_AGENT_WORKSPACE.volume(binding.path))
        for other, other_folder in folders.items():
            if folder.is_relative_to(other_folder) or other_folder.is_relative_to(folder):
                raise Invalid(
                    f"paths {other!r} and {binding.path!r} overlap: each input and output "
                    "needs a folder of its own"
                )
        folders[binding.path] = folder
    return {path: f"volume-{index}" for index, path in enumerate(folders)}


def _agent_mounts(
    bindings: Sequence[VolumeBinding], volumes: Mapping[str, str], *, read_only: bool
) -> list[Json]:
    return [
        {
            "name": volumes[b.path],
            "mountPath": str(_AGENT_WORKSPACE.volume(b.path)),
            **({"readOnly": True} if read_only else {}),
        }
        for b in bindings
    ]


def _agent_container(name: str, verb: str, settings: KubernetesSettings, env: list[Json]) -> Json:
    return {
        "name": name,
        "image": settings.agent_image,
        "args": ["agent", verb],
        "env": env,
        "envFrom": (
            [{"secretRef": {"name": settings.blob_secret}}] if settings.blob_secret else []
        ),
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": container_security(read_only_root=True),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _field_env(variable: str, field: str) -> Json:
    return {"name": variable, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.{field}"}}}


def _resources(run: OperatorRun, settings: KubernetesSettings) -> Json:
    wanted = {"cpu": f"{run.resources.cpu * 1000}m", "memory": f"{run.resources.memory_mb}Mi"}
    if run.resources.gpu:
        wanted[settings.gpu_resource] = str(run.resources.gpu)
    # Requests equal limits: the pod is Guaranteed, GPUs are exclusive (extended resources
    # must be equal anyway) and going over the memory request ends the operator, as in Clara.
    return {"requests": dict(wanted), "limits": dict(wanted)}


def pod_security(settings: KubernetesSettings) -> Json:
    """The pod security context of every pod the platform makes: the settings' user and
    group (also `fsGroup`), never root unless allowed, the runtime's seccomp profile."""
    context: Json = {
        "runAsNonRoot": settings.run_as_non_root,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if settings.run_as_user:
        context["runAsUser"] = settings.run_as_user
    if settings.run_as_group:
        context["runAsGroup"] = settings.run_as_group
        context["fsGroup"] = settings.run_as_group
    return context


def container_security(*, read_only_root: bool) -> Json:
    """A container that may not gain privileges and holds no capability."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
    }


def _field_file(field: str) -> Json:
    return {"path": field, "fieldRef": {"fieldPath": f"metadata.{field}"}}


def _token_volume() -> Json:
    return {
        "name": "agent-api",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": _TOKEN_SECONDS}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ]
        },
    }
