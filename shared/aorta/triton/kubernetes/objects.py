"""The Deployment and Service of one pooled Triton server on Kubernetes: pure manifests.

One server is one Deployment (one replica, `Recreate`, so a GPU is never held twice by one
server) and one ClusterIP Service in the jobs namespace. The container runs the stock Triton
image as `tritonserver --model-control-mode=explicit --model-repository=s3://...`: it starts
empty and the pool loads models into it over gRPC; Triton reads each model from the blob store's
`triton-repository/` folder itself, with credentials from the blob store's Secret. Readiness
(`/v2/health/ready`) is not strict: a server loading one model keeps serving the others, and
stays behind its Service. Operators reach it through the Service's DNS name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aorta.kubernetes import names
from aorta.kubernetes.settings import KubernetesSettings
from aorta.settings import EnvReader, Settings, SettingsError

Json = dict[str, Any]

CONTAINER = "tritonserver"
HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002
SERVER_ID_ANNOTATION = "aorta/triton-server-id"
REPOSITORY_ROOT = "triton-repository/"
"""The blob store folder Triton servers load from: one expanded model folder per model."""


@dataclass(frozen=True)
class TritonSettings:
    """How Triton servers run on Kubernetes (beside `KubernetesSettings`).

    - `AORTA_K8S_TRITON_IMAGE` (default `nvcr.io/nvidia/tritonserver:24.08-py3`).
    - `AORTA_K8S_TRITON_REPOSITORY`: the blob store's `triton-repository/` folder as Triton
      spells it; by default `s3://[https://]ENDPOINT/BUCKET/[PREFIX/]triton-repository`. Set it
      only when Triton reaches the same objects by another address.
    - `AORTA_K8S_TRITON_GPUS` (default 1), `AORTA_K8S_TRITON_CPU` (cores, default 2),
      `AORTA_K8S_TRITON_MEMORY_MB` (default 8192), `AORTA_K8S_TRITON_SHM_MB` (default 1024,
      the `/dev/shm` the Python backend and the shared-memory protocol need).
    - `AORTA_K8S_TRITON_READY_TIMEOUT` (seconds, default 600): how long a new server may take to
      be scheduled, pull its image and start before it is given up.
    """

    image: str = "nvcr.io/nvidia/tritonserver:24.08-py3"
    repository: str = ""
    gpus: int = 1
    cpu: int = 2
    memory_mb: int = 8192
    shm_mb: int = 1024
    ready_timeout: int = 600
    region: str = ""
    """The S3 region Triton signs requests for (the platform's `AORTA_S3_REGION`)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], settings: Settings) -> TritonSettings:
        """Reads the settings; the default repository needs an `s3://` blob store."""
        env = EnvReader(environ)
        repository = env.optional("AORTA_K8S_TRITON_REPOSITORY") or default_repository(settings)
        return cls(
            image=env.text("AORTA_K8S_TRITON_IMAGE", cls.image),
            repository=repository,
            gpus=env.integer("AORTA_K8S_TRITON_GPUS", cls.gpus, minimum=0),
            cpu=env.integer("AORTA_K8S_TRITON_CPU", cls.cpu, minimum=1),
            memory_mb=env.integer("AORTA_K8S_TRITON_MEMORY_MB", cls.memory_mb, minimum=256),
            shm_mb=env.integer("AORTA_K8S_TRITON_SHM_MB", cls.shm_mb, minimum=64),
            ready_timeout=env.integer(
                "AORTA_K8S_TRITON_READY_TIMEOUT", cls.ready_timeout, minimum=1
            ),
            region=settings.s3_region,
        )


def default_repository(settings: Settings) -> str:
    """The blob store's `triton-repository/` folder as a Triton S3 repository path.

    The location itself was checked when the platform opened the blob store
    (`aorta.blobs.s3.parse_location`); here it is only taken apart."""
    if not settings.blob_store.startswith("s3://"):
        raise SettingsError(
            "setting AORTA_K8S_TRITON_REPOSITORY is required when AORTA_BLOB_STORE is not an "
            "s3:// location: Triton in the cluster reads models from S3"
        )
    location = urlsplit(settings.blob_store)
    bucket, prefix = location.netloc, location.path.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    scheme = "https://" if settings.s3_secure else ""
    return f"s3://{scheme}{settings.s3_endpoint}/{bucket}/{prefix}{REPOSITORY_ROOT}".rstrip("/")


def server_labels(k8s: KubernetesSettings, server_id: str) -> dict[str, str]:
    """The labels of one server's objects; its pods are selected by these."""
    return {
        **names.base_labels(k8s.instance, names.TRITON_COMPONENT),
        names.SERVER_LABEL: names.label_value(server_id),
    }


def service_host(k8s: KubernetesSettings, server_id: str) -> str:
    """The DNS name operators reach the server by."""
    return f"{names.triton_name(server_id)}.{k8s.namespace}.svc"


def triton_deployment(k8s: KubernetesSettings, triton: TritonSettings, server_id: str) -> Json:
    """The Deployment of server `server_id`, empty at start (see the module docstring)."""
    labels = server_labels(k8s, server_id)
    wanted = {"cpu": f"{triton.cpu * 1000}m", "memory": f"{triton.memory_mb}Mi"}
    if triton.gpus:
        wanted[k8s.gpu_resource] = str(triton.gpus)
    args = [
        f"--model-repository={triton.repository}",
        "--model-control-mode=explicit",
        "--strict-readiness=false",
        f"--http-port={HTTP_PORT}",
        f"--grpc-port={GRPC_PORT}",
        f"--metrics-port={METRICS_PORT}",
        "--exit-timeout-secs=10",
    ]
    container: Json = {
        "name": CONTAINER,
        "image": triton.image,
        "command": ["tritonserver"],
        "args": args,
        "env": [
            *_credentials(k8s),
            *([{"name": "AWS_DEFAULT_REGION", "value": triton.region}] if triton.region else []),
        ],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT},
            {"name": "grpc", "containerPort": GRPC_PORT},
            {"name": "metrics", "containerPort": METRICS_PORT},
        ],
        "readinessProbe": _probe("/v2/health/ready", period=5, failures=3),
        "livenessProbe": _probe("/v2/health/live", period=10, failures=3),
        # Pulling and starting takes minutes on a fresh node; liveness must not restart it then.
        "startupProbe": _probe(
            "/v2/health/live", period=10, failures=max(1, triton.ready_timeout // 10)
        ),
        "resources": {"requests": dict(wanted), "limits": dict(wanted)},
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod: Json = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": k8s.run_as_non_root,
            "seccompProfile": {"type": "RuntimeDefault"},
            **({"runAsUser": k8s.run_as_user} if k8s.run_as_user else {}),
            **({"runAsGroup": k8s.run_as_group} if k8s.run_as_group else {}),
        },
        "containers": [container],
        "volumes": [
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{triton.shm_mb}Mi"}}
        ],
    }
    if triton.gpus:
        pod["tolerations"] = [
            {"key": k8s.gpu_resource, "operator": "Exists", "effect": "NoSchedule"}
        ]
    if k8s.pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in k8s.pull_secrets]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": names.triton_name(server_id),
            "namespace": k8s.namespace,
            "labels": labels,
            "annotations": {SERVER_ID_ANNOTATION: server_id},
        },
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def triton_service(k8s: KubernetesSettings, server_id: str) -> Json:
    """The ClusterIP Service in front of server `server_id`."""
    labels = server_labels(k8s, server_id)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.triton_name(server_id),
            "namespace": k8s.namespace,
            "labels": labels,
            "annotations": {SERVER_ID_ANNOTATION: server_id},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": labels,
            "ports": [
                {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
                for name, port in (
                    ("http", HTTP_PORT),
                    ("grpc", GRPC_PORT),
                    ("metrics", METRICS_PORT),
                )
            ],
        },
    }


def _credentials(k8s: KubernetesSettings) -> list[Json]:
    if not k8s.blob_secret:
        return []
    return [
        {
            "name": variable,
            "valueFrom": {"secretKeyRef": {"name": k8s.blob_secret, "key": key}},
        }
        for variable, key in (
            ("AWS_ACCESS_KEY_ID", "AORTA_S3_ACCESS_KEY"),
            ("AWS_SECRET_ACCESS_KEY", "AORTA_S3_SECRET_KEY"),
        )
    ]


def _probe(path: str, *, period: int, failures: int) -> Json:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 3,
    }
