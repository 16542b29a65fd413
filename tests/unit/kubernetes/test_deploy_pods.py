"""The Pods the container deployment test plays are `deploy/`'s workloads: same arguments,
security context and settings, with only the host's wiring changed (tests/e2e/deploy_pods.py)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.deploy_pods import DEV_OVERLAY, HostWiring, generate
from tests.unit.kubernetes.k8s_kustomize import render

REPLICAS = {"nats": 1, "aorta-gateway": 2, "aorta-payloads": 2, "aorta-scheduler": 2}
WIRED = {
    "AORTA_NATS_URL",
    "AORTA_S3_ENDPOINT",
    "AORTA_STATE_STORE",
    "AORTA_HEALTH_HOST",
    "AORTA_HEALTH_PORT",
    "AORTA_GRPC_ADDRESS",
}
SCHEDULER_WIRED = {
    "AORTA_EXECUTOR",
    "AORTA_CONTAINER_HOST",
    "AORTA_CONTAINER_PULL_POLICY",
    "AORTA_SCHEDULER_WORK_DIR",
    "AORTA_SCHEDULER_GPUS",
    "AORTA_SCHEDULER_CPUS",
    "AORTA_SCHEDULER_MEMORY_MB",
}


def wiring(tmp_path: Path) -> HostWiring:
    return HostWiring(
        tmp_path,
        "127.0.0.1:9000",
        "mongodb://127.0.0.1:27017/?directConnection=true",
        tmp_path / "podman.sock",
        "localhost/aorta:0.1.0",
    )


def test_each_workload_becomes_its_replicas_with_the_manifest_s_arguments(tmp_path: Path) -> None:
    pods = generate(wiring(tmp_path), REPLICAS)
    workloads = {
        obj["metadata"]["name"]: obj
        for obj in render(DEV_OVERLAY)
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    }
    names = [pod["metadata"]["name"] for pod in pods.pods]
    assert names == [
        "nats-0",
        "aorta-gateway-0",
        "aorta-gateway-1",
        "aorta-payloads-0",
        "aorta-payloads-1",
        "aorta-scheduler-0",
        "aorta-scheduler-1",
    ]
    for pod in pods.pods:
        workload = workloads[pod["metadata"]["name"].rsplit("-", 1)[0]]
        template = workload["spec"]["template"]["spec"]
        assert pod["spec"]["hostNetwork"] is True
        for container, declared in zip(
            pod["spec"]["containers"], template["containers"], strict=True
        ):
            assert declared["image"] == "aorta:0.1.0"
            assert container["image"] == "localhost/aorta:0.1.0"
            assert container.get("command") == declared.get("command")
            assert container["securityContext"] == declared["securityContext"]
            if workload["metadata"]["name"] != "nats":
                assert container["args"] == declared["args"]
    assert len(pods.gateway_ports) == 2
    assert {probe.pod for probe in pods.probes} == set(names)


def test_only_the_host_s_wiring_changes_the_settings(tmp_path: Path) -> None:
    pods = generate(wiring(tmp_path), REPLICAS)
    objects = render(DEV_OVERLAY)
    settings = next(o for o in objects if o["metadata"]["name"] == "aorta-settings")["data"]
    for pod in pods.pods:
        name = pod["metadata"]["name"]
        if name.startswith("nats"):
            continue
        env = {item["name"]: item["value"] for item in pod["spec"]["containers"][0]["env"]}
        changed = {key for key, value in settings.items() if env.get(key) != str(value)}
        allowed = WIRED | (SCHEDULER_WIRED if name.startswith("aorta-scheduler") else set())
        assert changed <= allowed, name
        assert env["AORTA_STATE_STORE"].startswith("mongodb://")
        assert env["AORTA_BLOB_STORE"] == "s3://aorta"
        assert env["AORTA_HEALTH_HOST"] == "127.0.0.1"
    scheduler = next(p for p in pods.pods if p["metadata"]["name"] == "aorta-scheduler-0")
    mounts = {m["mountPath"] for m in scheduler["spec"]["containers"][0]["volumeMounts"]}
    assert str(tmp_path / "podman.sock") in mounts
    assert str(tmp_path / "runs") in mounts
