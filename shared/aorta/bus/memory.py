"""The in-memory adapter of the bus port: the same semantics in one process, for fast tests.

Buses sharing a `MemoryNetwork` see each other like clients of one nats-server: queue groups
(round robin), flow-controlled streams, errors crossing in their wire form, stored events with
durable positions; it passes the bus contract suite. Simplifications: a request goes to the first
matching queue group only; events are kept, and de-duplicated by id, for the network's lifetime;
a failing event is retried before the next one is delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aorta.bus.batches import Batch, pack
from aorta.bus.dead_letters import EPHEMERAL, DeadLetter
from aorta.bus.events import CloudEvent, check_event_filter
from aorta.bus.memory_events import DurablePosition, EventConsumer
from aorta.bus.memory_streams import StreamChannel
from aorta.bus.port import (
    DEFAULT_MAX_PAYLOAD,
    BusOptions,
    DeliverPolicy,
    EventHandler,
    GapWatchers,
    MessageHandler,
    Request,
    SerialWorker,
    StreamHandler,
    Subscription,
    UnaryHandler,
    as_caller_error,
    as_received,
    call_subscriber,
    check_size,
    check_subject,
    message_context,
    outgoing_headers,
    subject_matches,
)
from aorta.bus.unanswered import no_answer_error, no_responders_error, stream_stalled_error
from aorta.errors import AortaError, Conflict, Internal, Invalid, Unavailable
from aorta.logger import get_logger
from aorta.tasks import GuardedTasks

_log = get_logger(__name__)

H = TypeVar("H", UnaryHandler, StreamHandler)


@dataclass(eq=False)
class _Served(Generic[H]):
    pattern: str
    queue: str
    handler: H
    inflight: GuardedTasks


@dataclass
class MemoryNetwork:
    """What a nats-server holds, for `MemoryBus` instances that should see each other."""

    max_payload: int = DEFAULT_MAX_PAYLOAD
    _unary: list[_Served[UnaryHandler]] = field(default_factory=list)
    _streams: list[_Served[StreamHandler]] = field(default_factory=list)
    _subscribers: list[tuple[str, SerialWorker[tuple[bytes, str]]]] = field(default_factory=list)
    _events: list[tuple[str, bytes]] = field(default_factory=list)
    _event_ids: set[str] = field(default_factory=set)
    _durables: dict[str, DurablePosition] = field(default_factory=dict)
    _consumers: set[EventConsumer] = field(default_factory=set)
    _turns: dict[tuple[str, str], int] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    """The events consumers gave up on, oldest first (`aorta.bus.dead_letters`)."""
    dead_lettered: asyncio.Event = field(default_factory=asyncio.Event)
    """Set each time a dead letter is added (a test clears it before it waits)."""

    def _pick(self, served: list[_Served[H]], subject: str) -> _Served[H] | None:
        matching = [s for s in served if subject_matches(s.pattern, subject)]
        if not matching:
            return None
        key = (matching[0].pattern, matching[0].queue)
        group = [s for s in matching if (s.pattern, s.queue) == key]
        turn = self._turns.get(key, 0)
        self._turns[key] = turn + 1
        return group[turn % len(group)]

    def stored_events(self) -> list[tuple[str, bytes]]:
        """The stored events, (subject, body) in order; the list grows as events arrive."""
        return self._events

    def add_dead_letter(self, letter: DeadLetter) -> None:
        """Keeps an event a consumer gave up on."""
        self.dead_letters.append(letter)
        self.dead_lettered.set()

    def _store(self, event: CloudEvent) -> None:
        if event.id in self._event_ids:
            return  # a retried publish: stored once, as JetStream does with Nats-Msg-Id
        self._event_ids.add(event.id)
        self._events.append((event.nats_subject, event.to_json()))
        for consumer in self._consumers:
            consumer.woken.set()


class MemoryBus:
    """`aorta.bus.port.Bus` inside one process; buses built on one `network` see each other."""

    def __init__(
        self,
        network: MemoryNetwork | None = None,
        *,
        default_timeout: float = 30.0,
        options: BusOptions | None = None,
    ) -> None:
        self._network = network if network is not None else MemoryNetwork()
        self._timeout, self._options = default_timeout, options or BusOptions()
        self._subscriptions: set[_MemorySubscription] = set()
        self._gaps = GapWatchers()
        self._closed = False

    @property
    def network(self) -> MemoryNetwork:
        """The network this bus is on: what it stored (a test waits for a consumer to have
        received every stored event rather than for a guessed time)."""
        return self._network

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the port's contract: a per-call bound)
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        wait = self._timeout if timeout is None else timeout
        self._check_request(subject, data)
        served = self._network._pick(self._network._unary, subject)
        if served is None:
            raise no_responders_error(subject)
        request = Request(subject=subject, data=data, headers=outgoing_headers(headers))
        task = served.inflight.spawn(self._answer(served, request))
        try:
            # Shielded: as on NATS, a caller that stops waiting does not stop the handler.
            answer = await asyncio.wait_for(asyncio.shield(task), wait)
        except TimeoutError as exc:
            raise no_answer_error(subject, wait) from exc
        if isinstance(answer, AortaError):
            raise as_received(answer, subject=subject)
        return answer

    async def _answer(self, served: _Served[UnaryHandler], request: Request) -> bytes | AortaError:
        with message_context(request):
            try:
                body = await served.handler(request)
                check_size(body, self._network.max_payload, what="the answer", error=Internal)
                return body
            except asyncio.CancelledError:
                # Cancelled by a drain timeout: the caller gets an answer, as NatsBus sends one.
                return Unavailable(f"{request.subject} stopped before answering")
            except Exception as exc:
                return as_caller_error(exc, subject=request.subject)

    def request_stream(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        self._check_request(subject, data)
        request = Request(subject=subject, data=data, headers=outgoing_headers(headers))
        return self._consume(request, self._timeout if timeout is None else timeout)

    async def _consume(self, request: Request, wait: float) -> AsyncGenerator[bytes, None]:
        served = self._network._pick(self._network._streams, request.subject)
        if served is None:
            raise no_responders_error(request.subject)
        channel = StreamChannel(asyncio.Semaphore(self._options.stream_window))
        served.inflight.spawn(self._produce(served, request, channel))
        finished = False
        try:
            while True:
                # asyncio.timeout: wait_for may swallow a cancellation on Python 3.11.
                try:
                    async with asyncio.timeout(wait):
                        frame = await channel.frames.get()
                except TimeoutError as exc:
                    raise stream_stalled_error(request.subject, wait) from exc
                if isinstance(frame, AortaError):
                    finished = True
                    raise as_received(frame, subject=request.subject)
                if frame is None:
                    finished = True
                    return
                if isinstance(frame, Batch):
                    for item in frame.items:
                        yield item
                else:
                    yield frame
                channel.took(frame)
        finally:
            if not finished:
                channel.stop()

    async def _produce(
        self, served: _Served[StreamHandler], request: Request, channel: StreamChannel
    ) -> None:
        with message_context(request):
            items = served.handler(request)
            try:
                sent = 0
                async for item in items:
                    wait = self._options.stream_credit_timeout
                    try:
                        async with asyncio.timeout(wait):
                            await channel.room(self._options.stream_window_bytes)
                    except TimeoutError:
                        _log.warning("stream consumer made no room; stopping", waited_s=wait)
                        return
                    if channel.stopped:
                        return
                    sent += 1
                    what = f"stream item {sent}"
                    body = pack(item) if isinstance(item, Batch) else item
                    check_size(body, self._network.max_payload, what=what, error=Internal)
                    channel.sent(item)
                channel.frames.put_nowait(None)
            except asyncio.CancelledError:
                channel.frames.put_nowait(Unavailable(f"{request.subject} stopped"))
                raise
            except Exception as exc:
                channel.frames.put_nowait(as_caller_error(exc, subject=request.subject))
            finally:
                aclose = getattr(items, "aclose", None)
                if aclose is not None:
                    await aclose()

    async def serve(self, subject: str, handler: UnaryHandler, *, queue: str) -> Subscription:
        return self._serve(subject, queue, self._network._unary, handler)

    async def serve_stream(
        self, subject: str, handler: StreamHandler, *, queue: str
    ) -> Subscription:
        return self._serve(subject, queue, self._network._streams, handler)

    def _serve(
        self, subject: str, queue: str, registry: list[_Served[H]], handler: H
    ) -> Subscription:
        self._check_open()
        check_subject(subject, wildcards=True)
        check_subject(queue, wildcards=False)
        served = _Served(subject, queue, handler, GuardedTasks(f"aorta.bus.serve:{subject}"))
        registry.append(served)
        return self._track(lambda: registry.remove(served), served.inflight.wait)

    async def publish(self, subject: str, data: bytes) -> None:
        self._check_open()
        check_subject(subject, wildcards=False)
        check_size(data, self._network.max_payload, what=f"the message to {subject}")
        for pattern, worker in self._network._subscribers:
            if subject_matches(pattern, subject):
                worker.put((data, subject))

    async def subscribe(self, subject: str, handler: MessageHandler) -> Subscription:
        self._check_open()
        check_subject(subject, wildcards=True)

        async def handle(message: tuple[bytes, str]) -> None:
            await call_subscriber(handler, *message)

        entry = (subject, SerialWorker(handle, name=f"aorta.bus.subscribe:{subject}"))
        self._network._subscribers.append(entry)
        return self._track(lambda: self._network._subscribers.remove(entry), entry[1].stop)

    def on_gap(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._gaps.add(callback)

    def interrupt(self) -> None:
        """Acts, for tests, as if this bus's connection dropped and came back: its `on_gap`
        callbacks are called (no message is lost here)."""
        self._gaps.gap()
        self._gaps.gap()

    async def publish_event(self, event: CloudEvent) -> None:
        self._check_open()
        body = event.to_json()
        check_size(body, self._network.max_payload, what=f"event {event.id}")
        self._network._store(event)
        # As nats-server does, a stored event also reaches the plain subscribers of its subject.
        for pattern, worker in self._network._subscribers:
            if subject_matches(pattern, event.nats_subject):
                worker.put((body, event.nats_subject))

    async def subscribe_events(
        self,
        subject_filter: str,
        handler: EventHandler,
        *,
        durable: str | None = None,
        deliver: DeliverPolicy = "new",
    ) -> Subscription:
        self._check_open()
        check_event_filter(subject_filter)
        network = self._network
        start = 0 if deliver == "all" else len(network._events)
        state = DurablePosition(subject_filter, start)
        if durable is not None:
            if "." in check_subject(durable, wildcards=False):
                raise Invalid(f"durable consumer name {durable!r} may not contain a dot")
            state = network._durables.setdefault(durable, state)
            if state.subject_filter != subject_filter:
                raise Conflict(
                    f"durable event consumer {durable} follows {state.subject_filter}, "
                    f"not {subject_filter}"
                )
            if state.bound:
                raise Conflict(f"durable event consumer {durable} is already in use")
            state.bound = True
        consumer = EventConsumer(
            network.stored_events(),
            state,
            handler,
            self._options.event_max_deliver,
            durable or EPHEMERAL,
            network.add_dead_letter,
        )
        network._consumers.add(consumer)

        def detach() -> None:
            network._consumers.discard(consumer)
            state.bound = False

        return self._track(detach, consumer.stop)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(sub.drain() for sub in list(self._subscriptions)))

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the bus is closed")

    def _check_request(self, subject: str, data: bytes) -> None:
        self._check_open()
        check_subject(subject, wildcards=False)
        check_size(data, self._network.max_payload, what=f"the request to {subject}")

    def _track(
        self, detach: Callable[[], None], finish: Callable[[float], Awaitable[None]]
    ) -> _MemorySubscription:
        sub = _MemorySubscription(self._subscriptions, detach, finish, self._options.drain_timeout)
        self._subscriptions.add(sub)
        return sub


@dataclass(eq=False)
class _MemorySubscription:
    """Detaches from the network at once, then lets what is running finish (bounded)."""

    registry: set[_MemorySubscription]
    detach: Callable[[], None]
    finish: Callable[[float], Awaitable[None]]
    timeout: float
    drained: bool = False

    async def drain(self) -> None:
        if self.drained:
            return
        self.drained = True
        self.registry.discard(self)
        self.detach()
        await self.finish(self.timeout)
