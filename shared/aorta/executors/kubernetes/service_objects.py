"""The objects of one pipeline service on Kubernetes: pure manifests, no client, no I/O.

A service is a Deployment (one replica, `Recreate`), a ClusterIP Service in front of its
`connections.http` ports (none without ports) and a PersistentVolumeClaim holding its data
folder, all in the jobs namespace and named after the service id (`service_name`), so a
restarted scheduler asks for the very same names and adopts what exists.

- The container runs the service's image unmodified, its `command` as `args` (Clara's rule, as
  for operators) with `$(NVIDIA_CLARA_SERVICE_DATA_PATH)` replaced by `DATA_PATH`; where it
  listens and its variables (`aorta.executors.service_ports`: an http entry without a port
  gets one from 8000 up), `NVIDIA_VISIBLE_DEVICES=void` without GPUs; requests equal limits,
  GPUs as the extended resource; the platform's pod security context, no capabilities, no token.
- Each http port is a `containerPort`, the first with a TCP readiness probe, so the Deployment
  counts a replica ready once the service accepts connections; operators reach the port through the
  Service's DNS name (`<name>.<namespace>.svc:<port>`).
- The claim (`AORTA_K8S_SERVICE_*` settings) is mounted at `DATA_PATH` and at each declared
  volume path apart from it; deleting the Deployment leaves it, so the data outlives the
  service's restarts. Operator pods that declare a volume connection mount the same claim,
  read-only (`aorta.executors.kubernetes.pods`).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from aorta.errors import Invalid
from aorta.executors.kubernetes.pods import (
    container_security,
    image_reference,
    pod_security,
)
from aorta.executors.service_ports import http_ports, own_environment
from aorta.executors.services import SERVICE_DATA_MACRO, ServiceLaunch
from aorta.kubernetes import names
from aorta.kubernetes.settings import KubernetesSettings

Json = dict[str, Any]

SERVICE_COMPONENT = "service"
SERVICE_LABEL = "aorta/service"
SERVICE_ID_ANNOTATION = "aorta/service-id"
SERVICE_NAME_ANNOTATION = "aorta/service-name"
LOG_KEY_ANNOTATION = "aorta/log-key"
CONTAINER = "service"
DATA_PATH = "/clara/common"
"""Where a service sees its data folder (Clara's common path), and what the macro becomes."""
DATA_VOLUME = "service-data"
VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"


def service_name(service_id: str) -> str:
    """The name of the Deployment and the Service: `aorta-<service id>`."""
    return names.dns_name(names.PLATFORM, service_id)


def claim_name(service_id: str) -> str:
    """The name of the claim holding the service's data folder."""
    return names.dns_name(names.PLATFORM, service_id, "data")


def service_host(settings: KubernetesSettings, service_id: str) -> str:
    """The DNS name operators reach the service by."""
    return f"{service_name(service_id)}.{settings.namespace}.svc"


def instance_labels(settings: KubernetesSettings) -> dict[str, str]:
    """The labels every service object of the platform instance carries."""
    return names.base_labels(settings.instance, SERVICE_COMPONENT)


def service_labels(settings: KubernetesSettings, service_id: str) -> dict[str, str]:
    """The labels of one service's objects; its pods are selected by these."""
    return {**instance_labels(settings), SERVICE_LABEL: names.label_value(service_id)}


def _metadata(settings: KubernetesSettings, launch: ServiceLaunch, name: str) -> Json:
    return {
        "name": name,
        "namespace": settings.namespace,
        "labels": service_labels(settings, launch.service_id),
        "annotations": {
            SERVICE_ID_ANNOTATION: launch.service_id,
            SERVICE_NAME_ANNOTATION: launch.name,
            LOG_KEY_ANNOTATION: launch.log_key,
        },
    }


def data_paths(launch: ServiceLaunch) -> list[str]:
    """Where the service's container mounts its claim: `DATA_PATH` and each declared volume
    path apart from it and the others. `Invalid` for a path that is not plain and absolute."""
    paths = [PurePosixPath(DATA_PATH)]
    for volume in launch.volumes:
        path = PurePosixPath(volume.path)
        if not path.is_absolute() or ".." in path.parts:
            raise Invalid(f"volume path {volume.path!r} must be absolute, without '..'")
        if not any(path.is_relative_to(p) or p.is_relative_to(path) for p in paths):
            paths.append(path)
    return [str(path) for path in paths]


def service_deployment(settings: KubernetesSettings, launch: ServiceLaunch) -> Json:
    """The Deployment of the service (see the module docstring)."""
    labels = service_labels(settings, launch.service_id)
    wanted: dict[str, str] = {}
    if launch.resources.cpu:
        wanted["cpu"] = f"{launch.resources.cpu * 1000}m"
    if launch.resources.memory_mb:
        wanted["memory"] = f"{launch.resources.memory_mb}Mi"
    if launch.resources.gpu:
        wanted[settings.gpu_resource] = str(launch.resources.gpu)
    by_name = http_ports(launch)
    variables = own_environment(launch, by_name)
    if launch.resources.gpu == 0:
        variables.setdefault(VISIBLE_DEVICES, "void")
    ports = sorted(set(by_name.values()))
    container: Json = {
        "name": CONTAINER,
        "image": image_reference(settings, launch.image, launch.tag),
        "env": [{"name": k, "value": v} for k, v in sorted(variables.items())],
        "ports": [{"name": f"http-{port}", "containerPort": port} for port in ports],
        "resources": {"requests": dict(wanted), "limits": dict(wanted)},
        "volumeMounts": [{"name": DATA_VOLUME, "mountPath": path} for path in data_paths(launch)],
        "securityContext": container_security(read_only_root=False),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if launch.command:
        container["args"] = [part.replace(SERVICE_DATA_MACRO, DATA_PATH) for part in launch.command]
    if ports:
        # A container has one readiness probe: the first port gates it (services with several
        # ports open them together in practice, as Triton does).
        container["readinessProbe"] = {
            "tcpSocket": {"port": ports[0]},
            "periodSeconds": 2,
            "failureThreshold": 3,
        }
    pod: Json = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security(settings),
        "containers": [container],
        "volumes": [
            {
                "name": DATA_VOLUME,
                "persistentVolumeClaim": {"claimName": claim_name(launch.service_id)},
            }
        ],
    }
    if launch.resources.gpu:
        pod["tolerations"] = [
            {"key": settings.gpu_resource, "operator": "Exists", "effect": "NoSchedule"}
        ]
    if settings.pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in settings.pull_secrets]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(settings, launch, service_name(launch.service_id)),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def service_service(settings: KubernetesSettings, launch: ServiceLaunch) -> Json | None:
    """The ClusterIP Service in front of the service's http ports; None without ports."""
    ports = sorted(set(http_ports(launch).values()))
    if not ports:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(settings, launch, service_name(launch.service_id)),
        "spec": {
            "type": "ClusterIP",
            "selector": service_labels(settings, launch.service_id),
            "ports": [
                {"name": f"http-{port}", "port": port, "targetPort": port, "protocol": "TCP"}
                for port in ports
            ],
        },
    }


def data_claim(settings: KubernetesSettings, launch: ServiceLaunch) -> Json:
    """The PersistentVolumeClaim of the service's data folder."""
    spec: Json = {
        "accessModes": [settings.service_data_access],
        "resources": {"requests": {"storage": settings.service_data_size}},
    }
    if settings.service_storage_class:
        spec["storageClassName"] = settings.service_storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(settings, launch, claim_name(launch.service_id)),
        "spec": spec,
    }


def endpoint_environment(settings: KubernetesSettings, launch: ServiceLaunch) -> dict[str, str]:
    """The operators' connection variables: each http entry's `host:port` (the Service's DNS
    name) and each volume entry's path."""
    host = service_host(settings, launch.service_id)
    addresses = {name: f"{host}:{port}" for name, port in http_ports(launch).items()}
    return {**addresses, **{volume.name: volume.path for volume in launch.volumes}}
