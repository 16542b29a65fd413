"""The Kubernetes Triton backend: each pooled server is a Deployment and a Service.

The pool above (`aorta_services.models.pool`) decides which server a job gets, the same
placement for every backend; this backend, like the local one, only starts servers, keeps the
model repository and loads models:

- `start_server` creates the server's Service and Deployment (`kubernetes_objects`) in the jobs
  namespace (its GPUs are the cluster's to pick, `AORTA_K8S_TRITON_GPUS` of them, so the
  devices the pool names are not used) and returns once its pod is Ready, from a watch of the
  instance's Triton pods (never polling); that pod is remembered: `alive()` turns False when it
  is gone or has restarted (a restarted Triton is empty), read from the same watch, without I/O.
- `install_model` expands a model's archive and stores its files in the blob store's
  `triton-repository/<model>/`, which every server reads as its S3 model repository;
  `remove_model` deletes them. A read/write lock per model keeps loads from reading a folder
  being replaced, as in the local backend.
- Servers are controlled over Triton's gRPC API at their Service address
  (`aorta.triton.control`).
- Opening the backend removes the servers a previous process of this instance left (the pool
  lives in one process and cannot adopt them: run the models service as one replica, recreated
  rather than rolled).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import suppress
from pathlib import Path

from aorta.blobs import BlobStore
from aorta.errors import Conflict, NotFound, Unavailable
from aorta.executors.run_log import file_chunks, open_for_reading
from aorta.kubernetes import names
from aorta.kubernetes.api import DEPLOYMENT, POD, SERVICE, Json, KubeApi
from aorta.kubernetes.settings import KubernetesSettings
from aorta.kubernetes.watch import ObjectWatch
from aorta.logger import get_logger
from aorta.triton.archive import DEFAULT_LIMITS, ArchiveLimits, extract_archive, inspect_archive
from aorta.triton.control import ControlledServer, TritonControl
from aorta.triton.kubernetes.objects import (
    GRPC_PORT,
    HTTP_PORT,
    REPOSITORY_ROOT,
    TritonSettings,
    service_host,
    triton_deployment,
    triton_service,
)
from aorta.triton.model_locks import ModelLocks
from aorta.triton.port import ArchiveWriter

_log = get_logger(__name__)
_STOP_WAIT = 60.0
"""Seconds `stop` waits for a server's pod to go (its GPU is free only then)."""

Addresses = Callable[[str], tuple[str, str]]
"""A server id → its (gRPC, HTTP) `host:port`."""


class KubernetesTritonServer(ControlledServer):
    """A `TritonServer` that is one pod of a Deployment, reached through its Service."""

    def __init__(
        self, id: str, backend: KubernetesTritonBackend, pod: Json, control: TritonControl
    ) -> None:
        super().__init__(id, control, backend.lock)
        self._backend = backend
        self._pod_uid = str(pod["metadata"].get("uid", ""))
        self._restarts = _restarts(pod)

    def alive(self) -> bool:
        return self._backend.serves(self.id, self._pod_uid, self._restarts)

    async def _halt(self) -> None:
        await self._backend.remove_server(self.id)


