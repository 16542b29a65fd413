"""Pipeline services of the local executor: each service's `command` as a long-lived host process.

Like an operator run, a service runs as the operators' user, under a group leader that dies
with the platform, with an environment built from nothing (`PATH`, `HOME`, `TMPDIR`, `LANG`,
the service's `variables`). Its folders live under the work root:

    <work root>/services/<service id>/
      data/           the service's data folder, kept across the service's restarts:
                      `$(NVIDIA_CLARA_SERVICE_DATA_PATH)` in its command, and what operators see
                      at each `connections.volume` path
      home/ tmp/      its HOME and TMPDIR
      service.log     its stdout and stderr, pushed to the blob store at the launch's log key

Ports: an `http` connection with a `port` uses it (refused when something already listens
there); one without gets a free port of 127.0.0.1. Either way the service learns its address
from its own environment, where each connection's `name` holds `127.0.0.1:<port>` as it does
for operators (`NVIDIA_CLARA_TRTISURI=127.0.0.1:8000`), and `NVIDIA_CLARA_SERVICE_PORT` holds
the first connection's port. The service is ready once every port accepts a connection; a
service without ports once it stayed up for `SETTLE_SECONDS` (or its ready timeout, if shorter).
Services stop with the platform (`close`); the scheduler starts them again when needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aorta.blobs import BlobStore
from aorta.children.ports import HOST, free_port
from aorta.errors import AortaError, NotFound
from aorta.executors.local.operator_user import OperatorUser
from aorta.executors.local.process_group import OperatorProcess
from aorta.executors.run_log import RunLog, file_chunks, open_for_reading, split_lines
from aorta.executors.service_health import LOG_TAIL_LINES, port_accepts, service_failed
from aorta.executors.services import (
    SERVICE_DATA_MACRO,
    ServiceEndpoint,
    ServiceFailed,
    ServiceLaunch,
    ServiceMount,
)
from aorta.logger import get_logger

SERVICE_PORT = "NVIDIA_CLARA_SERVICE_PORT"
"""In a local service's environment: the port of its first `http` connection."""
SERVICE_DATA_PATH = "NVIDIA_CLARA_SERVICE_DATA_PATH"
SETTLE_SECONDS = 1.0
"""How long a service without ports must stay up to count as ready."""
_POLL = 0.1
_READ_SIZE = 64 << 10

_log = get_logger(__name__)


@dataclass(frozen=True)
class ServiceConfig:
    """What every local service shares with the executor's operator runs."""

    root: Path
    """`<work root>/services`."""
    python_bin_dir: Path
    search_path: str
    user: OperatorUser
    max_log_bytes: int = 10 << 20
    log_flush_interval: float = 1.0
    stop_grace: float = 15.0


class _Service:
    """One running service process, its log and its endpoint once ready."""

    def __init__(self, launch: ServiceLaunch, process: OperatorProcess, log: RunLog) -> None:
        self.launch = launch
        self.process = process
        self.log = log
        self.endpoint: ServiceEndpoint | None = None
        self.pump: asyncio.Task[None] | None = None
        self.flusher: asyncio.Task[None] | None = None
        self.exited: asyncio.Future[int] = asyncio.ensure_future(process.wait())

    @property
    def alive(self) -> bool:
        return not self.exited.done()


