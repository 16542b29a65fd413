"""nats-py's client as the NATS bus uses it: mended where nats-py 2.16 loses a PONG or a
cancellation (`PongSafeClient`, `round_trip`), closed without raising (`close_quietly`), and
its subscriptions stopped as each kind needs (`ServedSubscription`)."""

from __future__ import annotations

import asyncio

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from aorta.bus.nats_wire import quietly
from aorta.bus.port import SerialWorker
from aorta.logger import get_logger
from aorta.tasks import GuardedTasks

_log = get_logger(__name__)


class PongSafeClient(Client):
    """nats-py's client, with each PONG consumed by the PING it answers even when that PING's
    waiter is gone. nats-py 2.16 leaves the future of a `flush` whose waiter was cancelled or
    timed out (a subscription drained under a deadline, a service stopped mid-subscribe) in
    its queue, and setting that future's result when the PONG came raised InvalidStateError,
    which ended the connection's read loop: every request on the bus then went unanswered."""

    async def _process_pong(self) -> None:
        if self._pongs:
            future = self._pongs.pop(0)
            if not future.done():
                future.set_result(True)
            self._pongs_received += 1
            self._pings_outstanding = 0


async def round_trip(nc: Client, patience: float) -> None:
    """One PING/PONG round trip, as `Client.flush` makes, but one that never swallows a
    cancellation of its caller: `flush` waits with `wait_for`, which on Python 3.11 drops a
    cancellation that lands as the PONG arrives (a scheduler stopped just as its leader
    subscribed then ran on). The PONG future is shielded, so a waiter that gives up leaves it
    to be consumed by its PONG (see `PongSafeClient`). `FlushTimeoutError` when no PONG comes."""
    if nc.is_closed:
        raise nats.errors.ConnectionClosedError
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    await nc._send_ping(future)
    try:
        async with asyncio.timeout(patience):
            await asyncio.shield(future)
    except TimeoutError:
        raise nats.errors.FlushTimeoutError from None


async def close_quietly(nc: Client, patience: float) -> None:
    """Closes `nc` within `patience` seconds; a failure to close is logged, never raised."""
    try:
        await asyncio.wait_for(nc.close(), patience)
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        _log.warning("the NATS connection did not close cleanly", error=repr(exc))


class ServedSubscription:
    """Either a served subject (its callbacks only spawn handler tasks: nats-py drains them,
    then the tasks are awaited) or a sequential one (interest dropped, then the worker stops
    after the message in hand; the rest are dropped, and unacknowledged events come again)."""

    def __init__(
        self,
        sub: NatsSubscription,
        registry: set[ServedSubscription],
        timeout: float,
        inflight: GuardedTasks | None,
        worker: SerialWorker[Msg] | None,
    ) -> None:
        self._sub, self._registry, self._timeout = sub, registry, timeout
        self._inflight, self._worker = inflight, worker
        self._drained = False

    async def drain(self) -> None:
        """Stops the subscription as its kind asks; idempotent."""
        if self._drained:
            return
        self._drained = True
        self._registry.discard(self)
        if self._worker is not None:
            await quietly(self._sub.unsubscribe())
            await self._worker.stop(self._timeout)
        if self._inflight is not None:
            # nats-py leaves Subscription.drain unannotated.
            drained = self._sub.drain()  # type: ignore[no-untyped-call]
            await quietly(asyncio.wait_for(drained, self._timeout))
            await self._inflight.wait(self._timeout)
