"""What a running service receives from its composition root, and what it hands back.

A service is started with the adapters it needs (the bus, the state store, the blob store and
its settings) and returns a `Running` handle; the process stops services in reverse order. The
same service code runs alone (`aorta serve NAME`) or beside all the others (`aorta up`).

Services that answer on the bus build their handle with `RunningService`, so they all stop
the same way: stop taking requests, let those in hand finish, then close what they opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from aorta.auth.caller import caller_of
from aorta.auth.principal import calling_as
from aorta.blobs import BlobStore, open_blob_store
from aorta.bus import (
    Bus,
    MessageHandler,
    Request,
    StreamHandler,
    StreamItem,
    Subscription,
    UnaryHandler,
)
from aorta.bus.verbs import Verb, answering
from aorta.logger import get_logger
from aorta.settings import Settings
from aorta.store import StateStore
from aorta.store.factory import open_state_store

log = get_logger(__name__)

Req = TypeVar("Req")
Ans = TypeVar("Ans")


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


@runtime_checkable
class Listening(Protocol):
    """A started service that listens on a port of its own (the gateway)."""

    name: str
    port: int

    async def stop(self, grace: float) -> None: ...


ServiceStarter = Callable[[ServiceContext], Awaitable[Running]]


@asynccontextmanager
async def service_context(settings: Settings, bus: Bus) -> AsyncIterator[ServiceContext]:
    """The context services of one process share: the state store and the blob store the
    settings name, opened here and closed (blobs first) when the block ends, beside `bus`,
    which stays the caller's to close."""
    store = await open_state_store(settings)
    try:
        blobs = await open_blob_store(settings)
        try:
            yield ServiceContext(settings=settings, bus=bus, store=store, blobs=blobs)
        finally:
            await blobs.close()
    finally:
        await store.close()


Closer = Callable[[], Awaitable[None]]


class RunningService:
    """A started bus service: the verbs and subscriptions it serves, and what it closes after.

    Verbs are served in the service's queue group (`queue`, the service name by default), so
    replicas share the requests. `stop` first calls the `on_stopping` callbacks (ending what
    would make a drain wait, such as watch streams), drains every subscription at once (each
    bounded by the bus's drain timeout: requests in hand finish, no new one arrives), then
    awaits the closers in the reverse order they were added, each even when an earlier one
    failed. It needs no grace of its own and is idempotent.
    """

    def __init__(self, name: str, bus: Bus, *, queue: str | None = None) -> None:
        self.name = name
        self.queue = queue or name
        self._bus = bus
        self._served: list[Subscription] = []
        self._stopping: list[Callable[[], None]] = []
        self._closers: list[Closer] = []
        self._stopped = False

    @property
    def served(self) -> tuple[Subscription, ...]:
        """Every subscription the service holds, in the order it made them."""
        return tuple(self._served)

    async def serve(self, subject: str, handler: UnaryHandler) -> None:
        """Answers `subject` with `handler` in the service's queue group, the request's caller
        bound (`aorta.auth.caller`)."""
        served = await self._bus.serve(subject, _as_caller(handler), queue=self.queue)
        self._served.append(served)

    async def serve_stream(self, subject: str, handler: StreamHandler) -> None:
        """Answers `subject` with the stream `handler` yields, in the service's queue group,
        the request's caller bound (`aorta.auth.caller`)."""
        served = await self._bus.serve_stream(subject, _as_caller_stream(handler), queue=self.queue)
        self._served.append(served)

    async def serve_verb(
        self, verb: Verb[Req, Ans], handler: Callable[[Req], Awaitable[Ans]]
    ) -> None:
        """Answers `verb` with a typed `handler` (request object in, answer object out)."""
        await self.serve(verb.subject, answering(verb, handler))

    async def subscribe(self, subject: str, handler: MessageHandler) -> None:
        """Receives every message published on `subject` (not a queue group)."""
        self._served.append(await self._bus.subscribe(subject, handler))

    def on_stopping(self, callback: Callable[[], None]) -> None:
        """Calls `callback` first when the service stops, before the drain."""
        self._stopping.append(callback)

    def on_stop(self, closer: Closer) -> None:
        """Awaits `closer` when the service stops, after the drain; last added, first closed."""
        self._closers.append(closer)

    async def stop(self, grace: float) -> None:
        if self._stopped:
            return
        self._stopped = True
        for callback in self._stopping:
            callback()
        await asyncio.gather(*(subscription.drain() for subscription in self._served))
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("service.close_failed", service=self.name)
        log.info(f"{self.name}.stopped")

    @asynccontextmanager
    async def starting(self) -> AsyncIterator[RunningService]:
        """Wraps a service's start: when it fails, what was already served and opened is
        stopped before the error goes on."""
        try:
            yield self
        except BaseException:
            await self.stop(0)
            raise


def _as_caller(handler: UnaryHandler) -> UnaryHandler:
    """`handler`, run as the caller its request names (`ANONYMOUS` when none), whatever
    context the bus's task inherited."""

    async def answer(request: Request) -> bytes:
        with calling_as(caller_of(request.headers)):
            return await handler(request)

    return answer


def _as_caller_stream(handler: StreamHandler) -> StreamHandler:
    """`_as_caller` for a streamed answer: the caller is bound while the handler runs up to
    each of its items."""

    async def answer(request: Request) -> AsyncIterator[StreamItem]:
        caller = caller_of(request.headers)
        stream = handler(request)
        try:
            while True:
                with calling_as(caller):
                    try:
                        item = await anext(stream)
                    except StopAsyncIteration:
                        return
                yield item
        finally:
            if isinstance(stream, AsyncGenerator):
                with calling_as(caller):
                    await stream.aclose()

    return answer
