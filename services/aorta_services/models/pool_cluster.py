"""The Triton pool shared by every models service replica, through the state store.

Each replica keeps its own `TritonPool`: the servers it started are its to operate (load,
unload, stop), and only it hands them to jobs, deciding synchronously, so no server is ever
given to two running jobs. What the replicas share lives in the store:

- `models_replicas` (`replicas`): a heartbeat per replica, renewed every third of the TTL;
- `triton_servers` (`server_mirror`): every server with its owner, state, job and models;
- `triton_claims` (`acquire_claims`): the one acquire in progress per job, so a caller that
  asks again (a timeout, the request landing on another replica) never gets a second server
  started for the same request: the second replica waits for the claim and answers with the
  server the first one recorded for the job;
- `triton_releases`: a release asked of a replica that does not own the job's servers, read
  by the owner at its next sync (every third of the TTL) and applied to its pool. A release is
  final (a stopped job never acquires again), so a mark also releases what an acquire the
  caller gave up on got afterwards;
- `triton_stops`: one document, `platform`, whose version moves on at each Clara.Stop: the
  replica that answers stops its servers at once, the others at their next sync.

A replica that dies (SIGKILL) mid-acquire leaves a claim and server records whose owner's
heartbeat expires after the TTL: the next acquire for that job takes the claim over and gets a
server from a live replica, and every replica's sync reaps the dead one's records and claims.
A replica that was only stalled past its heartbeat finds its records gone at its next sync and
writes them again, so releases asked of other replicas still reach its servers (the job may
hold a second server meanwhile, started by the replica that took it for dead; both go at the
job's release).
Local tritonserver children die with their replica (PR_SET_PDEATHSIG), so for them reaping the
record is all there is to do; servers that outlive their replica (containers, Kubernetes
Deployments: `aorta.triton.LastingServers`) are removed by the replica that reaps their records,
and a starting replica removes those of its instance that no live replica recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping

from aorta.errors import AortaError, Conflict, NotFound
from aorta.logger import get_logger
from aorta.store import StateStore
from aorta.tasks import cancel_and_wait
from aorta.triton import LastingServers
from aorta_services.models.acquire_claims import AcquireClaims
from aorta_services.models.pool import Acquired, TritonPool
from aorta_services.models.replicas import ReplicaHeartbeat
from aorta_services.models.server_mirror import ServerMirror

RELEASES = "triton_releases"
STOPS = "triton_stops"
STOP_ID = "platform"
RELEASE_KEPT_SECONDS = 3600.0
"""How long a release mark stays for an owner to read; far beyond any sync period."""

log = get_logger(__name__)


class PoolCluster:
    """This replica's pool, coordinated with the others' (see the module docstring)."""

    def __init__(
        self,
        pool: TritonPool,
        store: StateStore,
        mirror: ServerMirror,
        *,
        ttl: float,
        lasting: LastingServers | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pool = pool
        self._lasting = lasting
        self.replica = mirror.owner
        self._mirror = mirror
        self._clock = clock
        self.heartbeat = ReplicaHeartbeat(store, self.replica, ttl, clock=clock)
        self._claims = AcquireClaims(store, self.replica, self.heartbeat.alive)
        self._releases = store.collection(RELEASES)
        self._stops = store.collection(STOPS)
        self._stops_seen = 0
        self._loops: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Says this replica is alive, reaps the dead ones' records, and starts the heartbeat
        and the sync."""
        await self.heartbeat.beat()
        # A Clara.Stop from before this replica started is not for it.
        self._stops_seen = await self._stop_version()
        await self.sync()
        self._loops = [
            asyncio.create_task(
                self._every_period(self.heartbeat.beat, "heartbeat"), name="aorta.models.heartbeat"
            ),
            asyncio.create_task(self._every_period(self.sync, "sync"), name="aorta.models.sync"),
        ]

    async def acquire(
        self, job: str, wanted: Mapping[str, str], gpus: tuple[int, ...] = ()
    ) -> Acquired:
        """A server holding `wanted` for `job` (see `TritonPool.acquire`), under the job's
        claim: a server another live replica already recorded for the job with every model
        of `wanted` is answered as it is."""
        async with self._claims.hold(job):
            alive = await self.heartbeat.alive()
            for document in await self._mirror.holding(job):
                loaded = {m["name"]: m["revision"] for m in document.get("models", [])}
                if (
                    document.get("owner") != self.replica
                    and document.get("owner") in alive
                    and all(loaded.get(name) == revision for name, revision in wanted.items())
                ):
                    log.info("triton.acquired_elsewhere", job_id=job, server_id=document["id"])
                    return Acquired(document["id"], document["grpc_uri"], document["http_uri"])
            acquired = await self.pool.acquire(job, wanted, gpus)
            await self._mirror.flush()
            return acquired

    async def release(self, job: str) -> int:
        """Returns `job`'s servers to their pools: this replica's at once, the others' at
        their owners' next sync. How many servers of this replica it held."""
        released = await self.pool.release(job)
        await self._mirror.flush()
        elsewhere = [d for d in await self._mirror.holding(job) if d["owner"] != self.replica]
        if elsewhere:
            with contextlib.suppress(Conflict):
                await self._releases.insert({"id": job, "at": self._clock()})
        return released

    async def platform_stop(self) -> int:
        """Clara.Stop: stops this replica's servers now and has every other replica stop
        theirs at its next sync; how many servers this replica stopped."""
        try:
            await self._stops.update(STOP_ID, {"at": self._clock()})
        except NotFound:
            with contextlib.suppress(Conflict):
                await self._stops.insert({"id": STOP_ID, "at": self._clock()})
        self._stops_seen = await self._stop_version()
        return await self.pool.stop_all()

    async def _stop_version(self) -> int:
        try:
            return int((await self._stops.get(STOP_ID))["version"])
        except NotFound:
            return 0

    async def jobs_using(self, name: str) -> list[str]:
        """Every replica's jobs holding a server that has model `name` loaded, and this
        replica's that are loading it."""
        jobs = {d["job_id"] for d in await self._mirror.using(name)}
        return sorted(jobs | set(self.pool.jobs_using(name)))

    async def sync(self) -> None:
        """Applies the releases other replicas recorded for this replica's jobs, and reaps
        the claims, server records and release marks of replicas that are gone; stops this
        replica's servers when another replica answered a Clara.Stop since the last sync."""
        stops = await self._stop_version()
        if stops > self._stops_seen:
            self._stops_seen = stops
            stopped = await self.pool.stop_all()
            log.info("triton.stopped_for_platform_stop", servers=stopped)
        held = self.pool.held_jobs()
        if held:
            for mark in await self._releases.find({"id": {"$in": sorted(held)}}):
                log.info("triton.released_elsewhere", job_id=mark["id"])
                await self.pool.release(mark["id"])
            await self._mirror.flush()
        alive = await self.heartbeat.alive() | {self.replica}
        reaped = await self._mirror.reap(alive)
        claims = await self._claims.reap(alive)
        if reaped or claims:
            log.warning("triton.dead_replicas_reaped", servers=reaped, claims=claims)
        if self._lasting is not None:
            await self._remove(self._lasting, reaped)
        await self._record_again()
        await self._releases.delete_many({"at": {"$lt": self._clock() - RELEASE_KEPT_SECONDS}})

    async def _record_again(self) -> None:
        """Records again this replica's servers whose documents another replica reaped: it
        stalled past its heartbeat and was taken for dead. Without them a release asked of
        another replica would never reach these servers, and a job would keep them."""
        recorded = await self._mirror.server_ids({self.replica})
        again = self.pool.record_again(recorded)
        if again:
            log.warning("triton.records_restored", servers=again)
            await self._mirror.flush()

    async def _remove(self, lasting: LastingServers, server_ids: list[str]) -> None:
        """Removes the servers a dead replica left (their records are reaped already)."""
        for server_id in server_ids:
            try:
                await lasting.remove_server(server_id)
            except AortaError as error:
                log.warning("triton.orphan_not_removed", server_id=server_id, error=str(error))

    async def close(self) -> None:
        """Stops the heartbeat and the sync and says this replica is gone (its pool is closed
        by its owner)."""
        await cancel_and_wait(*self._loops)
        self._loops = []
        await self.heartbeat.leave()

    async def _every_period(self, step: Callable[[], Awaitable[None]], what: str) -> None:
        """`step()` every third of the TTL. The heartbeat has a loop of its own, so a slow
        sync (servers stopping for a Clara.Stop) never lets it lapse."""
        period = self.heartbeat.ttl / 3
        while True:
            await asyncio.sleep(period)
            try:
                await step()
            except AortaError as error:
                log.warning("triton.step_failed", step=what, error=str(error))
            except Exception:
                # A bug must not end the loop: without it this replica would be taken for dead.
                log.exception("triton.step_crashed", step=what)
