"""Composition root of the models service: the model repository and the Triton pool.

It serves its verbs in the `models` queue group. Model records live in the store and archives
in the blob store, so the repository verbs may run on any number of replicas; the Triton pool
is shared by every replica through the store (`pool_cluster`), so the service runs with as
many replicas as wanted, acquire and release answered by any. When no tritonserver can be
found, or the user a root platform runs it as (`AORTA_TRITON_RUN_AS`) does not exist, the
repository still works and every acquire fails with SERVICE_UNAVAILABLE saying how to install
one or make the user.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from aorta import contracts, subjects
from aorta.bus import Bus
from aorta.errors import Unavailable
from aorta.gpu import gpu_count
from aorta.logger import get_logger
from aorta.outbox import Outbox
from aorta.runtime.service import RunningService, ServiceContext
from aorta.triton import ArchiveWriter, LastingServers, TritonBackend, TritonServer
from aorta.triton.local.backend import LocalTritonBackend
from aorta.triton.local.confinement import resolve_triton_user, working_root
from aorta.triton.local.install import TritonInstall
from aorta_services.models.archives import ModelArchives
from aorta_services.models.catalogs import CATALOG_MESSAGES, INSTANCE_MESSAGES, ListHandlers
from aorta_services.models.handlers import ModelHandlers
from aorta_services.models.pool import TritonPool
from aorta_services.models.pool_cluster import PoolCluster
from aorta_services.models.pool_verbs import PoolVerbs
from aorta_services.models.replicas import ReplicaHeartbeat, replica_name
from aorta_services.models.repository import CATALOGS, INSTANCES, ListRepository, ModelRepository
from aorta_services.models.server_mirror import ServerMirror
from aorta_services.models.settings import ModelsSettings

log = get_logger(__name__)


class MissingTriton:
    """The backend used when no tritonserver is installed: every server start fails."""

    def __init__(self, reason: Unavailable) -> None:
        self._reason = reason

    async def start_server(self, server_id: str, gpus: Sequence[int] = ()) -> TritonServer:
        raise Unavailable(*self._reason.messages)

    async def install_model(self, name: str, revision: str, write_archive: ArchiveWriter) -> None:
        raise Unavailable(*self._reason.messages)

    async def remove_model(self, name: str) -> None:
        return None

    async def close(self) -> None:
        return None


class RunningModels(RunningService):
    """A started models service. `stop` stops answering, then stops every Triton server."""

    def __init__(
        self,
        bus: Bus,
        *,
        cluster: PoolCluster,
        backend: TritonBackend,
        archives: ModelArchives,
        mirror: ServerMirror,
    ) -> None:
        super().__init__("models", bus)
        self.cluster = cluster
        self.pool = cluster.pool
        self.backend = backend
        self.archives = archives
        closes = (archives.close, mirror.close, backend.close, self.pool.close, cluster.close)
        for close in closes:
            self.on_stop(close)


async def start(
    ctx: ServiceContext,
    *,
    environ: Mapping[str, str] = os.environ,
    backend: TritonBackend | None = None,
) -> RunningModels:
    """Starts the service; returns once every verb is served.

    The service's own settings (`ModelsSettings`) come from `environ`, which defaults to the
    process environment because `ServiceContext` carries only the core settings; it is also the
    environment tritonserver children inherit. `backend` defaults to local tritonserver
    processes under `<data dir>/triton/` (containers of `AORTA_TRITON_IMAGE` when it is set).
    """
    settings = ModelsSettings.from_env(environ)
    models = ModelRepository(ctx.store)
    await models.prepare()
    data = ctx.settings.data_dir
    archives = await ModelArchives.open(models, ctx.blobs, settings.limits, data / "models")
    swept = await archives.sweep_staging()
    if swept:
        log.info("models.stale_uploads_removed", count=swept)
    replica = replica_name()
    mirror = ServerMirror(ctx.store, owner=replica)
    # Servers that outlive their replica are swept at start, but the live replicas' own.
    alive = await ReplicaHeartbeat(ctx.store, replica, settings.replica_ttl).alive()
    keep = await mirror.server_ids(alive)
    if backend is None and settings.backend == "kubernetes":
        backend = await _kubernetes_backend(ctx, settings, environ, keep)
    elif backend is None and settings.backend == "container":
        backend = await _container_backend(settings, environ, data / "triton", keep)
    elif backend is None:
        backend = await _local_backend(settings, environ, data / "triton")
    devices = await _triton_devices(settings)
    pool = TritonPool(backend, archives, settings.pool, mirror=mirror, devices=devices)
    pool.start()
    lasting = backend if isinstance(backend, LastingServers) else None
    cluster = PoolCluster(pool, ctx.store, mirror, ttl=settings.replica_ttl, lasting=lasting)
    await cluster.start()
    running = RunningModels(
        ctx.bus, cluster=cluster, backend=backend, archives=archives, mirror=mirror
    )
    async with running.starting():
        await _serve(ctx, running, models)
    log.info(
        "models.serving",
        models_per_server=settings.pool.models_per_server,
        triton_backend=settings.backend,
        triton_gpus=list(devices),
    )
    return running


async def _local_backend(
    settings: ModelsSettings, environ: Mapping[str, str], root: Path
) -> TritonBackend:
    try:
        install = await asyncio.to_thread(
            TritonInstall.locate, settings.triton_home, settings.python_env
        )
        user = resolve_triton_user(settings.run_as, euid=os.geteuid(), egid=os.getegid())
        if user.switch:
            # The data dir is closed to the server's user: its repository lives outside it.
            root = await asyncio.to_thread(working_root, os.geteuid())
    except Unavailable as missing:
        log.warning("models.triton_missing", reason="; ".join(missing.messages))
        return MissingTriton(missing)
    return await LocalTritonBackend.open(
        root,
        install,
        environ=environ,
        user=user,
        limits=settings.limits,
        pools=settings.memory_pools,
        start_timeout=settings.start_timeout,
        stop_grace=settings.stop_grace,
        load_timeout=settings.load_timeout,
    )


async def _triton_devices(settings: ModelsSettings) -> tuple[int, ...]:
    """The node's GPUs Triton servers may use; none for servers the cluster places."""
    if settings.backend == "kubernetes":
        return ()
    if settings.pool.gpus is not None:
        return settings.pool.gpus
    return tuple(range(await gpu_count()))


