"""A bus whose event stream fails as tests need: away (`Unavailable`, an outage) or killing
its caller between a service's store write and its publish (`Killed`, a crash), and an event
collector that waits for the events it expects, deduplicated by id as integrators do."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Literal

from aorta.bus import CloudEvent
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.errors import Unavailable

Mode = Literal["up", "down", "kill"]


class Killed(Exception):
    """Raised where the publish would have happened: the service ends the call as a process
    killed there would, its change stored and its event not published."""


class OutageBus(MemoryBus):
    """A `MemoryBus` whose `publish_event` follows `mode`: `up` publishes, `down` raises
    `Unavailable`, `kill` raises `Killed`."""

    def __init__(self, network: MemoryNetwork, *, default_timeout: float) -> None:
        super().__init__(network, default_timeout=default_timeout)
        self.mode: Mode = "up"

    async def publish_event(self, event: CloudEvent) -> None:
        if self.mode == "down":
            raise Unavailable("the event stream is away")
        if self.mode == "kill":
            raise Killed(f"killed before publishing {event.type}")
        await super().publish_event(event)


class Collected:
    """Every event of a subscription, and the distinct ones by id."""

    def __init__(self) -> None:
        self.received: list[CloudEvent] = []
        self._arrived = asyncio.Event()

    async def __call__(self, event: CloudEvent) -> None:
        self.received.append(event)
        self._arrived.set()

    @property
    def unique(self) -> dict[str, CloudEvent]:
        """The events by id: what a consumer that deduplicates keeps."""
        return {event.id: event for event in self.received}

    async def types(self, expected: Iterable[str]) -> list[str]:
        """Waits (up to 30 s) until the distinct events' types are `expected` (any order),
        and returns them in arrival order."""
        wanted = sorted(expected)
        async with asyncio.timeout(30.0):
            while sorted(e.event for e in self.unique.values()) != wanted:
                self._arrived.clear()
                await self._arrived.wait()
        return [event.event for event in self.unique.values()]
