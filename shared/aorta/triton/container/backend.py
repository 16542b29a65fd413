"""The container Triton backend: each pooled server is a container of a Triton image.

For a platform whose operators run in containers, or a node without a Triton tree: the servers
run `AORTA_TRITON_IMAGE` (such as `nvcr.io/nvidia/tritonserver:24.08-py3`) on the container
engine the container executor uses (Docker Engine or Podman's Docker-compatible service, through
`aorta.executors.container.engine`). Like the local backend it only starts servers and keeps the
model repository; the pool decides which server a job gets and which GPUs a server has.

- The model repository is a folder of this machine (`aorta.triton.local.repository`), mounted
  read-only into every server at `/models`; models are loaded by name as on a local server.
- `start_server` makes the image present (the container executor's pull policy and credentials
  file), creates the server's container (`aorta.triton.container.spec`: the same flags as a
  local server, a device request for exactly its GPUs, HTTP and gRPC published on 127.0.0.1
  only, labelled with the instance and server; on Podman through its own API, the only one
  that takes GPUs), starts it, and returns once Triton's
  `/v2/health/ready` answers 200 on the published HTTP port. A server that exits, or is not
  ready within the start timeout, is removed and the start fails with the tail of its log.
- `alive()` turns False once the engine reports the container stopped (a task waits on it).
- `stop` stops the container (SIGTERM, SIGKILL after the grace) and removes it.
- Containers outlive a models service killed with SIGKILL, where local children die with it.
  The pool cannot take them back (it lives in memory and the repository folder they mount went
  with the dead process), so opening the backend finds the containers an earlier life of this
  instance left, by their labels, and removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence
from pathlib import Path

from aorta.children.readiness import HttpReady
from aorta.errors import AortaError, NotFound, Unavailable
from aorta.executors.container.devices import EngineKind
from aorta.executors.container.engine import ContainerEngine
from aorta.executors.container.libpod_spec import CreateApi, CreateRequest
from aorta.executors.container.pull import ensure_image
from aorta.executors.container.settings import PullPolicy
from aorta.logger import get_logger
from aorta.tasks import GuardedTasks
from aorta.triton.archive import DEFAULT_LIMITS, ArchiveLimits
from aorta.triton.container.spec import (
    GRPC_PORT,
    HTTP_PORT,
    SERVER_LABEL,
    ServerContainer,
    container_name,
    create_body,
    instance_labels,
    podman_spec,
    published_port,
)
from aorta.triton.control import ControlledServer, TritonControl
from aorta.triton.local.repository import ModelFolder
from aorta.triton.port import ArchiveWriter
from aorta.triton.server_flags import MemoryPools

HOST = "127.0.0.1"
READY_POLL = 0.2
"""Seconds between readiness checks of a starting server."""
LOG_TAIL_LINES = 20
RETRY_WAIT = 1.0
"""Seconds before waiting on a container again after the engine did not answer."""

_log = get_logger(__name__)


class ContainerTritonServer(ControlledServer):
    """A `TritonServer` that is one container, reached on its ports published on 127.0.0.1."""

    def __init__(
        self,
        id: str,
        name: str,
        gpus: tuple[int, ...],
        control: TritonControl,
        backend: ContainerTritonBackend,
    ) -> None:
        super().__init__(id, control, backend.lock)
        self.name = name
        """The container's name."""
        self.gpus = gpus
        self._backend = backend
        self.exited = asyncio.Event()
        """Set once the engine reports the container stopped."""

    def alive(self) -> bool:
        return not self.exited.is_set()

    async def _halt(self) -> None:
        await self._backend.remove(self.name)


