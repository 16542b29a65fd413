"""Which models service replicas are alive: one heartbeat document each in `models_replicas`.

Every replica writes `{"id": <replica>, "expires_at": <Unix seconds>}` when it starts and again
every third of the TTL (`AORTA_MODELS_REPLICA_TTL`). A replica whose document has expired is
dead: another replica may then take over its acquire claims and reap its Triton server records
(`pool_cluster`). Only a replica writes its own document, so no write here ever races another.

Clocks: expiry is compared with each replica's own wall clock, so replicas' clocks must agree to
well within a third of the TTL, as for the scheduler's lease.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from aorta.errors import AortaError, Conflict, NotFound
from aorta.store import StateStore

REPLICAS = "models_replicas"


class ReplicaHeartbeat:
    """This replica's heartbeat, and the liveness of the others."""

    def __init__(
        self,
        store: StateStore,
        replica: str,
        ttl: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._replicas = store.collection(REPLICAS)
        self.replica = replica
        self.ttl = ttl
        self._clock = clock

    async def beat(self) -> None:
        """Says this replica is alive for another TTL. Store errors propagate."""
        expires_at = self._clock() + self.ttl
        try:
            await self._replicas.update(self.replica, {"expires_at": expires_at})
        except NotFound:
            with contextlib.suppress(Conflict):
                await self._replicas.insert({"id": self.replica, "expires_at": expires_at})

    async def alive(self) -> set[str]:
        """The replicas whose heartbeat has not expired (this one included once it beat)."""
        found = await self._replicas.find({"expires_at": {"$gt": self._clock()}})
        return {document["id"] for document in found}

    async def leave(self) -> None:
        """Removes this replica's heartbeat (it stopped cleanly); errors are ignored, the
        heartbeat then expires by itself. Dead replicas' documents go too."""
        with contextlib.suppress(AortaError):
            await self._replicas.delete_many({"expires_at": {"$lte": self._clock()}})
            await self._replicas.delete(self.replica)
