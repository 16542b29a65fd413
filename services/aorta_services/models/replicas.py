"""Which models service replicas are alive: one heartbeat document each in `models_replicas`.

Every replica writes `{"id": <replica>, "expires_at": <Unix seconds>}` when it starts and again
every third of the TTL (`AORTA_MODELS_REPLICA_TTL`). A replica whose document has expired is
dead: another replica may then take over its acquire claims and reap its Triton server records
(`pool_cluster`). So is a replica of this host whose process is gone (its name carries host and
pid): a platform restarted at once after a crash does not wait out its predecessor's heartbeat,
nor takes its dead servers for live ones. Only a replica writes its own document, so no write
here ever races another.

Clocks: expiry is compared with each replica's own wall clock, so replicas' clocks must agree to
well within a third of the TTL, as for the scheduler's lease.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable

from aorta.errors import AortaError, Conflict, NotFound
from aorta.ids import new_id
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
        """The replicas whose heartbeat has not expired (this one included once it beat), but
        those known dead already: a replica of this host whose process is gone."""
        found = await self._replicas.find({"expires_at": {"$gt": self._clock()}})
        return {d["id"] for d in found if not gone_from_this_host(d["id"], self.replica)}

    async def leave(self) -> None:
        """Removes this replica's heartbeat (it stopped cleanly); errors are ignored, the
        heartbeat then expires by itself. Dead replicas' documents go too."""
        with contextlib.suppress(AortaError):
            await self._replicas.delete_many({"expires_at": {"$lte": self._clock()}})
            await self._replicas.delete(self.replica)


def replica_name() -> str:
    """A new replica's name, `<host>-<pid>-<random>` like the scheduler's lease holders, so a
    person can tell which process it is and a replica of the same host can tell it died."""
    return f"{socket.gethostname()}-{os.getpid()}-{new_id()[:8]}"


def gone_from_this_host(replica: str, me: str) -> bool:
    """Whether `replica` (named by `replica_name`), not `me`, ran on this host in a process
    that is gone: its pid runs nothing. Its heartbeat need not be waited out then. (A pid in
    use again, such as a restarted container's first process, is taken for alive: the
    heartbeat decides.)"""
    parts = replica.rsplit("-", 2)
    if replica == me or len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid = parts[0], int(parts[1])
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
