"""One Triton server as the pool keeps it (`aorta_services.models.pool`): the job holding it,
the models it holds or is loading, its devices and its lock; what placement sees of it, the
document `server_mirror` writes of it, and the pool's gauges over all of them."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from aorta.observability import metrics
from aorta.triton import TritonServer
from aorta_services.models.domain.placement import ServerView

STATES = ("starting", "held", "idle")
"""A server's states, as `PooledServer.state` names them and the gauges count them."""


@dataclass
class PooledServer:
    """One server of the pool. `models` counts loads in progress; `loaded` only finished ones."""

    id: str
    job: str | None
    models: dict[str, str]
    idle_since: float | None = None
    gpus: tuple[int, ...] = ()
    server: TritonServer | None = None
    loaded: dict[str, str] = field(default_factory=dict)
    loads: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def view(self) -> ServerView:
        """The server as placement sees it."""
        return ServerView(self.id, self.job, dict(self.models), self.idle_since, self.gpus)

    @property
    def state(self) -> str:
        """starting, held (by a job) or idle."""
        return "starting" if self.server is None else "idle" if self.job is None else "held"

    def document(self) -> dict[str, Any]:
        """The server's record in `triton_servers`."""
        return {
            "id": self.id,
            "state": self.state,
            "job_id": self.job,
            "grpc_uri": self.server.grpc_uri if self.server else None,
            "http_uri": self.server.http_uri if self.server else None,
            "models": [{"name": n, "revision": r} for n, r in sorted(self.loaded.items())],
            "gpus": list(self.gpus),
            "loads": self.loads,
        }


def set_gauges(servers: Collection[PooledServer]) -> None:
    """Sets the pool's gauges: servers by state, models loaded in all of them."""
    if not metrics.recording():
        return
    states = collections.Counter(pooled.state for pooled in servers)
    for state in STATES:
        metrics.TRITON_SERVERS.labels(state).set(states[state])
    metrics.MODELS_LOADED.set(sum(len(p.loaded) for p in servers))
