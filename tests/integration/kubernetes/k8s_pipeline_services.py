"""Pipeline-service Deployments on the stand-in cluster, played: `test_services` checks the
Kubernetes service runner against `ServiceNode`, and the scheduler's services run on it in
`test_pipeline_services_on_kubernetes`."""

from __future__ import annotations

import asyncio

from aorta.executors.kubernetes.service_objects import SERVICE_ID_ANNOTATION
from aorta.kubernetes.api import POD, KubeApi
from aorta.testing.kube_api import KubeApiServer
from tests.integration.kubernetes.k8s_cluster import NAMESPACE
from tests.integration.kubernetes.k8s_triton import template_pod

CRASH_LOG = "loading models\nerror: no model repository\n"


class ServiceNode:
    """The Deployment controller and kubelet of the stand-in for service Deployments: each one
    created gets a pod from its template; the pod runs and the Deployment reports a ready
    replica, unless its service id is in `crashing` (then its container exits 3 at once,
    with `CRASH_LOG` as its log). A deleted Deployment's pod goes. Triton's Deployments are
    `k8s_triton.Node`'s."""

    def __init__(self, server: KubeApiServer, api: KubeApi) -> None:
        self.server = server
        self._api = api
        self.crashing: set[str] = set()
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        running: set[str] = set()
        while True:
            deployments = {
                name
                for name in self.server.names("deployments", NAMESPACE)
                if SERVICE_ID_ANNOTATION in self._annotations(name)
            }
            for name in sorted(deployments - running):
                running.add(name)
                await self._start(name)
            for name in running - deployments:
                running.discard(name)
                if self.server.get("pods", NAMESPACE, name):
                    await self._api.delete(POD, NAMESPACE, name, grace=0)
            await self.server.next_change()

    def _annotations(self, name: str) -> dict[str, str]:
        deployment = self.server.get("deployments", NAMESPACE, name) or {}
        return dict(deployment.get("metadata", {}).get("annotations") or {})

    async def _start(self, name: str) -> None:
        deployment = self.server.get("deployments", NAMESPACE, name)
        assert deployment is not None
        service_id = deployment["metadata"]["annotations"][SERVICE_ID_ANNOTATION]
        template = deployment["spec"]["template"]
        await self._api.create(POD, NAMESPACE, template_pod(deployment, name))
        container = template["spec"]["containers"][0]
        crash = service_id in self.crashing
        if crash:
            self.server.set_log(NAMESPACE, name, container["name"], CRASH_LOG)
        started = "2026-01-01T00:00:00Z"
        state = (
            {"terminated": {"exitCode": 3, "reason": "Error", "startedAt": started}}
            if crash
            else {"running": {"startedAt": started}}
        )
        self.server.set_status(
            "pods",
            NAMESPACE,
            name,
            {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "imageID": "stand-in",
                        "ready": not crash,
                        "restartCount": 0,
                        "state": state,
                    }
                ],
            },
        )
        if not crash:
            self.server.set_status(
                "deployments", NAMESPACE, name, {"replicas": 1, "readyReplicas": 1}
            )
