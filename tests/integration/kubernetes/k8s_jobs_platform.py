"""The whole job path of the platform in this process, running operators on the stand-in cluster.

Gateway, pipelines, payloads, models (`AORTA_TRITON_BACKEND=kubernetes`) and scheduler
(`AORTA_SCHEDULER_EXECUTOR=kubernetes`, one GPU) run on a real nats-server, with the SQLite
store and the stand-in cluster's local blob folder, so the simulated kubelet's agent code moves
the very bytes the platform reads. Each service is built from its settings, as `__main__` does:
the executor and the Triton backend connect through the kubeconfig the settings name.

The Triton Deployments the models service creates are played by `k8s_triton.Node`; the first
one starts a real tritonserver reading the blob folder's `triton-repository/`, and every
Service (`*.svc:8000`, `*.svc:8001`) leads to that one server through `ServiceNetwork`.

The RPC helpers (pipeline, job, upload, start, status, until, logs) are the scheduler tests'
`jobs_platform.Platform`'s.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from aorta.api import models_pb2, models_pb2_grpc, payloads_pb2, payloads_pb2_grpc
from aorta.bus.nats import NatsBus
from aorta.kubernetes.api import Json
from aorta.kubernetes.names import RUN_ID_ANNOTATION
from aorta.runtime.service import ServiceContext
from aorta.settings import Settings
from aorta.store.factory import open_state_store
from aorta.testing.kube_api import KubeApiServer
from aorta.triton.kubernetes.objects import GRPC_PORT, HTTP_PORT
from aorta.triton.local.backend import LocalTritonBackend
from aorta.triton.local.install import TritonInstall
from aorta.triton.local.process import TritonProcess
from aorta_services.gateway import app as gateway_app
from aorta_services.models import app as models_app
from aorta_services.payloads import app as payloads_app
from aorta_services.pipelines import app as pipelines_app
from aorta_services.scheduler import app as scheduler_app
from aorta_services.scheduler.app import RunningScheduler
from aorta_services.scheduler.lease import LEASE_ID, LEASES
from tests.integration.kubernetes.k8s_cluster import NAMESPACE, Cluster
from tests.integration.kubernetes.k8s_kubelet import SimulatedKubelet
from tests.integration.kubernetes.k8s_services import ServiceNetwork
from tests.integration.kubernetes.k8s_triton import Node
from tests.integration.scheduler.jobs_platform import RPC_TIMEOUT, STEADY_LEASE, Platform, ident

CHUNK = 64 * 1024


def kubernetes_env(kubeconfig: Path) -> dict[str, str]:
    """The `AORTA_K8S_*` settings both services read: the stand-in and its jobs namespace."""
    return {
        "AORTA_K8S_KUBECONFIG": str(kubeconfig),
        "AORTA_K8S_NAMESPACE": NAMESPACE,
        "AORTA_K8S_AGENT_IMAGE": "aorta:test",
        "AORTA_K8S_BLOB_SECRET": "",
    }


def scheduler_env(kubeconfig: Path) -> dict[str, str]:
    return {
        **kubernetes_env(kubeconfig),
        "AORTA_SCHEDULER_EXECUTOR": "kubernetes",
        "AORTA_SCHEDULER_GPUS": "1",
        "AORTA_SCHEDULER_CPUS": "4",
        "AORTA_SCHEDULER_MEMORY_MB": "8192",
        **STEADY_LEASE,  # `crash_scheduler` expires it at once, as its TTL passing would
        "AORTA_SCHEDULER_RESYNC": "0.3",
        "AORTA_SCHEDULER_GRACE": "1",
    }


def models_env(kubeconfig: Path) -> dict[str, str]:
    return {
        **kubernetes_env(kubeconfig),
        "AORTA_TRITON_BACKEND": "kubernetes",
        # Only written into the Deployment: the played server reads the blob folder itself.
        "AORTA_K8S_TRITON_REPOSITORY": "s3://minio.aorta.svc:9000/aorta/triton-repository",
        "AORTA_K8S_TRITON_READY_TIMEOUT": "30",
        "AORTA_TRITON_LOAD_TIMEOUT": "60",
    }


class TritonNode:
    """Plays Triton Deployments (`Node`), all served by one real tritonserver, started by the
    first Deployment and reached through `network` at every Service's address. `close` stops
    playing, then stops the server."""

    def __init__(self, cluster: Cluster, network: ServiceNetwork) -> None:
        self._stack = AsyncExitStack()
        self._cluster = cluster
        self._network = network
        self._work = Path(cluster.core.blob_store.removeprefix("file:///")).parent / "triton"
        self._process: TritonProcess | None = None
        self._node = Node(cluster, on_start=self._serve)

    async def _serve(self, server_id: str) -> None:
        if self._process is not None:
            return
        install = await asyncio.to_thread(TritonInstall.locate)
        local = await LocalTritonBackend.open(self._work / "local", install, environ=os.environ)
        self._stack.push_async_callback(local.close)
        blob_root = Path(self._cluster.core.blob_store.removeprefix("file:///"))
        (blob_root / "triton-repository").mkdir(parents=True, exist_ok=True)
        process = TritonProcess(
            install,
            repository=blob_root / "triton-repository",
            backends=local.folder / "backends",
            log_file=self._work / "tritonserver.log",
            environ=os.environ,
        )
        await process.start()
        self._stack.push_async_callback(process.stop)
        self._process = process
        self._network.route(GRPC_PORT, process.grpc_uri)
        self._network.route(HTTP_PORT, process.http_uri)

    async def close(self) -> None:
        await self._node.close()
        await self._stack.aclose()


@dataclass
class KubernetesPlatform(Platform):
    """`Platform` whose scheduler runs operators as pods on `cluster`."""

    cluster: Cluster | None = None
    scheduler_env: Mapping[str, str] = field(default_factory=dict)
    pods: list[Json] = field(default_factory=list)
    """Every operator pod created on the stand-in, as the stand-in stored it."""

    @property
    def server(self) -> KubeApiServer:
        assert self.cluster is not None and self.cluster.server is not None
        return self.cluster.server

    @property
    def kubelet(self) -> SimulatedKubelet:
        assert self.cluster is not None and self.cluster.kubelet is not None
        return self.cluster.kubelet

    async def start_scheduler(self) -> RunningScheduler:
        scheduler = await scheduler_app.start(self.context, environ=self.scheduler_env)
        self.services.append(scheduler)
        return scheduler

    async def crash_scheduler(self) -> None:
        """The scheduler's process dies: it stops answering and leading without a word, its
        lease expires (at once here: `STEADY_LEASE`), and its pods, which outlive it, keep running.

        Nothing of a dead process runs on, so the replica is stopped as a whole (its gauges,
        its outbox replay, whatever its stop ends) rather than piece by piece: only the word a
        clean stop would say, expiring the lease, must not be said. The lease is written as the
        TTL's passing leaves it, expired now, so the replica's release no longer matches its
        version and fails as it does when the store is out of reach, and the next replica
        takes the lease at its first try."""
        scheduler = self.scheduler
        self.services.remove(scheduler)
        for subscription in scheduler.served:
            await subscription.drain()
        if scheduler.loop is not None:
            scheduler.loop.cancel()
            await asyncio.gather(scheduler.loop, return_exceptions=True)
        leases = self.context.store.collection(LEASES)
        lease = await leases.get(LEASE_ID)
        await leases.update(LEASE_ID, {"expires_at": min(lease["expires_at"], time.time())})
        await scheduler.stop(0)

    def pod_creates(self, name: str) -> int:
        """How many times a pod of that name was asked for (409 answers included)."""
        return self.server.creates.count(("pods", name))

    async def upload_model(self, name: str, archive: bytes) -> None:
        stub = models_pb2_grpc.ModelsStub(self.channel)
        details = models_pb2.ModelDetails(name=name)
        requests = [models_pb2.ModelsUploadModelRequest(details=details)] + [
            models_pb2.ModelsUploadModelRequest(data=archive[i : i + CHUNK])
            for i in range(0, len(archive), CHUNK)
        ]
        response = await stub.UploadModel(iter(requests))  # type: ignore[arg-type]
        assert response.header.code == 0, response.header

    async def download(self, payload_id: str, name: str) -> bytes:
        stub = payloads_pb2_grpc.PayloadsStub(self.channel)
        request = payloads_pb2.PayloadsDownloadRequest(payload_id=ident(payload_id), name=name)
        data = b""
        async for message in stub.Download(request):
            assert message.header.code == 0, message.header
            data += message.data
        return data


async def open_platform(
    stack: AsyncExitStack,
    nats_url: str,
    cluster: Cluster,
    network: ServiceNetwork,
    tmp_path: Path,
) -> KubernetesPlatform:
    """Starts every service and the Triton node; `stack` stops them, the services first."""
    assert cluster.server is not None
    kubeconfig = cluster.server.kubeconfig(tmp_path / "platform-kubeconfig", NAMESPACE)
    settings = Settings.from_env(
        {
            "AORTA_DATA_DIR": str(tmp_path / "data"),
            "AORTA_BLOB_STORE": cluster.core.blob_store,
            "AORTA_NATS_URL": nats_url,
            "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT),
        }
    )
    bus = await NatsBus.connect(nats_url, name="aorta-test", default_timeout=RPC_TIMEOUT)
    stack.push_async_callback(bus.close)
    store = await open_state_store(settings)
    stack.push_async_callback(store.close)
    # The platform's own blob store on the cluster's folder, as the agent containers open it.
    blobs = cluster.blobs
    context = ServiceContext(settings=settings, bus=bus, store=store, blobs=blobs)
    triton = TritonNode(cluster, network)
    stack.push_async_callback(triton.close)  # after the models service removed its servers
    pods: list[Json] = []

    def created(plural: str, obj: Json) -> None:
        if plural == "pods" and RUN_ID_ANNOTATION in obj["metadata"].get("annotations", {}):
            pods.append(obj)

    cluster.server.hooks.append(created)
    for service in (pipelines_app, payloads_app):
        stack.push_async_callback((await service.start(context)).stop, 1.0)
    models = await models_app.start(context, environ=models_env(kubeconfig))
    stack.push_async_callback(models.stop, 1.0)
    gateway = await gateway_app.start(context, address="127.0.0.1:0")
    stack.push_async_callback(gateway.stop, 1.0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    stack.push_async_callback(channel.close)
    platform = KubernetesPlatform(
        gateway.port,
        context,
        channel,
        tmp_path,
        cluster=cluster,
        scheduler_env=scheduler_env(kubeconfig),
        pods=pods,
    )

    async def stop_schedulers() -> None:
        for scheduler in platform.services:
            await scheduler.stop(1.0)

    # Pushed last, so stopped first: the services a scheduler calls still answer meanwhile.
    stack.push_async_callback(stop_schedulers)
    await platform.start_scheduler()
    return platform
