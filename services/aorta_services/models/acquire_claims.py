"""One acquire at a time per job, across every models service replica: `triton_claims`.

A replica about to acquire Triton for job J inserts `{"id": J, "replica": <itself>}`; the store's
unique id lets exactly one replica in. Another replica asked for J meanwhile (a caller that
timed out and asked again, the request landing elsewhere) waits until the claim is gone, then
finds the server the first acquire recorded instead of starting a second one. A claim whose
replica's heartbeat has expired (`replicas`) is taken over: that replica died mid-acquire.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aorta.errors import AortaError, Conflict, NotFound, Unavailable
from aorta.logger import get_logger
from aorta.store import StateStore

CLAIMS = "triton_claims"

log = get_logger(__name__)


class AcquireClaims:
    """Per-job claims; `alive` says which replicas' heartbeats are current."""

    def __init__(
        self,
        store: StateStore,
        replica: str,
        alive: Callable[[], Awaitable[set[str]]],
        *,
        poll: float = 0.05,
        patience: float = 900.0,
    ) -> None:
        self._claims = store.collection(CLAIMS)
        self._replica = replica
        self._alive = alive
        self._poll = poll
        self._patience = patience

    @contextlib.asynccontextmanager
    async def hold(self, job: str) -> AsyncIterator[None]:
        """Holds job `job`'s claim for the body, waiting while a live replica holds it;
        `Unavailable` when it is still held after `patience` seconds. The claim is removed on
        the way out even when the body is cancelled."""
        version = await self._take(job)
        try:
            yield
        finally:
            await asyncio.shield(self._drop(job, version))

    async def _take(self, job: str) -> int:
        try:
            async with asyncio.timeout(self._patience):
                return await self._wait_for(job)
        except TimeoutError:
            raise Unavailable(
                f"a Triton server for job {job} is still being acquired by another models "
                "replica; try again"
            ) from None

    async def _wait_for(self, job: str) -> int:
        while True:
            try:
                stored = await self._claims.insert({"id": job, "replica": self._replica})
            except Conflict:
                pass
            else:
                return int(stored["version"])
            try:
                current = await self._claims.get(job)
            except NotFound:
                continue
            if current["replica"] not in await self._alive():
                log.warning("triton.claim_taken_over", job_id=job, replica=current["replica"])
                with contextlib.suppress(Conflict, NotFound):
                    await self._claims.delete(job, expected_version=current["version"])
                continue
            await asyncio.sleep(self._poll)

    async def _drop(self, job: str, version: int) -> None:
        try:
            await self._claims.delete(job, expected_version=version)
        except (Conflict, NotFound):
            return
        except AortaError as error:
            # Left behind, the claim is taken over once this replica's heartbeat expires.
            log.warning("triton.claim_not_removed", job_id=job, error=str(error))

    async def reap(self, alive: set[str]) -> int:
        """Removes the claims of replicas not in `alive`; how many."""
        return await self._claims.delete_many({"replica": {"$nin": sorted(alive)}})
