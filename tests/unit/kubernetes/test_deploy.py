"""deploy/: the base and both overlays render, every object validates against the Kubernetes
schemas, and the properties the platform relies on hold (probes, RBAC, ports, replicas)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from aorta.testing.kube_schema import check_schema
from tests.unit.kubernetes.k8s_kustomize import render

Json = dict[str, Any]
DEPLOY = Path(__file__).parents[3] / "deploy"
TARGETS = ["base", "overlays/dev", "overlays/production"]
SERVICES = ["gateway", "pipelines", "payloads", "scheduler", "models"]


def kubectl_render(folder: Path) -> list[Json]:
    output = subprocess.run(
        ["kubectl", "kustomize", str(folder)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


# kubectl, where installed, renders too: our renderer must agree with it on every target.
RENDERERS: dict[str, Callable[[Path], list[Json]]] = {
    "subset-renderer": render,
    **({"kubectl": kubectl_render} if shutil.which("kubectl") else {}),
}


@pytest.fixture(scope="module", params=list(RENDERERS))
def rendered(request: pytest.FixtureRequest) -> dict[str, list[Json]]:
    """Every target rendered; kubectl's renderings must equal the subset renderer's."""
    renderer = RENDERERS[request.param]
    renderings = {target: renderer(DEPLOY / target) for target in TARGETS}
    for target, objects in renderings.items():
        assert sorted(objects, key=_key) == sorted(render(DEPLOY / target), key=_key), target
    return renderings


def find(objects: list[Json], kind: str, name: str) -> Json:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_spec(workload: Json) -> Json:
    spec: Json = workload["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_object_validates_against_the_schemas(
    rendered: dict[str, list[Json]], target: str
) -> None:
    objects = rendered[target]
    assert len(objects) > 30
    for obj in objects:
        check_schema(obj)


def _key(obj: Json) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def test_every_service_runs_the_aorta_image_with_probes_resources_and_no_privilege(
    rendered: dict[str, list[Json]],
) -> None:
    objects = rendered["base"]
    for name in SERVICES:
        deployment = find(objects, "Deployment", f"aorta-{name}")
        container = pod_spec(deployment)["containers"][0]
        assert container["args"] == ["serve", name]
        assert container["readinessProbe"] and container["livenessProbe"]
        assert container["resources"]["requests"]["cpu"]
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod_spec(deployment)["securityContext"]["runAsNonRoot"] is True
        find(objects, "PodDisruptionBudget", f"aorta-{name}")
    gateway = pod_spec(find(objects, "Deployment", "aorta-gateway"))["containers"][0]
    assert gateway["readinessProbe"]["grpc"]["port"] == 50051
    service = find(objects, "Service", "aorta-gateway")
    assert service["spec"]["ports"][0]["port"] == 50051


def test_only_the_scheduler_and_models_get_api_tokens_with_rights_in_the_jobs_namespace(
    rendered: dict[str, list[Json]],
) -> None:
    objects = rendered["base"]
    tokens = {
        o["metadata"]["name"]: pod_spec(o).get("automountServiceAccountToken")
        for o in objects
        if o["kind"] in ("Deployment", "DaemonSet", "StatefulSet")
    }
    assert {name for name, mounted in tokens.items() if mounted is not False} == {
        "aorta-scheduler",
        "aorta-models",
    }
    roles = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Role"}
    assert {r["metadata"]["namespace"] for r in roles.values()} == {"aorta-jobs"}
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    scheduler = {kind for rule in roles["aorta-scheduler"]["rules"] for kind in rule["resources"]}
    models = {kind for rule in roles["aorta-models"]["rules"] for kind in rule["resources"]}
    # The scheduler's pipeline services are Deployments with a Service and a data claim.
    service_kinds = {"deployments", "services", "persistentvolumeclaims"}
    assert scheduler == {"pods", "pods/log", *service_kinds}
    assert models == {"deployments", "services", "pods"}
    models_pods = [r for r in roles["aorta-models"]["rules"] if r["resources"] == ["pods"]]
    assert models_pods[0]["verbs"] == ["get", "list", "watch"]
    agent = roles["aorta-agent"]["rules"]
    assert all("create" not in rule["verbs"] and "delete" not in rule["verbs"] for rule in agent)


def test_the_node_monitor_runs_on_gpu_nodes_named_after_the_node(
    rendered: dict[str, list[Json]],
) -> None:
    monitor = find(rendered["base"], "DaemonSet", "aorta-monitor")
    spec = pod_spec(monitor)
    assert spec["hostPID"] is True
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["AORTA_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert "nvidia.com/gpu" not in spec["containers"][0]["resources"].get("limits", {})


def test_the_base_needs_secrets_only_the_dev_overlay_provides(
    rendered: dict[str, list[Json]],
) -> None:
    def secrets(target: str) -> set[str]:
        return {o["metadata"]["name"] for o in rendered[target] if o["kind"] == "Secret"}

    assert secrets("base") == secrets("overlays/production") == set()
    assert secrets("overlays/dev") == {
        "aorta-secrets",
        "aorta-blob-credentials",
        "aorta-gateway-tokens",
    }
    settings = find(rendered["base"], "ConfigMap", "aorta-settings")["data"]
    assert settings["AORTA_K8S_NAMESPACE"] == "aorta-jobs"
    assert settings["AORTA_SCHEDULER_EXECUTOR"] == settings["AORTA_TRITON_BACKEND"] == "kubernetes"


def test_dev_is_one_replica_each_behind_node_port_30031(
    rendered: dict[str, list[Json]],
) -> None:
    objects = rendered["overlays/dev"]
    for name in SERVICES:
        assert find(objects, "Deployment", f"aorta-{name}")["spec"]["replicas"] == 1
    port = find(objects, "Service", "aorta-gateway-nodeport")["spec"]["ports"][0]
    assert (port["nodePort"], port["targetPort"]) == (30031, "grpc")


def test_production_scales_out_and_autoscales_the_gateway(
    rendered: dict[str, list[Json]],
) -> None:
    objects = rendered["overlays/production"]
    for name in SERVICES:
        replicas = find(objects, "Deployment", f"aorta-{name}")["spec"]["replicas"]
        assert replicas >= 2, name
    models = find(objects, "Deployment", "aorta-models")
    # Models replicas share the Triton pool through the store, so they roll one at a time.
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert models["spec"]["strategy"] == rolling
    hpa = find(objects, "HorizontalPodAutoscaler", "aorta-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "aorta-gateway"
    assert find(objects, "Service", "aorta-gateway-public")["spec"]["type"] == "LoadBalancer"
    nats = find(objects, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    assert any(a.startswith("--routes=") for a in pod_spec(nats)["containers"][0]["args"])
    # The patch merged into the base's container rather than replacing it.
    assert pod_spec(nats)["containers"][0]["readinessProbe"]


@pytest.mark.parametrize("target", TARGETS)
def test_nats_carries_messages_of_8_mib(rendered: dict[str, list[Json]], target: str) -> None:
    objects = rendered[target]
    config = find(objects, "ConfigMap", "nats-config")
    assert "max_payload: 8MB" in config["data"]["nats.conf"].splitlines()
    spec = pod_spec(find(objects, "StatefulSet", "nats"))
    [container] = spec["containers"]
    assert "--config=/etc/nats-config/nats.conf" in container["args"]
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/nats-config"]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "nats-config"


def _gateway(rendered: dict[str, list[Json]], target: str) -> tuple[Json, Json]:
    spec = pod_spec(find(rendered[target], "Deployment", "aorta-gateway"))
    return spec, spec["containers"][0]


def test_the_gateway_listens_on_the_pod_address_only_with_authentication(
    rendered: dict[str, list[Json]],
) -> None:
    settings = find(rendered["base"], "ConfigMap", "aorta-settings")["data"]
    assert settings["AORTA_GRPC_ADDRESS"].startswith("0.0.0.0:")
    assert settings["AORTA_HEALTH_HOST"] == "0.0.0.0"
    spec, gateway = _gateway(rendered, "base")
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    mounts = {m["name"]: m for m in gateway["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert env["AORTA_AUTH_TOKENS_FILE"] == "/etc/aorta/auth/tokens.yaml"
    assert mounts["auth-tokens"]["mountPath"] == "/etc/aorta/auth"
    assert mounts["auth-tokens"]["readOnly"] is True
    assert volumes["auth-tokens"]["secret"]["secretName"] == "aorta-gateway-tokens"


def test_production_serves_tls_and_oidc_and_probes_over_http(
    rendered: dict[str, list[Json]],
) -> None:
    spec, gateway = _gateway(rendered, "overlays/production")
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert env["AORTA_GATEWAY_TLS_CERT"] == "/etc/aorta/tls/tls.crt"
    assert env["AORTA_GATEWAY_TLS_KEY"] == "/etc/aorta/tls/tls.key"
    assert env["AORTA_OIDC_ISSUER"] and env["AORTA_OIDC_AUDIENCE"] and env["AORTA_OIDC_JWKS"]
    assert env["AORTA_AUTH_TOKENS_FILE"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "aorta-gateway-tls"
    # The kubelet's gRPC probe speaks no TLS: the HTTP health port answers instead.
    for probe in ("readinessProbe", "livenessProbe"):
        assert "grpc" not in gateway[probe]
        assert gateway[probe]["httpGet"]["port"] == "health"
