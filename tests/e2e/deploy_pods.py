"""Pods for `podman kube play`, generated from `deploy/` (the dev overlay, rendered by the
kustomize renderer the manifest tests use), for the container deployment test.

Each workload of the platform (NATS and every service) becomes as many Pods as the test asks
for, each keeping its workload's image (the Aorta image, NATS included), command, arguments,
security context, volumes and settings: the ConfigMap and Secret values its containers read
(`envFrom`, `secretKeyRef`, `configMapKeyRef`, `fieldRef: metadata.name`) are written into the
Pod, since podman reads neither from a cluster. What a single host changes is explicit, in
`HostWiring`: every Pod shares the host's network (there is no cluster DNS), so the addresses
of NATS, the S3 endpoint and MongoDB, and each Pod's own ports, are the host's loopback ports;
volume claims become empty folders and ConfigMap volumes files on the host. The readiness
probes are taken out of the Pods and handed back: podman runs probes as systemd timers with
`curl` inside the container, neither of which exists here, so the test runs the very same
probes itself, from the host, against each Pod's ports.
"""

from __future__ import annotations

import copy
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aorta.testing.ports import PortPool, free_port
from tests.unit.kubernetes.k8s_kustomize import render

Json = dict[str, Any]
REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_OVERLAY = REPO_ROOT / "deploy" / "overlays" / "dev"
HEALTH_PORT = 8080
GRPC_PORT = 50051
NATS_CLIENT_PORT = 4222
NATS_MONITOR_PORT = 8222
_WORKLOADS = ("StatefulSet", "Deployment", "DaemonSet")
_REFERENCE = re.compile(r"\$\((\w+)\)")


@dataclass(frozen=True)
class Probe:
    """A readiness probe of one Pod, on the host's port that stands for its container port."""

    pod: str
    kind: str  # "http" or "grpc"
    port: int
    path: str = ""


@dataclass
class HostWiring:
    """What one host changes in the manifests: the stand-ins' addresses, the engine the
    scheduler's container executor drives, and a folder for what volumes hold."""

    folder: Path
    s3_endpoint: str
    mongodb_url: str
    engine_socket: Path
    image: str
    nats_port: int = field(default_factory=free_port)

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def work_root(self) -> Path:
        """Where the scheduler keeps run folders: the same path in its Pod and on the host, since
        the engine bind-mounts them by their host path."""
        return self.folder / "runs"


@dataclass
class PodSet:
    """The generated Pods (one YAML file for `podman kube play`), their readiness probes, and
    the gateway replicas' gRPC ports on the host."""

    pods: list[Json]
    probes: list[Probe]
    gateway_ports: list[int]

    def write(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump_all(self.pods, sort_keys=False))
        return path


def generate(wiring: HostWiring, replicas: Mapping[str, int]) -> PodSet:
    """The Pods of the workloads named in `replicas` (`nats`, `aorta-gateway`, ...), that many
    of each, wired to this host."""
    objects = render(DEV_OVERLAY)
    values = _values(objects)
    pods: list[Json] = []
    probes: list[Probe] = []
    gateway_ports: list[int] = []
    pool = PortPool()  # the pods start at once: no two may be handed one port
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] not in _WORKLOADS or name not in replicas:
            continue
        for index in range(replicas[name]):
            pod_name = f"{name}-{index}"
            ports = {HEALTH_PORT: pool.take(), GRPC_PORT: pool.take()}
            if name == "nats":
                ports = {NATS_CLIENT_PORT: wiring.nats_port, NATS_MONITOR_PORT: pool.take()}
            elif name == "aorta-gateway":
                gateway_ports.append(ports[GRPC_PORT])
            pod = _pod(obj, pod_name, values, wiring, ports)
            probes += _take_probes(pod, pod_name, ports)
            pods.append(pod)
    return PodSet(pods, probes, gateway_ports)