class LocalServiceRunner:
    """The `ServiceRunner` of the local executor (see the module docstring)."""

    def __init__(self, blobs: BlobStore, config: ServiceConfig) -> None:
        self._blobs = blobs
        self._config = config
        self._services: dict[str, _Service] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._log_keys: dict[str, str] = {}

    async def ensure(self, launch: ServiceLaunch) -> ServiceEndpoint:
        """Starts the service unless it runs, and returns once it is ready (see the module
        docstring); `ServiceFailed` when it has no command, exits, or misses its timeout."""
        lock = self._locks.setdefault(launch.service_id, asyncio.Lock())
        async with lock:
            known = self._services.get(launch.service_id)
            if known is not None and known.alive and known.endpoint is not None:
                return known.endpoint
            if known is not None:
                await self._end(known, grace=0.0)
            return await self._start(launch)

    async def stop(self, service_id: str, *, grace: float) -> None:
        """Stops the service's process group (SIGTERM, SIGKILL after `grace`); its data stays."""
        known = self._services.get(service_id)
        if known is not None:
            await self._end(known, grace=grace)

    async def running(self) -> list[str]:
        """The services whose process still runs (none after a platform restart)."""
        return [sid for sid, service in self._services.items() if service.alive]

    async def log_lines(self, service_id: str) -> AsyncIterator[str]:
        """The service's log so far: its file while this runner knows it, else the stored one.
        `NotFound` when neither exists."""
        known = self._services.get(service_id)
        source: AsyncIterator[bytes]
        if known is not None and known.log.created:
            source = file_chunks(await open_for_reading(known.log.path))
        elif service_id in self._log_keys:
            source = self._blobs.get(self._log_keys[service_id])
        else:
            raise NotFound(f"the local executor has run no service {service_id}")
        async for line in split_lines(source):
            yield line

    async def close(self) -> None:
        """Stops every service: host processes do not outlive the platform."""
        await asyncio.gather(
            *(self._end(s, grace=self._config.stop_grace) for s in list(self._services.values()))
        )

    async def _start(self, launch: ServiceLaunch) -> ServiceEndpoint:
        name = launch.name
        if not launch.command:
            raise ServiceFailed(
                f"pipeline service {name} has no container.command: the local executor runs a "
                "service's command as a host process (use the container executor to run its "
                "image)"
            )
        folder = self._config.root / launch.service_id
        data, home, tmp = folder / "data", folder / "home", folder / "tmp"
        try:
            await asyncio.to_thread(self._make_folders, folder, data, home, tmp)
        except OSError as error:
            raise ServiceFailed(f"pipeline service {name} has no folder: {error}") from error
        ports = [self._port(name, http.port) for http in launch.http]
        addresses = {
            http.name: f"{HOST}:{port}" for http, port in zip(launch.http, ports, strict=True)
        }
        volumes = {volume.name: str(data) for volume in launch.volumes}
        env = {
            "PATH": f"{self._config.python_bin_dir}{os.pathsep}{self._config.search_path}",
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            **launch.variables,
            **addresses,
            **volumes,
            SERVICE_DATA_PATH: str(data),
        }
        if ports:
            env[SERVICE_PORT] = str(ports[0])
        if launch.resources.gpu_devices:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, launch.resources.gpu_devices))
        command = tuple(arg.replace(SERVICE_DATA_MACRO, str(data)) for arg in launch.command)
        self._log_keys[launch.service_id] = launch.log_key
        log = RunLog(folder / "service.log", max_bytes=self._config.max_log_bytes)
        await log.create()
        status = folder / "leader.status"
        await asyncio.to_thread(self._fresh_status, status)
        process = await OperatorProcess.spawn(
            command, cwd=home, env=env, status_file=status, user=self._config.user
        )
        service = _Service(launch, process, log)
        self._services[launch.service_id] = service
        service.pump = asyncio.create_task(self._pump(service), name=f"aorta-service-log-{name}")
        service.flusher = asyncio.create_task(
            self._flush(service), name=f"aorta-service-flush-{name}"
        )
        _log.info("service started", service_id=launch.service_id, service=name, pid=process.pid)
        await self._until_ready(service, ports)
        mounts = tuple(ServiceMount(str(data), volume.path) for volume in launch.volumes)
        service.endpoint = ServiceEndpoint(launch.service_id, addresses | volumes, mounts)
        return service.endpoint

    def _port(self, name: str, declared: int | None) -> int:
        if declared is None:
            return free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, declared))
            except OSError as error:
                raise ServiceFailed(
                    f"pipeline service {name} cannot listen on its declared port {declared}: "
                    f"{error.strerror}; leave the port out of its http connection to get a free "
                    "one"
                ) from error
        return declared

    async def _until_ready(self, service: _Service, ports: list[int]) -> None:
        launch = service.launch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + launch.ready_timeout
        settle = loop.time() + min(SETTLE_SECONDS, launch.ready_timeout)
        while True:
            if not service.alive:
                status = await service.process.exit_status()
                failure = await self._failure(service, f"exited ({status.describe()})")
                await self._end(service, grace=0.0)
                raise failure
            if ports and all([await port_accepts(HOST, port) for port in ports]):
                return
            if not ports and loop.time() >= settle:
                return
            if loop.time() >= deadline:
                await self._end(service, grace=self._config.stop_grace)
                raise await self._failure(
                    service, f"was not ready within {launch.ready_timeout:g} s"
                )
            await asyncio.sleep(_POLL)

    async def _failure(self, service: _Service, what: str) -> ServiceFailed:
        if service.pump is not None and not service.pump.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(service.pump), 2.0)
        tail = "\n".join(await service.log.tail(LOG_TAIL_LINES))
        await self._push(service)
        return service_failed(service.launch.name, what, tail.encode())

    async def _end(self, service: _Service, *, grace: float) -> None:
        if service.alive:
            await service.process.stop(grace)
        service.process.signal_group(signal.SIGKILL)
        for task in (service.flusher, service.pump):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        service.process.close()
        await self._push(service)
        if self._services.get(service.launch.service_id) is service:
            del self._services[service.launch.service_id]
            _log.info("service stopped", service_id=service.launch.service_id)

    async def _pump(self, service: _Service) -> None:
        output = service.process.output
        while chunk := await output.read(_READ_SIZE):
            with contextlib.suppress(OSError):
                await service.log.append(chunk)

    async def _flush(self, service: _Service) -> None:
        while True:
            await asyncio.sleep(self._config.log_flush_interval)
            await self._push(service)

    async def _push(self, service: _Service) -> None:
        try:
            await service.log.push(self._blobs, service.launch.log_key)
        except (AortaError, OSError) as error:
            _log.warning("service log not stored", service=service.launch.name, error=str(error))

    def _make_folders(self, folder: Path, *owned: Path) -> None:
        user = self._config.user
        folder.mkdir(parents=True, exist_ok=True)
        # Set, not asked of mkdir: the platform's umask may be 077, and the operators' user
        # must pass through (never list) the platform's folders to reach its own.
        for platforms in (folder.parent, folder):
            os.chmod(platforms, 0o711)
        for path in owned:
            path.mkdir(exist_ok=True)
            os.chmod(path, 0o700)
            if user.switch:
                os.chown(path, user.uid, user.gid, follow_symlinks=False)

    def _fresh_status(self, status: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            status.unlink()
        descriptor = os.open(status, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(descriptor)
        user = self._config.user
        if user.switch:
            os.chown(status, user.uid, user.gid, follow_symlinks=False)
