"""The pipeline-service port: long-lived helpers (Clara's `services:`) beside operator runs.

A pipeline service is a container (or, on the local executor, a host process) that operators
declare and reach through connection variables; Clara shares one running service among every
operator and job that declares the same image, tag and command, so a service's identity is
that triple (`service_key`). The scheduler decides when a service must run and when it may
stop; a `ServiceRunner`, one per executor, makes it so: it starts the service unless one with
the same id already runs (after a scheduler restart it adopts rather than duplicates), waits
until it is ready, and says how operators reach it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from aorta.errors import AortaError
from aorta.executors.port import Resources, ServiceMount

SERVICE_DATA_MACRO = "$(NVIDIA_CLARA_SERVICE_DATA_PATH)"
"""In a service's command, replaced by the path of the service's data folder as the service
sees it; the folder outlives the service's restarts."""


def service_key(image: str, tag: str, command: tuple[str, ...]) -> str:
    """The id of the one running service for an image, tag and command: stable, short, and
    usable in container, pod and file names (`svc-` and 16 hex digits)."""
    identity = json.dumps([image, tag, list(command)], separators=(",", ":"))
    return "svc-" + hashlib.sha256(identity.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HttpPort:
    """A `connections.http` entry: operators get `name` = `host:port` of the service's
    `port` (None: the service's only declared port is chosen by the runner)."""

    name: str
    port: int | None = None


@dataclass(frozen=True)
class SharedVolume:
    """A `connections.volume` entry: operators see the service's data folder at `path`, and
    get `name` = `path` in their environment."""

    name: str
    path: str


@dataclass(frozen=True)
class ServiceLaunch:
    """Everything a runner needs to start (or adopt) one service."""

    service_id: str
    """`service_key(image, tag, command)`."""
    name: str
    """The name the first pipeline gave it, for people (logs, `aorta list services`)."""
    image: str
    tag: str
    command: tuple[str, ...]
    resources: Resources = field(default_factory=lambda: Resources(cpu=0, memory_mb=0))
    variables: Mapping[str, str] = field(default_factory=dict)
    http: tuple[HttpPort, ...] = ()
    volumes: tuple[SharedVolume, ...] = ()
    ready_timeout: float = 300.0
    """Seconds the service has to accept connections on its ports (or, without ports, to stay
    up) before it counts as failed."""
    log_key: str = ""
    """Where the runner keeps the service's log, like an operator run's."""


@dataclass(frozen=True)
class ServiceEndpoint:
    """How operators reach a ready service."""

    service_id: str
    environment: Mapping[str, str]
    """One variable per `connections.http` entry (`host:port` reachable from operator runs
    of this executor) and per `connections.volume` entry (its path)."""
    mounts: tuple[ServiceMount, ...] = ()


__all__ = [
    "SERVICE_DATA_MACRO",
    "HttpPort",
    "ServiceEndpoint",
    "ServiceFailed",
    "ServiceHost",
    "ServiceLaunch",
    "ServiceMount",
    "ServiceRunner",
    "SharedVolume",
    "service_key",
]


class ServiceFailed(AortaError):
    """The service exited or did not become ready; the message ends with its last log lines."""


class ServiceRunner(Protocol):
    """Starts, finds and stops pipeline services for one executor. Safe to call again after
    a crash of the caller: every method is keyed by the service id."""

    async def ensure(self, launch: ServiceLaunch) -> ServiceEndpoint:
        """Starts the service unless it already runs, and returns once it is ready;
        `ServiceFailed` when it exits or misses `ready_timeout`."""
        ...

    async def stop(self, service_id: str, *, grace: float) -> None:
        """Stops the service (its data folder stays); nothing for an unknown one."""
        ...

    async def running(self) -> list[str]:
        """The ids of services this runner's backend still runs (for adoption)."""
        ...

    def log_lines(self, service_id: str) -> AsyncIterator[str]:
        """The service's log so far; `NotFound` on the first iteration when none is known."""
        ...

    async def close(self) -> None:
        """Releases the runner's own resources; services keep running where the backend
        allows (host processes stop with the platform)."""
        ...


@runtime_checkable
class ServiceHost(Protocol):
    """An executor that can run pipeline services beside its operator runs: the scheduler
    asks it once for its runner. An executor without this method runs no services, and a job
    whose operators declare one faults with a message saying so."""

    def service_runner(self) -> ServiceRunner:
        """The runner of this executor's services (the same one on every call)."""
        ...