def _values(objects: list[Json]) -> dict[tuple[str, str], dict[str, str]]:
    """Every ConfigMap's and Secret's data by (kind, name)."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for obj in objects:
        if obj["kind"] in ("ConfigMap", "Secret"):
            data = {**obj.get("data", {}), **obj.get("stringData", {})}
            found[(obj["kind"], obj["metadata"]["name"])] = {k: str(v) for k, v in data.items()}
    return found


def _pod(
    workload: Json,
    name: str,
    values: dict[tuple[str, str], dict[str, str]],
    wiring: HostWiring,
    ports: dict[int, int],
) -> Json:
    template = copy.deepcopy(workload["spec"]["template"])
    spec = template["spec"]
    for key in ("serviceAccountName", "automountServiceAccountToken", "runtimeClassName"):
        spec.pop(key, None)
    for key in ("nodeSelector", "tolerations", "hostPID"):
        spec.pop(key, None)
    spec["hostNetwork"] = True
    spec["volumes"] = _volumes(workload, spec.get("volumes", []), values, wiring, name)
    for container in spec["containers"]:
        env = _environment(container, values, name)
        env.update(_host_settings(workload["metadata"]["name"], wiring, ports))
        container["env"] = [{"name": key, "value": value} for key, value in env.items()]
        container.pop("envFrom", None)
        container["image"] = wiring.image
        container.pop("resources", None)
        if workload["metadata"]["name"] == "nats":
            container["args"] = _nats_args(container["args"], env, ports)
    if workload["metadata"]["name"] == "aorta-scheduler":
        _drive_engine(spec, wiring)
    if workload["metadata"]["name"] == "aorta-gateway":
        _without_token_file(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"].get("labels", {})},
        "spec": spec,
    }


def _environment(
    container: Json, values: dict[tuple[str, str], dict[str, str]], pod_name: str
) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(values[("ConfigMap", source["configMapRef"]["name"])])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        reference = item["valueFrom"]
        if "secretKeyRef" in reference:
            key = reference["secretKeyRef"]
            env[item["name"]] = values[("Secret", key["name"])][key["key"]]
        elif "configMapKeyRef" in reference:
            key = reference["configMapKeyRef"]
            env[item["name"]] = values[("ConfigMap", key["name"])][key["key"]]
        elif reference.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[item["name"]] = pod_name
        elif reference.get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
            env[item["name"]] = socket.gethostname()
        else:
            raise ValueError(f"{pod_name}: no host value for {item}")
    return env


def _host_settings(workload: str, wiring: HostWiring, ports: dict[int, int]) -> dict[str, str]:
    """The settings a single host changes: addresses of the bus, S3 and MongoDB, and the Pod's
    own ports, all on loopback (nothing listens beyond it without authentication)."""
    if workload == "nats":
        return {}
    settings = {
        "AORTA_NATS_URL": wiring.nats_url,
        "AORTA_S3_ENDPOINT": wiring.s3_endpoint,
        "AORTA_STATE_STORE": wiring.mongodb_url,
        "AORTA_HEALTH_HOST": "127.0.0.1",
        "AORTA_HEALTH_PORT": str(ports[HEALTH_PORT]),
        "AORTA_GRPC_ADDRESS": f"127.0.0.1:{ports[GRPC_PORT]}",
    }
    if workload == "aorta-scheduler":
        settings |= {
            "AORTA_EXECUTOR": "container",
            "AORTA_CONTAINER_HOST": f"unix://{wiring.engine_socket}",
            "AORTA_CONTAINER_PULL_POLICY": "Never",
            "AORTA_SCHEDULER_WORK_DIR": str(wiring.work_root),
            "AORTA_SCHEDULER_GPUS": "0",
            "AORTA_SCHEDULER_CPUS": "2",
            "AORTA_SCHEDULER_MEMORY_MB": "2048",
        }
    if workload == "aorta-models":
        # No cluster to start Triton Deployments in; no job of the test asks for Triton.
        settings["AORTA_TRITON_BACKEND"] = "local"
    return settings


def _nats_args(args: list[str], env: dict[str, str], ports: dict[int, int]) -> list[str]:
    """The StatefulSet's arguments with `$(VAR)` expanded as the kubelet does, and the ports
    moved to this Pod's host ports, on loopback."""
    expanded = [_REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), arg) for arg in args]
    moved = [
        f"--http_port={ports[NATS_MONITOR_PORT]}" if arg.startswith("--http_port=") else arg
        for arg in expanded
    ]
    # The monitoring port listens where the clients' does.
    return [*moved, "--addr=127.0.0.1", f"--port={ports[NATS_CLIENT_PORT]}"]


def _volumes(
    workload: Json,
    volumes: list[Json],
    values: dict[tuple[str, str], dict[str, str]],
    wiring: HostWiring,
    pod_name: str,
) -> list[Json]:
    made: list[Json] = []
    for volume in volumes:
        if "configMap" in volume:
            folder = wiring.folder / "volumes" / pod_name / volume["name"]
            folder.mkdir(parents=True, exist_ok=True)
            for key, text in values[("ConfigMap", volume["configMap"]["name"])].items():
                (folder / key).write_text(text)
            made.append({"name": volume["name"], "hostPath": {"path": str(folder)}})
        else:
            made.append(volume)
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        made.append({"name": claim["metadata"]["name"], "emptyDir": {}})
    return made


def _drive_engine(spec: Json, wiring: HostWiring) -> None:
    """The scheduler's container executor drives the host's engine: its API socket and the
    run folders (same path inside and out) are mounted in. Whoever reaches the socket is the
    engine's owner, root here, so the scheduler runs as root in this Pod only."""
    spec["securityContext"].update({"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0})
    wiring.work_root.mkdir(parents=True, exist_ok=True)
    spec["volumes"] += [
        {"name": "engine", "hostPath": {"path": str(wiring.engine_socket), "type": "Socket"}},
        {"name": "runs", "hostPath": {"path": str(wiring.work_root), "type": "Directory"}},
    ]
    for container in spec["containers"]:
        container["volumeMounts"] += [
            {"name": "engine", "mountPath": str(wiring.engine_socket)},
            {"name": "runs", "mountPath": str(wiring.work_root)},
        ]


def _without_token_file(spec: Json) -> None:
    """A gateway on loopback may run without authentication (`aorta.auth.exposure`), and
    NVIDIA's client sends no token: the tokens file is left out."""
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "auth-tokens"]
    for container in spec["containers"]:
        container["env"] = [e for e in container["env"] if e["name"] != "AORTA_AUTH_TOKENS_FILE"]
        container["volumeMounts"] = [
            m for m in container["volumeMounts"] if m["name"] != "auth-tokens"
        ]


def _take_probes(pod: Json, pod_name: str, ports: dict[int, int]) -> list[Probe]:
    taken: list[Probe] = []
    for container in pod["spec"]["containers"]:
        named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        readiness = container.pop("readinessProbe", None)
        container.pop("livenessProbe", None)
        container.pop("ports", None)
        if readiness is None:
            continue
        if "httpGet" in readiness:
            port = readiness["httpGet"]["port"]
            host_port = ports[named.get(port, port)]
            taken.append(Probe(pod_name, "http", host_port, readiness["httpGet"]["path"]))
        elif "grpc" in readiness:
            taken.append(Probe(pod_name, "grpc", ports[readiness["grpc"]["port"]]))
    return taken
