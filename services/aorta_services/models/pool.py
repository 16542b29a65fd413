"""The Triton pool: servers with the models a job asked for, shared within a job, kept warm.

`acquire` decides synchronously (so two concurrent acquires never pick the same idle server)
with `placement.place`, records the decision at once (the server is the job's, the models it
will load count against the per-server limit), then does the slow part under the server's own
lock: start the server if new, unload what must make room, expand archives that are not in the
repository yet and load the missing models, all loads of one acquire in parallel. A failure
undoes the decision: the models that did not load are forgotten, a server taken from the idle
pool goes back to it, a server that did not start is dropped.

Each new server gets its GPUs when it is reserved (`domain.gpus`): the devices the job was given,
as far as Triton may use them, else the least used of the devices Triton may use; none means the
CPU. The backend gives the server exactly those devices.

A pool is one models service replica's servers (`pooled_server`), in its memory and written to
`triton_servers` (see `server_mirror`); `pool_cluster` coordinates the replicas' pools through
the store. Local tritonserver children die with their replica (PR_SET_PDEATHSIG), and a
restarted replica starts with an empty pool. The pool's own gauges (this replica's servers by
state, models loaded in them) and acquire times are its metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aorta.errors import AortaError, Unavailable
from aorta.ids import new_id
from aorta.logger import get_logger
from aorta.observability import metrics
from aorta.tasks import cancel_and_wait
from aorta.triton import TritonBackend, TritonServer
from aorta_services.models.domain.gpus import job_devices, spread_devices
from aorta_services.models.domain.placement import (
    Placement,
    ServerView,
    next_expiry,
    place,
    to_stop,
)
from aorta_services.models.pooled_server import PooledServer, set_gauges
from aorta_services.models.server_mirror import ServerMirror
from aorta_services.models.settings import PoolSettings

log = get_logger(__name__)


class ModelSource(Protocol):
    """Where the pool gets a model's archive."""

    async def write_archive(self, name: str, revision: str, into: Path) -> None:
        """Writes revision `revision` of model `name` to `into`; `NotFound` (MODEL_NOT_FOUND)
        when the model is gone or was replaced meanwhile."""
        ...


@dataclass(frozen=True)
class Acquired:
    """Where a job reaches its server: `host:port`, without a scheme, as Clara hands them out."""

    server_id: str
    grpc_uri: str
    http_uri: str


