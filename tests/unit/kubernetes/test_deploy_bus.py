"""deploy/ closes the bus as `aorta up` does: nats-server admits only the platform's users, with
the permissions of `aorta.bus_permissions`, and each workload logs in as its own user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aorta.bus_permissions import (
    SERVICE_ACCESS,
    bus_users,
    deploy_authorization_config,
    password_variable,
)
from tests.unit.kubernetes.k8s_kustomize import render

Json = dict[str, Any]
DEPLOY = Path(__file__).parents[3] / "deploy"
TARGETS = ["base", "overlays/dev", "overlays/production"]
WORKLOADS = {"monitor": "DaemonSet"}
"""The kind of each service's workload other than a Deployment."""


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Json]]:
    return {target: render(DEPLOY / target) for target in TARGETS}


def find(objects: list[Json], kind: str, name: str) -> Json:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def container(workload: Json) -> Json:
    first: Json = workload["spec"]["template"]["spec"]["containers"][0]
    return first


def secret_key(variable: Json) -> tuple[str, str]:
    ref = variable["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


@pytest.mark.parametrize("target", TARGETS)
def test_nats_admits_the_platforms_users_with_their_permissions(
    rendered: dict[str, list[Json]], target: str
) -> None:
    objects = rendered[target]
    config = find(objects, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert config == "max_payload: 8MB\n" + deploy_authorization_config(), (
        "deploy/base/nats.yaml's nats.conf must be `max_payload: 8MB` followed by "
        "aorta.bus_permissions.deploy_authorization_config(), verbatim"
    )
    env = {e["name"]: e for e in container(find(objects, "StatefulSet", "nats"))["env"]}
    for user in bus_users():
        variable = password_variable(user)
        assert secret_key(env[variable]) == ("aorta-secrets", variable)


@pytest.mark.parametrize("target", TARGETS)
def test_every_service_logs_in_as_itself_and_is_probed_on_its_pod_address(
    rendered: dict[str, list[Json]], target: str
) -> None:
    for service in SERVICE_ACCESS:
        workload = find(rendered[target], WORKLOADS.get(service, "Deployment"), f"aorta-{service}")
        env = {e["name"]: e for e in container(workload)["env"]}
        assert env["AORTA_NATS_USER"]["value"] == service
        assert secret_key(env["AORTA_NATS_PASSWORD"]) == (
            "aorta-secrets",
            password_variable(service),
        )
        assert env["AORTA_HEALTH_HOST"]["value"] == "0.0.0.0"


def test_the_dev_secret_holds_a_password_for_every_user(
    rendered: dict[str, list[Json]],
) -> None:
    secret = find(rendered["overlays/dev"], "Secret", "aorta-secrets")["stringData"]
    passwords = [secret[password_variable(user)] for user in bus_users()]
    assert len(set(passwords)) == len(passwords)


def test_production_nats_servers_route_to_each_other_only_with_the_route_password(
    rendered: dict[str, list[Json]],
) -> None:
    nats = container(find(rendered["overlays/production"], "StatefulSet", "nats"))
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in nats["args"] if "=" in a}
    login = "nats://route:$(AORTA_NATS_ROUTE_PASSWORD)@"
    assert args["--cluster"].startswith(login)
    routes = args["--routes"].split(",")
    assert len(routes) == 3 and all(route.startswith(login) for route in routes)
    env = {e["name"]: e for e in nats["env"]}
    assert secret_key(env["AORTA_NATS_ROUTE_PASSWORD"]) == (
        "aorta-secrets",
        "AORTA_NATS_ROUTE_PASSWORD",
    )
    assert "AORTA_NATS_PASSWORD_GATEWAY" in env  # the patch merged into the base's env
