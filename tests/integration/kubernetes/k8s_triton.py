"""Triton Deployments on the stand-in cluster, played: `test_triton` checks the Kubernetes Triton
backend against `Node`, and `k8s_jobs_platform` serves the models service's servers with it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aorta.kubernetes import names
from aorta.kubernetes.api import POD, Json
from aorta.testing.kube_api import KubeApiServer
from tests.integration.kubernetes.k8s_cluster import NAMESPACE, Cluster

Started = Callable[[str], Awaitable[None]]
"""Called with a Deployment's server id before its pod is created."""


def template_pod(deployment: Json, name: str) -> Json:
    """The pod named `name` that the Deployment controller makes from `deployment`'s template."""
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }


class Node:
    """The Deployment controller and kubelet of the stand-in: for every Triton Deployment created,
    runs `on_start(server id)`, then creates its pod, Ready; deletes the pod once the
    Deployment is gone."""

    def __init__(self, cluster: Cluster, on_start: Started | None = None) -> None:
        assert cluster.server is not None
        self.server: KubeApiServer = cluster.server
        self._api = cluster.api
        self._on_start = on_start
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def restart(self, server_id: str) -> None:
        pod = self.server.get("pods", NAMESPACE, names.triton_name(server_id))
        assert pod is not None
        status = pod["status"]
        status["containerStatuses"][0]["restartCount"] = 1
        self.server.set_status("pods", NAMESPACE, pod["metadata"]["name"], status)

    async def _run(self) -> None:
        running: set[str] = set()
        while True:
            # Pipeline services' Deployments are `k8s_pipeline_services.ServiceNode`'s.
            deployments = set(self.server.names("deployments", NAMESPACE)) - self._services()
            for name in deployments - running:
                running.add(name)
                await self._start(name)
            for name in running - deployments:
                running.discard(name)
                if self.server.get("pods", NAMESPACE, name):
                    await self._api.delete(POD, NAMESPACE, name, grace=0)
            await self.server.next_change()

    def _services(self) -> set[str]:
        return {
            name
            for name in self.server.names("deployments", NAMESPACE)
            if name.startswith(f"{names.PLATFORM}-svc-")
        }

    async def _start(self, name: str) -> None:
        deployment = self.server.get("deployments", NAMESPACE, name)
        assert deployment is not None
        server_id = deployment["metadata"]["annotations"]["aorta/triton-server-id"]
        if self._on_start is not None:
            await self._on_start(server_id)
        template = deployment["spec"]["template"]
        await self._api.create(POD, NAMESPACE, template_pod(deployment, name))
        container = template["spec"]["containers"][0]
        self.server.set_status(
            "pods",
            NAMESPACE,
            name,
            {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "imageID": "stand-in",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                    }
                ],
            },
        )
