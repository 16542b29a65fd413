"""Leader election through one lease document in the `leases` collection.

Every scheduler replica serves the Jobs verbs, but only the holder of the lease `scheduler`
admits jobs and runs operators. The lease is `{"id": "scheduler", "holder": <replica>,
"expires_at": <Unix seconds>}`; every change is an optimistic-concurrency write, so of two
replicas racing for it exactly one wins:

- a replica takes the lease when there is none, when it has expired, or when it is its own;
- the holder renews it every third of the TTL, writing with the version it last wrote: if that
  fails with a conflict, someone else holds it now and the holder steps down at once;
- a holder that cannot reach the store steps down by itself one third of the TTL before its
  lease would expire, so it has stopped running operators before anyone else may start;
- a holder that stops cleanly expires its lease, so a follower takes over at its next try
  instead of after a whole TTL.

Clocks: expiry is compared with each replica's own wall clock, so replicas' clocks must agree
to well within a third of the TTL (NTP does far better).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aorta.errors import AortaError, Conflict, NotFound
from aorta.logger import get_logger
from aorta.store import Collection, StateStore

log = get_logger(__name__)

LEASES = "leases"
LEASE_ID = "scheduler"


class Lease:
    """This replica's view of the scheduler lease."""

    def __init__(
        self,
        store: StateStore,
        holder: str,
        ttl: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._leases: Collection = store.collection(LEASES)
        self.holder = holder
        self.ttl = ttl
        self._clock = clock
        self._version: int | None = None
        self.expires_at = 0.0

    @property
    def held(self) -> bool:
        """Whether this replica wrote the lease last and believes it unexpired."""
        return self._version is not None and self._clock() < self.expires_at

    async def acquire(self) -> bool:
        """Takes the lease if it is free, expired or already ours; True when it is ours now.

        Store errors (`Unavailable`) propagate: the caller tries again later.
        """
        now = self._clock()
        expires_at = now + self.ttl
        try:
            current = await self._leases.get(LEASE_ID)
        except NotFound:
            try:
                stored = await self._leases.insert(
                    {"id": LEASE_ID, "holder": self.holder, "expires_at": expires_at}
                )
            except Conflict:
                return False
            return self._won(stored["version"], expires_at)
        if current.get("holder") != self.holder and float(current.get("expires_at", 0)) > now:
            return False
        try:
            stored = await self._leases.update(
                LEASE_ID,
                {"holder": self.holder, "expires_at": expires_at},
                expected_version=current["version"],
            )
        except (Conflict, NotFound):
            return False
        return self._won(stored["version"], expires_at)

    async def renew(self) -> bool:
        """Extends a held lease; False (and the lease is no longer held) when another replica
        wrote it since. `Unavailable` propagates with the lease unchanged."""
        if self._version is None:
            return False
        expires_at = self._clock() + self.ttl
        try:
            stored = await self._leases.update(
                LEASE_ID, {"expires_at": expires_at}, expected_version=self._version
            )
        except (Conflict, NotFound):
            self._lost()
            return False
        return self._won(stored["version"], expires_at)

    async def release(self) -> None:
        """Expires a held lease now, so a follower need not wait; errors are ignored (the lease
        then expires by itself)."""
        if self._version is None:
            return
        version, self._version = self._version, None
        with contextlib.suppress(AortaError):
            await self._leases.update(LEASE_ID, {"expires_at": 0.0}, expected_version=version)

    def _won(self, version: int, expires_at: float) -> bool:
        self._version = version
        self.expires_at = expires_at
        return True

    def _lost(self) -> None:
        self._version = None
        self.expires_at = 0.0


class Led(Protocol):
    """What runs while this replica leads (the engine)."""

    async def start(self) -> None: ...

    async def stop(self, *, kill_runs: bool) -> None: ...


class Leadership:
    """Keeps trying for the lease; starts `make()` on winning it and stops it on losing it.

    `run` is the long-lived loop (one named, guarded task per replica). On stepping down after
    losing the lease, the led object is told to kill its runs: another replica may start them.
    """

    def __init__(
        self,
        lease: Lease,
        make: Callable[[], Led],
        *,
        on_change: Callable[[Led | None], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lease = lease
        self._make = make
        self._on_change = on_change
        self._clock = clock
        self.led: Led | None = None
        self._tick = asyncio.Event()

    def poke(self) -> None:
        """Try for the lease now rather than at the next period (e.g. the leader said it left)."""
        self._tick.set()

    async def run(self) -> None:
        """Until cancelled: acquire or renew every third of the TTL. Never raises but
        `CancelledError`; errors are logged and the step is tried again at the next period."""
        period = self._lease.ttl / 3
        while True:
            try:
                await self._step()
            except AortaError as error:
                log.warning("scheduler.lease_error", error=str(error))
            except Exception:
                # A bug must not end the loop: without it this replica would never lead.
                log.exception("scheduler.lease_step_failed")
            if self.led is not None and self._clock() >= self._lease.expires_at - period:
                log.error("scheduler.lease_unrenewable", holder=self._lease.holder)
                await self._step_down(kill_runs=True)
            self._tick.clear()
            # asyncio.timeout: wait_for may swallow a cancellation on Python 3.11.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await self._tick.wait()

    async def _step(self) -> None:
        if self.led is None:
            if await self._lease.acquire():
                log.info("scheduler.leading", holder=self._lease.holder)
                self.led = self._make()
                await self.led.start()
                await self._on_change(self.led)
        elif not await self._lease.renew():
            log.warning("scheduler.lease_lost", holder=self._lease.holder)
            await self._step_down(kill_runs=True)

    async def _step_down(self, *, kill_runs: bool) -> None:
        led, self.led = self.led, None
        if led is not None:
            await self._on_change(None)
            await led.stop(kill_runs=kill_runs)

    async def close(self) -> None:
        """Stops leading without killing runs (a restart re-attaches or re-runs them) and
        expires the lease for the next replica. Call after cancelling `run`."""
        await self._step_down(kill_runs=False)
        await self._lease.release()