class KubernetesTritonBackend:
    """A `TritonBackend` whose servers are Deployments in `kubernetes.namespace`.

    Build it with `await KubernetesTritonBackend.open(...)`, which removes leftovers (see the
    module docstring). `addresses` maps a server id to where this process reaches it (default:
    the Service's DNS name and Triton's ports), `load_timeout` bounds one model load.
    """

    def __init__(
        self,
        api: KubeApi,
        blobs: BlobStore,
        kubernetes: KubernetesSettings,
        triton: TritonSettings,
        *,
        owns_api: bool = False,
        limits: ArchiveLimits = DEFAULT_LIMITS,
        load_timeout: float = 300.0,
        addresses: Addresses | None = None,
    ) -> None:
        self._api = api
        self._blobs = blobs
        self._k8s = kubernetes
        self._triton = triton
        self._owns_api = owns_api
        self._limits = limits
        self._load_timeout = load_timeout
        self._addresses = addresses or self._service_addresses
        self._selector = names.selector(
            names.base_labels(kubernetes.instance, names.TRITON_COMPONENT)
        )
        self.pods = ObjectWatch(
            api, POD, kubernetes.namespace, self._selector, lasting=kubernetes.watch_timeout
        )
        """The live view of this instance's Triton pods (readiness, restarts)."""
        self._installed: dict[str, str] = {}
        self.lock = ModelLocks()
        """The lock that orders loads of a model (readers) and replacements of its files."""
        self._closed = False

    @classmethod
    async def open(
        cls,
        blobs: BlobStore,
        kubernetes: KubernetesSettings,
        triton: TritonSettings,
        *,
        limits: ArchiveLimits = DEFAULT_LIMITS,
        load_timeout: float = 300.0,
        keep: Collection[str] = (),
    ) -> KubernetesTritonBackend:
        """Connects to the cluster `kubernetes` names and removes this instance's leftover
        servers but those `keep` names (other live models replicas' servers); the backend
        owns the connection."""
        api = await KubeApi.connect(kubernetes.kubeconfig, kubernetes.context)
        backend = cls(
            api, blobs, kubernetes, triton, owns_api=True, limits=limits, load_timeout=load_timeout
        )
        await backend.remove_leftovers(keep)
        return backend

    async def start_server(
        self, server_id: str, gpus: Sequence[int] = ()
    ) -> KubernetesTritonServer:
        if self._closed:
            raise Unavailable("the Triton backend is closed")
        self.pods.start()
        namespace = self._k8s.namespace
        for kind, manifest in (
            (SERVICE, triton_service(self._k8s, server_id)),
            (DEPLOYMENT, triton_deployment(self._k8s, self._triton, server_id)),
        ):
            try:
                await self._api.create(kind, namespace, manifest)
            except Conflict:
                raise Unavailable(f"a Triton server {server_id} exists already") from None
        _log.info("triton.server_created", server_id=server_id)
        try:
            async with asyncio.timeout(self._triton.ready_timeout):
                pod = await self._ready_pod(server_id)
        except TimeoutError:
            await self.remove_server(server_id)
            raise Unavailable(
                f"the Triton server {server_id} was not ready within "
                f"{self._triton.ready_timeout} s (AORTA_K8S_TRITON_READY_TIMEOUT): see "
                f"`kubectl -n {namespace} describe deployment {names.triton_name(server_id)}`"
            ) from None
        grpc_uri, http_uri = self._addresses(server_id)
        control = TritonControl(server_id, grpc_uri, http_uri, self._load_timeout)
        return KubernetesTritonServer(server_id, self, pod, control)

    def serves(self, server_id: str, pod_uid: str, restarts: int) -> bool:
        """Whether the pod a server started with still runs, never restarted (no I/O)."""
        for pod in self.pods.objects():
            if pod["metadata"].get("uid") == pod_uid:
                deleting = bool(pod["metadata"].get("deletionTimestamp"))
                return not deleting and _restarts(pod) == restarts and _ready(pod)
        return False

    async def install_model(self, name: str, revision: str, write_archive: ArchiveWriter) -> None:
        async with self.lock(name).writing():
            if self._installed.get(name) == revision:
                return
            with tempfile.TemporaryDirectory(prefix="aorta-triton-") as work:
                archive, folder = Path(work) / "model.zip", Path(work) / "model"
                await write_archive(archive)
                await asyncio.to_thread(self._expand, name, archive, folder)
                prefix = f"{REPOSITORY_ROOT}{name}/"
                await self._blobs.delete_prefix(prefix)
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    key = prefix + path.relative_to(folder).as_posix()
                    await self._blobs.put(key, _chunks(path))
            self._installed[name] = revision
            _log.info("triton.model_installed", model=name, revision=revision)

    async def remove_model(self, name: str) -> None:
        async with self.lock(name).writing():
            self._installed.pop(name, None)
            await self._blobs.delete_prefix(f"{REPOSITORY_ROOT}{name}/")

    async def remove_server(self, server_id: str) -> None:
        """Deletes the server's Deployment and Service, and waits (bounded) for its pod to go."""
        name = names.triton_name(server_id)
        for kind in (DEPLOYMENT, SERVICE):
            with suppress(NotFound):
                await self._api.delete(kind, self._k8s.namespace, name, grace=15)
        label = names.label_value(server_id)
        with suppress(TimeoutError):
            async with asyncio.timeout(_STOP_WAIT):
                await self.pods.synced()
                while any(_labels(p).get(names.SERVER_LABEL) == label for p in self.pods.objects()):
                    await self.pods.changed_since(self.pods.version)
        _log.info("triton.server_removed", server_id=server_id)

    async def remove_leftovers(self, keep: Collection[str] = ()) -> int:
        """Deletes every server of this instance that exists now but those `keep` names;
        returns how many."""
        listing = await self._api.list(DEPLOYMENT, self._k8s.namespace, self._selector)
        removed = 0
        for item in listing.items:
            server_id = item["metadata"].get("annotations", {}).get("aorta/triton-server-id")
            if server_id and server_id not in keep:
                _log.warning("triton.leftover_removed", server_id=server_id)
                await self.remove_server(server_id)
                removed += 1
        return removed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.pods.close()
        if self._owns_api:
            await self._api.close()

    async def _ready_pod(self, server_id: str) -> Json:
        """The server's pod once it is Ready (its readiness probe, `/v2/health/ready`, passed)."""
        label = names.label_value(server_id)
        await self.pods.synced()
        while True:
            version = self.pods.version
            for pod in self.pods.objects():
                if _labels(pod).get(names.SERVER_LABEL) == label and _ready(pod):
                    return pod
            await self.pods.changed_since(version)

    def _expand(self, name: str, archive: Path, folder: Path) -> None:
        model = inspect_archive(archive, name=name, limits=self._limits, verify=False)
        extract_archive(archive, model, folder, self._limits)

    def _service_addresses(self, server_id: str) -> tuple[str, str]:
        host = service_host(self._k8s, server_id)
        return f"{host}:{GRPC_PORT}", f"{host}:{HTTP_PORT}"


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    async for chunk in file_chunks(await open_for_reading(path)):
        yield chunk


def _labels(obj: Json) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _restarts(pod: Json) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return sum(int(status.get("restartCount") or 0) for status in statuses)


def _ready(pod: Json) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
