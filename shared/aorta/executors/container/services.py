"""The container executor's pipeline services: one long-lived container per service id.

The `ServiceRunner` of `ContainerExecutor.service_runner()`, on the same engine and settings
(`aorta.executors.container.service_spec` says what the container is):

- `ensure` adopts the service's container when it runs already (made by this process or an
  earlier one: it is found by its name, which only the instance and the service id make);
  otherwise it removes what an exited one left (its log is kept first), makes the image present
  (the executor's pull policy and credentials file), creates and starts the container, and
  returns once every published port accepts connections on the host's loopback, where
  operators on the service network reach it (a service without ports: once it has stayed up
  `settle` seconds). A service that exits first, or is not ready within its `ready_timeout`,
  is removed and fails with the last lines of its log. Calls for one service id are
  serialised, so two jobs asking at once share one start.
- `stop` stops the container (SIGTERM, SIGKILL after the grace), keeps its log and removes
  it; its data volume stays for the next start.
- The service's log is read from the engine while its container exists. Like an operator's,
  it is kept (its last `max_log_bytes`) at the launch's `log_key` in the blob store: followed
  and put again every `AORTA_CONTAINER_LOG_FLUSH_INTERVAL` while it grows once the service is
  ready, and put whole when it fails or stops, so it stays readable once the container is gone.
- `close` stops following the logs and leaves the containers running: a later runner adopts
  them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aorta.blobs import BlobStore
from aorta.errors import AortaError, Conflict, Invalid, NotFound
from aorta.executors.container.devices import EngineKind
from aorta.executors.container.engine import ContainerEngine, Json
from aorta.executors.container.libpod_spec import CreateApi, CreateRequest
from aorta.executors.container.outcome import exit_code, has_exited, started_at
from aorta.executors.container.pull import ensure_image
from aorta.executors.container.service_spec import (
    LOG_KEY_LABEL,
    LOOPBACK,
    SERVICE_COMPONENT,
    SERVICE_LABEL,
    container_name,
    create_body,
    data_volume,
    exposed_ports,
    instance_labels,
    podman_spec,
)
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.container.spec import COMPONENT_LABEL, INSTANCE_LABEL, image_reference
from aorta.executors.port import ServiceMount
from aorta.executors.run_log import split_lines
from aorta.executors.service_health import port_accepts, service_failed
from aorta.executors.service_ports import http_ports
from aorta.executors.services import ServiceEndpoint, ServiceFailed, ServiceLaunch
from aorta.logger import get_logger
from aorta.triton.container.spec import published_port

DEFAULT_SETTLE = 1.0
"""Seconds a service without ports must stay up to count as ready."""
DEFAULT_MAX_LOG_BYTES = 10 << 20
READY_POLL = 0.2
"""Seconds between two readiness checks of a starting service."""

_log = get_logger(__name__)


class ContainerServiceRunner:
    """Runs pipeline services as containers on `engine` (the `ServiceRunner` port; module
    docstring). The engine belongs to the executor: `close` leaves it open."""

    def __init__(
        self,
        engine: ContainerEngine,
        blobs: BlobStore,
        settings: ContainerSettings,
        *,
        settle: float = DEFAULT_SETTLE,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    ) -> None:
        self._engine = engine
        self._blobs = blobs
        self._settings = settings
        self._settle = settle
        self._max_log_bytes = max_log_bytes
        self._locks: dict[str, asyncio.Lock] = {}
        self._log_keys: dict[str, str] = {}
        self._followers: dict[str, asyncio.Task[None]] = {}

    async def ensure(self, launch: ServiceLaunch) -> ServiceEndpoint:
        """Starts the service unless its container runs already, and returns once it is
        ready; `ServiceFailed` (with its last log lines) when it exits or is not ready in
        time, or when it cannot be started at all."""
        lock = self._locks.setdefault(launch.service_id, asyncio.Lock())
        async with lock:
            self._log_keys[launch.service_id] = launch.log_key
            name = self._name(launch.service_id)
            log = _log.bind(service_id=launch.service_id, service=launch.name, container=name)
            existing = await self._engine.inspect(name)
            if existing is not None and not _running(existing):
                await self._discard(name, launch.log_key)
                existing = None
            ports = await self._ports(launch)
            if existing is None:
                await self._start(launch, name, ports)
                log.info("service container started")
            else:
                log.info("service container adopted")
            endpoint = await self._until_ready(launch, name, ports)
            self._follow(launch.service_id, name, launch.log_key)
            log.info("service ready", addresses=sorted(endpoint.environment.values()))
            return endpoint

    async def stop(self, service_id: str, *, grace: float) -> None:
        """Stops the service's container within `grace` seconds, keeps its log and removes
        the container; its data volume stays. Nothing for a service without a container."""
        name = self._name(service_id)
        await self._unfollow(service_id)
        inspected = await self._engine.inspect(name)
        if inspected is None:
            return
        with contextlib.suppress(NotFound):
            await self._engine.stop(name, grace)
        await self._discard(name, self._log_key(service_id, inspected))
        _log.info("service stopped", service_id=service_id, container=name)

    async def running(self) -> list[str]:
        """The ids of the services whose containers of this instance run."""
        found = await self._engine.list(instance_labels(self._settings.instance))
        ids = []
        for container in found:
            labels = container.get("Labels") or {}
            if str(container.get("State", "")).lower() == "running" and labels.get(SERVICE_LABEL):
                ids.append(str(labels[SERVICE_LABEL]))
        return sorted(ids)

    async def log_lines(self, service_id: str) -> AsyncIterator[str]:
        """The service's log so far: from the engine while its container exists, else as it
        was kept in the blob store. `NotFound` for a service this runner knows no log of."""
        name = self._name(service_id)
        inspected = await self._engine.inspect(name)
        if inspected is not None and _owned(inspected, self._settings.instance):
            async for line in split_lines(self._engine.logs(name, follow=False)):
                yield line
            return
        key = self._log_keys.get(service_id)
        if not key:
            raise NotFound(f"the container executor has no log of service {service_id}")
        async for line in split_lines(self._blobs.get(key)):
            yield line

    async def close(self) -> None:
        """Stops copying the services' logs; the containers keep running for the next runner
        to adopt (it copies their logs from then on)."""
        for service_id in list(self._followers):
            await self._unfollow(service_id)

    def _follow(self, service_id: str, name: str, log_key: str) -> None:
        """Copies the running service's log to the blob store from now on (once per service)."""
        follower = self._followers.get(service_id)
        if log_key and (follower is None or follower.done()):
            self._followers[service_id] = asyncio.create_task(
                self._copy_log(name, log_key), name=f"aorta-service-log-{service_id}"
            )

    async def _unfollow(self, service_id: str) -> None:
        follower = self._followers.pop(service_id, None)
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)

    async def _copy_log(self, name: str, log_key: str) -> None:
        """Follows the container's log from its start and puts it (its last `max_log_bytes`)
        at `log_key` every flush interval while it grew, until the container stops."""
        kept = _LogTail(self._max_log_bytes)

        async def pump() -> None:
            try:
                async for chunk in self._engine.logs(name, follow=True):
                    kept.append(chunk)
            except AortaError as error:
                _log.warning("service log no longer followed", container=name, error=str(error))

        pumping = asyncio.create_task(pump())
        try:
            while not pumping.done():
                await asyncio.wait({pumping}, timeout=self._settings.log_flush_interval)
                if kept.grown:
                    await self._put_log(log_key, kept.take(), name)
        finally:
            pumping.cancel()
            await asyncio.gather(pumping, return_exceptions=True)

    def _name(self, service_id: str) -> str:
        return container_name(self._settings.instance, service_id)

    def _log_key(self, service_id: str, inspected: Json) -> str:
        labels = (inspected.get("Config") or {}).get("Labels") or {}
        return str(labels.get(LOG_KEY_LABEL) or self._log_keys.get(service_id) or "")

    async def _ports(self, launch: ServiceLaunch) -> dict[str, int]:
        """The container port of each http connection (`aorta.executors.service_ports`)."""
        exposed: tuple[int, ...] = ()
        reference = image_reference(launch.image, launch.tag)
        try:
            if any(entry.port is None for entry in launch.http):
                await self._present(launch, reference)
                exposed = exposed_ports(await self._engine.image(reference))
            return http_ports(launch, exposed)
        except AortaError as error:
            raise ServiceFailed(
                f"pipeline service {launch.name} could not start", *error.messages
            ) from None

    async def _present(self, launch: ServiceLaunch, reference: str) -> None:
        await ensure_image(
            self._engine,
            reference,
            policy=self._settings.pull_policy,
            auth_file=self._settings.auth_file,
            secrets=(),
        )

    async def _start(self, launch: ServiceLaunch, name: str, ports: dict[str, int]) -> None:
        instance, grace = self._settings.instance, self._settings.stop_grace
        try:
            await self._present(launch, image_reference(launch.image, launch.tag))
            if self._engine.kind is EngineKind.PODMAN:
                body = podman_spec(launch, instance, ports, grace)
                request = CreateRequest(CreateApi.LIBPOD, body)
            else:
                request = CreateRequest(
                    CreateApi.DOCKER, create_body(launch, instance, ports, grace)
                )
            with contextlib.suppress(Conflict):  # another process created it: follow that one
                await self._engine.create(name, request)
            await self._engine.start(name)
        except (Invalid, NotFound, Conflict) as error:
            log = await self._log_of(name)
            await self._discard(name, launch.log_key)
            reason = "could not start: " + "; ".join(error.messages)
            raise service_failed(launch.name, reason, log) from None

    async def _until_ready(
        self, launch: ServiceLaunch, name: str, ports: dict[str, int]
    ) -> ServiceEndpoint:
        deadline = time.monotonic() + launch.ready_timeout
        while True:
            inspected = await self._engine.inspect(name)
            if inspected is None:
                raise ServiceFailed(
                    f"pipeline service {launch.name}: its container {name} was removed "
                    "outside Aorta while it started"
                )
            if has_exited(inspected) or not _running(inspected):
                await self._fail(
                    launch, name, f"exited at start with status {exit_code(inspected)}"
                )
            endpoint = await self._ready_endpoint(launch, inspected, ports)
            if endpoint is not None:
                return endpoint
            if time.monotonic() >= deadline:
                await self._fail(launch, name, f"was not ready within {launch.ready_timeout:g} s")
            await asyncio.sleep(READY_POLL)

    async def _ready_endpoint(
        self, launch: ServiceLaunch, inspected: Json, ports: dict[str, int]
    ) -> ServiceEndpoint | None:
        """The endpoint once every published port accepts connections (no ports: once the
        container has stayed up `settle` seconds); None when not yet."""
        addresses: dict[str, str] = {}
        for variable, port in ports.items():
            published = published_port(inspected, port)
            if published is None or not await port_accepts(LOOPBACK, published):
                return None
            addresses[variable] = f"{LOOPBACK}:{published}"
        if not ports:
            since = started_at(inspected)
            up = (datetime.now(UTC) - since).total_seconds() if since else 0.0
            if up < self._settle:
                return None
        volume = data_volume(self._settings.instance, launch.service_id)
        return ServiceEndpoint(
            service_id=launch.service_id,
            environment={**addresses, **{v.name: v.path for v in launch.volumes}},
            mounts=tuple(ServiceMount(volume, v.path) for v in launch.volumes),
        )

    async def _fail(self, launch: ServiceLaunch, name: str, reason: str) -> None:
        """Removes a service that did not become ready and raises its `ServiceFailed`."""
        log = await self._log_of(name)
        with contextlib.suppress(NotFound):
            await self._engine.stop(name, self._settings.stop_grace)
        await self._discard(name, launch.log_key)
        _log.warning("service failed", service_id=launch.service_id, reason=reason)
        raise service_failed(launch.name, reason, log)

    async def _discard(self, name: str, log_key: str) -> None:
        """Keeps the container's log, then removes the container."""
        await self._keep_log(name, log_key)
        await self._engine.remove(name)

    async def _keep_log(self, name: str, log_key: str) -> None:
        """Puts the container's log so far at `log_key` (best effort, logged when it fails)."""
        if log_key:
            await self._put_log(log_key, await self._log_of(name), name)

    async def _put_log(self, log_key: str, log: bytes, name: str) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield log

        try:
            await self._blobs.put(log_key, chunks())
        except (AortaError, OSError) as error:
            _log.warning("service log not kept", container=name, error=str(error))

    async def _log_of(self, name: str) -> bytes:
        """The container's log from the engine, its last `max_log_bytes` at most; empty when
        the engine has none."""
        kept = _LogTail(self._max_log_bytes)
        try:
            async for chunk in self._engine.logs(name, follow=False):
                kept.append(chunk)
        except AortaError:
            return b""
        return kept.take()


class _LogTail:
    """The last `limit` bytes of a log, and whether it grew since it was last taken."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.grown = False

    def append(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        self.grown = self.grown or bool(chunk)
        while self._size - len(self._chunks[0]) >= self._limit and len(self._chunks) > 1:
            self._size -= len(self._chunks.popleft())

    def take(self) -> bytes:
        self.grown = False
        return b"".join(self._chunks)[-self._limit :]


def _running(inspected: Json) -> bool:
    return bool((inspected.get("State") or {}).get("Running"))


def _owned(inspected: Json, instance: str) -> bool:
    labels = (inspected.get("Config") or {}).get("Labels") or {}
    return (
        labels.get(INSTANCE_LABEL) == instance and labels.get(COMPONENT_LABEL) == SERVICE_COMPONENT
    )
