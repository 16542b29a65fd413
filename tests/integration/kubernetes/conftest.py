"""A cluster for the Kubernetes tests: the stand-in API server with a simulated kubelet, and a
real cluster too when `AORTA_TEST_KUBECONFIG` is set (see README.md in this folder).

`cluster` is parametrized over both; `stand_in` is the stand-in alone, for the tests that must
control the server (watch expiry, conflicts on demand). `platform` is the whole job path of
the platform in this process on the stand-in (`k8s_jobs_platform`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from aorta.blobs import open_blob_store
from aorta.bus.nats_server import NatsServerProcess
from aorta.kubernetes.api import KubeApi
from aorta.kubernetes.settings import KubernetesSettings
from aorta.settings import Settings
from aorta.testing.kube_api import KubeApiServer
from tests.integration.kubernetes.k8s_cluster import NAMESPACE, REAL_KUBECONFIG, Cluster
from tests.integration.kubernetes.k8s_jobs_platform import KubernetesPlatform, open_platform
from tests.integration.kubernetes.k8s_kubelet import SimulatedKubelet
from tests.integration.kubernetes.k8s_services import ServiceNetwork

CLUSTERS = ["stand-in", *(["real"] if REAL_KUBECONFIG else [])]


@pytest.fixture
async def stand_in(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with KubeApiServer() as server:
        api = await KubeApi.connect(str(server.kubeconfig(tmp_path / "kubeconfig")))
        core = Settings.from_env({"AORTA_BLOB_STORE": f"file:///{tmp_path / 'blobs'}"})
        blobs = await open_blob_store(core)
        kubelet = SimulatedKubelet(server, api, tmp_path / "node")
        settings = KubernetesSettings(namespace=NAMESPACE, agent_image="aorta:test")
        cluster = Cluster("stand-in", api, settings, core, blobs, server, kubelet)
        try:
            yield cluster
        finally:
            for executor in cluster.executors:
                await executor.close()
            await kubelet.close()
            await api.close()
            await blobs.close()
        assert not kubelet.failures, kubelet.failures


@pytest.fixture
async def real_cluster() -> AsyncIterator[Cluster]:
    environ = os.environ
    core = Settings.from_env(
        {
            "AORTA_BLOB_STORE": environ["AORTA_TEST_K8S_BLOB_STORE"],
            "AORTA_S3_ENDPOINT": environ.get("AORTA_TEST_S3_ENDPOINT", ""),
            "AORTA_S3_ACCESS_KEY": environ.get("AORTA_TEST_S3_ACCESS_KEY", ""),
            "AORTA_S3_SECRET_KEY": environ.get("AORTA_TEST_S3_SECRET_KEY", ""),
            "AORTA_S3_SECURE": environ.get("AORTA_TEST_S3_SECURE", "false"),
        }
    )
    settings = KubernetesSettings.from_env(
        {
            "AORTA_K8S_NAMESPACE": environ.get("AORTA_TEST_K8S_NAMESPACE", NAMESPACE),
            "AORTA_K8S_AGENT_IMAGE": environ["AORTA_TEST_K8S_AGENT_IMAGE"],
            "AORTA_K8S_INSTANCE": f"test-{uuid.uuid4().hex[:8]}",
        }
    )
    api = await KubeApi.connect(REAL_KUBECONFIG)
    blobs = await open_blob_store(core)
    image, _, tag = environ.get("AORTA_TEST_OPERATOR_IMAGE", "busybox:1.36").partition(":")
    cluster = Cluster("real", api, settings, core, blobs, operator_image=(image, tag or "latest"))
    try:
        yield cluster
    finally:
        for executor in cluster.executors:
            await executor.close()
        await api.close()
        await blobs.close()


@pytest.fixture(params=CLUSTERS)
def cluster(request: pytest.FixtureRequest) -> Cluster:
    fixture = "stand_in" if request.param == "stand-in" else "real_cluster"
    chosen: Cluster = request.getfixturevalue(fixture)
    return chosen


@pytest.fixture
async def platform(
    nats_server: NatsServerProcess,
    stand_in: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[KubernetesPlatform]:
    async with ServiceNetwork() as network, AsyncExitStack() as stack:
        # gRPC reads these when a channel is made: Service addresses go through the network,
        # the gateway's own address does not.
        monkeypatch.setenv("grpc_proxy", network.proxy)
        monkeypatch.setenv("no_grpc_proxy", "127.0.0.1,localhost")
        yield await open_platform(stack, nats_server.url, stand_in, network, tmp_path)