class ContainerTritonBackend:
    """A `TritonBackend` whose servers are containers of `image` on `engine`.

    Build it with `await ContainerTritonBackend.open(...)`, which sweeps leftovers (module
    docstring). `instance` labels and names the containers (`AORTA_CONTAINER_INSTANCE`), so two
    platforms sharing one engine never touch each other's servers. `close` closes `engine` too
    when `owns_engine`.
    """

    def __init__(
        self,
        engine: ContainerEngine,
        models: ModelFolder,
        *,
        image: str,
        instance: str,
        pools: MemoryPools,
        pull_policy: PullPolicy,
        auth_file: Path | None,
        start_timeout: float,
        stop_grace: float,
        load_timeout: float,
        owns_engine: bool = False,
    ) -> None:
        self.engine = engine
        self._owns_engine = owns_engine
        self.models = models
        self.image = image
        self.instance = instance
        self._pools = pools
        self._pull_policy = pull_policy
        self._auth_file = auth_file
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._load_timeout = load_timeout
        self.lock = models.lock
        """The lock that orders loads of a model (readers) and swaps of its folder (writer)."""
        self._watches = GuardedTasks("aorta.triton.container.watch")
        self._closed = False

    @classmethod
    async def open(
        cls,
        root: Path,
        engine: ContainerEngine,
        *,
        image: str,
        instance: str,
        pools: MemoryPools | None = None,
        limits: ArchiveLimits = DEFAULT_LIMITS,
        pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT,
        auth_file: Path | None = None,
        start_timeout: float = 60.0,
        stop_grace: float = 15.0,
        load_timeout: float = 300.0,
        owns_engine: bool = False,
        keep: Collection[str] = (),
    ) -> ContainerTritonBackend:
        """Claims a model repository folder under `root` and removes the Triton containers an
        earlier life of `instance` left on `engine`, but those of the servers `keep` names
        (other live models replicas' servers)."""
        models = await ModelFolder.open(root, limits=limits)
        backend = cls(
            engine,
            models,
            image=image,
            instance=instance,
            pools=pools or MemoryPools(),
            pull_policy=pull_policy,
            auth_file=auth_file,
            start_timeout=start_timeout,
            stop_grace=stop_grace,
            load_timeout=load_timeout,
            owns_engine=owns_engine,
        )
        try:
            await backend.sweep(keep)
        except BaseException:
            await models.close()
            raise
        return backend

    async def sweep(self, keep: Collection[str] = ()) -> int:
        """Removes every Triton container of this instance but those of the servers `keep`
        names; how many it removed."""
        found = await self.engine.list(instance_labels(self.instance))
        leftovers = [c for c in found if c.get("Labels", {}).get(SERVER_LABEL) not in keep]
        for container in leftovers:
            await self.engine.remove(str(container["Id"]))
        if leftovers:
            _log.info("triton.leftover_containers_removed", count=len(leftovers))
        return len(leftovers)

    async def start_server(self, server_id: str, gpus: Sequence[int] = ()) -> ContainerTritonServer:
        if self._closed:
            raise Unavailable("the Triton backend is closed")
        try:
            await ensure_image(
                self.engine,
                self.image,
                policy=self._pull_policy,
                auth_file=self._auth_file,
                secrets=(),
            )
        except AortaError as error:
            raise Unavailable(*error.messages) from None
        server = ServerContainer(
            image=self.image,
            repository=str(self.models.repository),
            instance=self.instance,
            server_id=server_id,
            gpus=tuple(gpus),
            pools=self._pools,
        )
        name = container_name(self.instance, server_id)
        try:
            started = await self._start(name, server)
        except BaseException as error:
            tail = await self._log_tail(name) if isinstance(error, AortaError) else ""
            await self._discard(name)
            if not isinstance(error, AortaError):
                raise
            messages = [*error.messages]
            if tail:
                messages.append(f"last lines of the log of container {name}:\n{tail}")
            raise Unavailable(*messages) from None
        _log.info(
            "triton.started",
            container=name,
            grpc=started.grpc_uri,
            http=started.http_uri,
            gpus=list(started.gpus),
        )
        return started

    async def _start(self, name: str, server: ServerContainer) -> ContainerTritonServer:
        if self.engine.kind is EngineKind.PODMAN:
            request = CreateRequest(CreateApi.LIBPOD, podman_spec(server))
        else:
            request = CreateRequest(CreateApi.DOCKER, create_body(server))
        await self.engine.create(name, request)
        await self.engine.start(name)
        inspected = await self.engine.inspect(name) or {}
        http, grpc = published_port(inspected, HTTP_PORT), published_port(inspected, GRPC_PORT)
        if http is None or grpc is None:
            raise Unavailable(f"the engine published no ports for container {name}")
        control = TritonControl(
            server.server_id, f"{HOST}:{grpc}", f"{HOST}:{http}", self._load_timeout
        )
        started = ContainerTritonServer(server.server_id, name, server.gpus, control, self)
        self._watches.spawn(self._watch(started), name=f"aorta.triton.container.watch.{name}")
        await self._until_ready(started, http)
        return started

    async def _until_ready(self, server: ContainerTritonServer, http: int) -> None:
        ready = HttpReady((HOST, http), "/v2/health/ready")
        try:
            async with asyncio.timeout(self._start_timeout):
                while not await ready.ready(0):
                    if server.exited.is_set():
                        raise Unavailable(f"the Triton container {server.name} exited at start")
                    await asyncio.sleep(READY_POLL)
        except TimeoutError:
            raise Unavailable(
                f"the Triton container {server.name} was not ready within "
                f"{self._start_timeout:g} s (AORTA_TRITON_START_TIMEOUT)"
            ) from None

    async def _watch(self, server: ContainerTritonServer) -> None:
        """Sets `server.exited` once its container stopped or is gone."""
        while True:
            try:
                await self.engine.wait(server.name)
                break
            except NotFound:
                break
            except AortaError as error:
                # A long wait may be cut by the connection; ask again unless it has stopped.
                _log.debug("triton.container_wait_interrupted", error=str(error))
                with contextlib.suppress(AortaError):
                    inspected = await self.engine.inspect(server.name)
                    if inspected is None or not inspected.get("State", {}).get("Running"):
                        break
                await asyncio.sleep(RETRY_WAIT)
        server.exited.set()

    async def _log_tail(self, name: str) -> str:
        try:
            chunks = [chunk async for chunk in self.engine.logs(name, follow=False)]
        except AortaError:
            return ""
        lines = b"".join(chunks).decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])

    async def _discard(self, name: str) -> None:
        """Removes the container of a start that failed; a failure is only logged (the next
        backend on this instance sweeps what is left), so the start's own error is raised."""
        try:
            await self.engine.remove(name)
        except AortaError as error:
            _log.warning("triton.container_not_removed", container=name, error=str(error))

    async def remove_server(self, server_id: str) -> None:
        """Removes server `server_id`'s container, whichever models replica started it."""
        await self.remove(container_name(self.instance, server_id))

    async def remove(self, name: str) -> None:
        """Stops container `name` within the grace, then removes it. Idempotent."""
        with contextlib.suppress(NotFound):
            await self.engine.stop(name, self._stop_grace)
        await self.engine.remove(name)
        _log.info("triton.stopped", container=name)

    async def install_model(self, name: str, revision: str, write_archive: ArchiveWriter) -> None:
        await self.models.install_model(name, revision, write_archive)

    async def remove_model(self, name: str) -> None:
        await self.models.remove_model(name)

    async def close(self) -> None:
        self._closed = True
        await self._watches.cancel()
        await self.models.close()
        if self._owns_engine:
            await self.engine.close()