class TritonPool:
    """Triton servers for jobs (see the module docstring and `placement`).

    Every method may be called from many coroutines at once. `start` begins the idle reaper;
    `close` stops every server. `devices` are the node's GPUs Triton may use (NVML's indices;
    empty: every server runs on the CPU). `clock` (seconds) dates releases; tests may drive it.
    """

    def __init__(
        self,
        backend: TritonBackend,
        source: ModelSource,
        settings: PoolSettings,
        *,
        mirror: ServerMirror | None = None,
        devices: tuple[int, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self.devices = devices
        self._source = source
        self._settings = settings
        self._mirror = mirror
        self._clock = clock
        self._servers: dict[str, PooledServer] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None

    def views(self) -> list[ServerView]:
        """The servers as placement sees them."""
        return [pooled.view() for pooled in self._servers.values()]

    def load_count(self, server_id: str) -> int:
        """How many model loads server `server_id` has performed."""
        return self._servers[server_id].loads

    def jobs_using(self, name: str) -> list[str]:
        """The jobs holding a server that holds (or is loading) model `name`."""
        return sorted({p.job for p in self._servers.values() if p.job and name in p.models})

    def held_jobs(self) -> set[str]:
        """The jobs holding one of this pool's servers."""
        return {p.job for p in self._servers.values() if p.job is not None}

    def record_again(self, recorded: set[str]) -> list[str]:
        """Queues again the documents of this pool's servers whose ids are not in `recorded`
        (the ids the store holds for this replica); the ids queued."""
        missing = [p for p in self._servers.values() if p.id not in recorded]
        for pooled in missing:
            self._save(pooled)
        return [pooled.id for pooled in missing]

    def start(self) -> None:
        """Starts the task that stops servers idle for longer than the idle time."""
        self._reaper = asyncio.create_task(self._reap(), name="aorta.models.triton_reaper")

    async def acquire(
        self, job: str, wanted: Mapping[str, str], gpus: tuple[int, ...] = ()
    ) -> Acquired:
        """A server holding every model of `wanted` (name -> current revision), for `job`,
        on the job's own devices `gpus` where Triton may use them (see the module docstring).

        `Invalid` when they cannot fit one server, `Unavailable` when no server can be had or
        a server fails, and the error of the first model that did not load (Triton's own text),
        with every failed model's message. A failed or cancelled acquire is undone (see the
        module docstring); what the job got from earlier acquires stays until `release(job)`.
        """
        began = time.perf_counter()
        for pooled in [p for p in self._servers.values() if p.server and not p.server.alive()]:
            log.warning("triton.server_died", server_id=pooled.id, job_id=pooled.job)
            self._drop(pooled)
        required = job_devices(gpus, self.devices, self._settings.gpus_per_server)
        placement = place(
            job,
            wanted,
            self.views(),
            models_per_server=self._settings.models_per_server,
            max_servers=self._settings.max_servers,
            gpus=required,
        )
        pooled, origin = self._reserve(job, wanted, placement, required)
        try:
            async with pooled.lock:
                await self._prepare(pooled, job, wanted, placement)
        except BaseException:
            self._undo(pooled, job, placement, origin)
            raise
        finally:
            self._save(pooled)
        assert pooled.server is not None
        if metrics.recording():
            warm = "false" if origin == "new" else "true"
            metrics.TRITON_ACQUIRE_SECONDS.labels(warm).observe(time.perf_counter() - began)
        log.info(
            "triton.acquired",
            job_id=job,
            server_id=pooled.id,
            models=sorted(wanted),
            gpus=list(pooled.gpus),
        )
        return Acquired(pooled.id, pooled.server.grpc_uri, pooled.server.http_uri)

    def _reserve(
        self,
        job: str,
        wanted: Mapping[str, str],
        placement: Placement,
        required: tuple[int, ...] | None,
    ) -> tuple[PooledServer, str]:
        """Records the decision; returns the server and where it came from: "new", "idle"
        (taken from the pool) or "own" (already the job's). A new server gets the `required`
        devices, else the least used ones."""
        if placement.server is None:
            if required is None:
                in_use = [p.gpus for p in self._servers.values()]
                required = spread_devices(self.devices, in_use, self._settings.gpus_per_server)
            models = {name: wanted[name] for name in placement.load}
            pooled = PooledServer(new_id(), job, models, gpus=required)
            self._servers[pooled.id] = pooled
            self._save(pooled)
            return pooled, "new"
        pooled = self._servers[placement.server]
        origin = "idle" if pooled.job is None else "own"
        pooled.job, pooled.idle_since = job, None
        for name in placement.unload:
            pooled.models.pop(name, None)
        pooled.models.update({name: wanted[name] for name in placement.load})
        self._wake.set()
        return pooled, origin

    async def _prepare(
        self, pooled: PooledServer, job: str, wanted: Mapping[str, str], placement: Placement
    ) -> None:
        if self._servers.get(pooled.id) is not pooled or pooled.job != job:
            raise Unavailable(f"the Triton server prepared for job {job} failed; try again")
        if pooled.server is None:
            started = await self._backend.start_server(pooled.id, pooled.gpus)
            if self._servers.get(pooled.id) is not pooled:
                await started.stop()
                raise Unavailable(
                    f"the Triton pool was stopped while a server for job {job} started"
                )
            pooled.server = started
        elif pooled.loaded:
            # Trust Triton's own index over our books: a model whose backend stub died is no
            # longer READY and is loaded again below.
            ready = await pooled.server.ready_models()
            for name in [name for name in pooled.loaded if name not in ready]:
                log.warning("triton.model_not_ready", server_id=pooled.id, model=name)
                del pooled.loaded[name]
        server = pooled.server
        if not server.alive():
            raise Unavailable(f"the Triton server {pooled.id} of job {job} stopped")
        for name in placement.unload:
            if pooled.loaded.pop(name, None) is not None:
                await server.unload(name)
        # An earlier acquire of this job that failed may have reserved names it never loaded.
        todo = sorted(
            name
            for name in wanted
            if name not in pooled.loaded
            or (name in placement.load and pooled.loaded[name] != wanted[name])
        )
        outcomes = await asyncio.gather(
            *(self._load(pooled, server, name, wanted[name]) for name in todo),
            return_exceptions=True,
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        for failure in failures:
            if not isinstance(failure, Exception):
                raise failure
        errors = [f if isinstance(f, AortaError) else Unavailable(str(f)) for f in failures]
        if errors:
            messages = [message for error in errors for message in error.messages]
            raise type(errors[0])(*messages, code=errors[0].code)

    async def _load(
        self, pooled: PooledServer, server: TritonServer, name: str, revision: str
    ) -> None:
        write = functools.partial(self._source.write_archive, name, revision)
        await self._backend.install_model(name, revision, write)
        started = time.perf_counter()
        await server.load(name)
        pooled.models[name] = pooled.loaded[name] = revision
        pooled.loads += 1
        log.info(
            "triton.model_loaded",
            server_id=pooled.id,
            model=name,
            revision=revision,
            seconds=round(time.perf_counter() - started, 3),
        )

    def _undo(self, pooled: PooledServer, job: str, placement: Placement, origin: str) -> None:
        for name in placement.load:
            if name in pooled.loaded:
                pooled.models[name] = pooled.loaded[name]
            else:
                pooled.models.pop(name, None)
        if self._servers.get(pooled.id) is not pooled:
            return
        # A server another acquire of this job is still starting is left to that acquire.
        never_started = pooled.server is None and origin == "new"
        if never_started or (pooled.server is not None and not pooled.server.alive()):
            self._drop(pooled)
        elif origin != "own" and pooled.job == job and pooled.server is not None:
            self._make_idle(pooled)
            self._trim()

    async def release(self, job: str) -> int:
        """Returns `job`'s servers to the idle pool (stopping those beyond the pool size);
        how many it held. Releasing a job that holds none does nothing."""
        held = [p for p in self._servers.values() if p.job == job]
        for pooled in held:
            self._make_idle(pooled)
        if held:
            log.info("triton.released", job_id=job, servers=[p.id for p in held])
            self._trim()
        return len(held)

    async def forget(self, name: str) -> None:
        """Model `name` was deleted: idle servers unload it and its files are removed."""
        for pooled in [p for p in self._servers.values() if p.job is None and name in p.models]:
            pooled.models.pop(name, None)
            if pooled.loaded.pop(name, None) is not None and pooled.server is not None:
                try:
                    await pooled.server.unload(name)
                except AortaError as error:
                    log.warning("triton.unload_failed", server_id=pooled.id, error=str(error))
            self._save(pooled)
        await self._backend.remove_model(name)

    async def expire(self) -> int:
        """Stops the idle servers past the idle time or beyond the pool size; how many."""
        return self._trim()

    async def stop_all(self) -> int:
        """Stops every server, held or idle, and waits for them; how many there were."""
        pooled = list(self._servers.values())
        for entry in pooled:
            self._drop(entry)
        await self._settle()
        log.info("triton.all_stopped", servers=len(pooled))
        return len(pooled)

    async def close(self) -> None:
        """Stops the reaper and every server. Idempotent."""
        if self._reaper is not None:
            await cancel_and_wait(self._reaper)
            self._reaper = None
        await self.stop_all()

    def _make_idle(self, pooled: PooledServer) -> None:
        pooled.job, pooled.idle_since = None, self._clock()
        self._save(pooled)
        self._wake.set()

    def _trim(self) -> int:
        doomed = to_stop(
            self.views(),
            now=self._clock(),
            pool_size=self._settings.pool_size,
            idle_seconds=self._settings.idle_seconds,
        )
        for server_id in doomed:
            self._drop(self._servers[server_id])
        return len(doomed)

    def _drop(self, pooled: PooledServer) -> None:
        """Removes `pooled` from the pool at once; its server stops in a tracked task."""
        self._servers.pop(pooled.id, None)
        if self._mirror is not None:
            self._mirror.remove(pooled.id)
        set_gauges(self._servers.values())
        if pooled.server is not None:
            task = asyncio.create_task(pooled.server.stop(), name=f"aorta.triton.stop.{pooled.id}")
            self._stopping.add(task)
            task.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        self._stopping.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("triton.stop_failed", exc_info=task.exception())

    async def _settle(self) -> None:
        while self._stopping:
            await asyncio.wait(set(self._stopping))

    def _save(self, pooled: PooledServer) -> None:
        if self._mirror is not None and self._servers.get(pooled.id) is pooled:
            self._mirror.save(pooled.document())
        set_gauges(self._servers.values())

    async def _reap(self) -> None:
        while True:
            expiry = next_expiry(self.views(), idle_seconds=self._settings.idle_seconds)
            delay = None if expiry is None else max(expiry - self._clock(), 0.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            self._trim()
