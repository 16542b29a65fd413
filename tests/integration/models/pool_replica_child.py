"""A models replica's pool in a process of its own, for the tests that SIGKILL it mid-acquire.

`python -m tests.integration.models.pool_replica_child DB TTL NAME JOB...` opens the SQLite
store at DB, joins the shared pool as replica NAME (`auto`: named as the service names its
replicas, after host and pid) with heartbeat TTL seconds, and acquires a server for every JOB at
once on a backend whose servers never finish starting: it stays mid-acquire until it is killed.
"""

from __future__ import annotations

import asyncio
import sys

from aorta.store.sqlite import SqliteStateStore
from aorta_services.models.pool import TritonPool
from aorta_services.models.pool_cluster import PoolCluster
from aorta_services.models.replicas import replica_name
from aorta_services.models.server_mirror import ServerMirror
from aorta_services.models.settings import PoolSettings
from tests.unit.models.model_fakes import FakeBackend, FakeSource


async def main(db: str, ttl: float, name: str, jobs: list[str]) -> None:
    store = await SqliteStateStore.open(db, durable=False)
    mirror = ServerMirror(store, owner=replica_name() if name == "auto" else name)
    backend = FakeBackend(start_delay=3600.0)
    pool = TritonPool(backend, FakeSource(), PoolSettings(max_servers=64), mirror=mirror)
    cluster = PoolCluster(pool, store, mirror, ttl=ttl)
    await cluster.start()
    await asyncio.gather(*(cluster.acquire(job, {"seg": "r1"}) for job in jobs))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]))
