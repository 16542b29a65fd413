"""What a running service receives from its composition root, and what it hands back.

A service is started with the adapters it needs (the bus, the state store, the blob store and
its settings) and returns a `Running` handle; the root stops services in reverse order. The same
service code runs alone (`aorta serve NAME`) or beside all the others (`aorta up`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aorta.blobs import BlobStore
from aorta.bus import Bus
from aorta.settings import Settings
from aorta.store import StateStore


@dataclass(frozen=True)
class ServiceContext:
    """The adapters one process shares between the services it runs."""

    settings: Settings
    bus: Bus
    store: StateStore
    blobs: BlobStore


class Running(Protocol):
    """A started service. `stop` drains in-flight work within `grace` seconds, then returns."""

    name: str

    async def stop(self, grace: float) -> None: ...


ServiceStarter = Callable[[ServiceContext], Awaitable[Running]]