async def _container_backend(
    settings: ModelsSettings, environ: Mapping[str, str], root: Path, keep: set[str]
) -> TritonBackend:
    # Imported here so a platform without containers never loads the Docker client.
    from aorta.executors.container.engine import ContainerEngine
    from aorta.executors.container.settings import ContainerSettings
    from aorta.executors.engine_probe import detect
    from aorta.triton.container.backend import ContainerTritonBackend

    assert settings.image is not None
    detection = await detect(environ)
    if detection.engine is None:
        missing = Unavailable(
            f"AORTA_TRITON_IMAGE={settings.image} needs a container engine, and none answered "
            f"at {', '.join(detection.tried)} (AORTA_CONTAINER_HOST)"
        )
        log.warning("models.triton_missing", reason="; ".join(missing.messages))
        return MissingTriton(missing)
    containers = ContainerSettings.from_env(environ)
    try:
        engine = await ContainerEngine.connect(detection.engine.host)
    except Unavailable as missing:
        log.warning("models.triton_missing", reason="; ".join(missing.messages))
        return MissingTriton(missing)
    try:
        return await ContainerTritonBackend.open(
            root,
            engine,
            image=settings.image,
            instance=containers.instance,
            pools=settings.memory_pools,
            limits=settings.limits,
            pull_policy=containers.pull_policy,
            auth_file=containers.auth_file,
            start_timeout=settings.start_timeout,
            stop_grace=settings.stop_grace,
            load_timeout=settings.load_timeout,
            owns_engine=True,
            keep=keep,
        )
    except BaseException:
        await engine.close()
        raise


async def _kubernetes_backend(
    ctx: ServiceContext, settings: ModelsSettings, environ: Mapping[str, str], keep: set[str]
) -> TritonBackend:
    # Imported here so a local platform never loads the Kubernetes client.
    from aorta.kubernetes.settings import KubernetesSettings
    from aorta.triton.kubernetes.backend import KubernetesTritonBackend
    from aorta.triton.kubernetes.objects import TritonSettings

    return await KubernetesTritonBackend.open(
        ctx.blobs,
        KubernetesSettings.from_env(environ),
        TritonSettings.from_env(environ, ctx.settings),
        limits=settings.limits,
        load_timeout=settings.load_timeout,
        keep=keep,
    )


async def _serve(ctx: ServiceContext, running: RunningModels, models: ModelRepository) -> None:
    outbox = Outbox(ctx.bus, ctx.store, service="models")
    await outbox.watch(models.collection)
    running.on_stop(outbox.start_replaying())
    handlers = ModelHandlers(models, running.archives, ctx.blobs, running.cluster, outbox)
    verbs = PoolVerbs(running.cluster, models)
    catalogs = ListHandlers(ListRepository(ctx.store, CATALOGS), models, CATALOG_MESSAGES)
    instances = ListHandlers(ListRepository(ctx.store, INSTANCES), models, INSTANCE_MESSAGES)
    await running.serve_verb(contracts.MODELS_UPLOAD, handlers.upload)
    await running.serve_verb(contracts.MODELS_DOWNLOAD, handlers.download)
    await running.serve_stream(subjects.MODELS_LIST, handlers.list_models)
    await running.serve(subjects.MODELS_DELETE, handlers.delete)
    await running.serve(subjects.MODELS_ADD_METADATA, handlers.add_metadata)
    await running.serve(subjects.MODELS_REMOVE_METADATA, handlers.remove_metadata)
    await running.serve_verb(contracts.MODELS_ACQUIRE_TRITON, verbs.acquire)
    await running.serve_verb(contracts.MODELS_RELEASE_TRITON, verbs.release)
    await running.serve_verb(contracts.MODELS_PLATFORM_STOP, verbs.platform_stop)
    await running.serve(subjects.MODELS_CREATE_CATALOG, catalogs.create)
    await running.serve(subjects.MODELS_DELETE_CATALOG, catalogs.delete)
    await running.serve_stream(subjects.MODELS_LIST_CATALOGS, catalogs.list_all)
    await running.serve_stream(subjects.MODELS_READ_CATALOG, catalogs.read)
    await running.serve_verb(contracts.MODELS_UPDATE_CATALOG, catalogs.update)
    await running.serve(subjects.MODELS_CREATE_INSTANCE, instances.create)
    await running.serve(subjects.MODELS_DELETE_INSTANCE, instances.delete)
    await running.serve_stream(subjects.MODELS_LIST_INSTANCES, instances.list_all)
    await running.serve_stream(subjects.MODELS_READ_INSTANCE, instances.read)
    await running.serve_verb(contracts.MODELS_UPDATE_INSTANCE, instances.update)
