"""A `ServiceRunner` stand-in for the scheduler's tests, and an executor that offers it.

`FakeServiceRunner` runs nothing: a service is "running" from `ensure` to `stop`, ready at once
unless its name is in `crash` (then `ensure` raises `ServiceFailed` quoting the lines given).
It records every start and stop; `changed` is set on each, for tests to wait on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aorta.errors import NotFound
from aorta.executors.services import (
    ServiceEndpoint,
    ServiceFailed,
    ServiceLaunch,
    ServiceMount,
)
from tests.unit.scheduler.scheduler_fakes import FakeExecutor


@dataclass
class FakeServiceRunner:
    crash: dict[str, tuple[str, ...]] = field(default_factory=dict)
    started: list[ServiceLaunch] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    alive: dict[str, ServiceLaunch] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def ensure(self, launch: ServiceLaunch) -> ServiceEndpoint:
        if launch.service_id not in self.alive:
            self.started.append(launch)
            self.changed.set()
            if launch.name in self.crash:
                tail = "\n".join(self.crash[launch.name])
                raise ServiceFailed(
                    f"pipeline service {launch.name} exited (exit code 1)",
                    f"last lines of its log:\n{tail}",
                )
            self.alive[launch.service_id] = launch
        port = 8000 + len(self.started)
        environment = {http.name: f"10.0.0.1:{port}" for http in launch.http}
        environment |= {volume.name: volume.path for volume in launch.volumes}
        mounts = tuple(ServiceMount(f"data-{launch.service_id}", v.path) for v in launch.volumes)
        return ServiceEndpoint(launch.service_id, environment, mounts)

    async def stop(self, service_id: str, *, grace: float) -> None:
        if self.alive.pop(service_id, None) is not None:
            self.stopped.append(service_id)
            self.changed.set()

    async def running(self) -> list[str]:
        return list(self.alive)

    async def log_lines(self, service_id: str) -> AsyncIterator[str]:
        launch = self.alive.get(service_id)
        if launch is None:
            raise NotFound(f"no service {service_id}")
        for line in self.crash.get(launch.name, ()):
            yield line

    async def close(self) -> None:
        self.alive.clear()

    async def until(self, condition: object, within: float = 60.0) -> None:
        """Returns once `condition()` holds, waking on every start and stop."""
        assert callable(condition)
        async with asyncio.timeout(within):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


@dataclass
class ServiceExecutor(FakeExecutor):
    """A `FakeExecutor` that runs pipeline services through `services`."""

    services: FakeServiceRunner = field(default_factory=FakeServiceRunner)

    def service_runner(self) -> FakeServiceRunner:
        return self.services
