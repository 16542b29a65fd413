"""The bus port: what services need from a message bus, and the pieces every adapter shares.

Services talk to each other through `Bus` only: request/reply (one answer or a stream of
answers) on `aorta.rpc.<service>.<verb>` served by queue groups, fire-and-forget pub/sub, and
persisted CloudEvents on `aorta.events.>`. Two adapters implement it and pass one contract suite:
`aorta.bus.nats.NatsBus` (production and `aorta up`) and `aorta.bus.memory.MemoryBus` (fast unit
tests of handlers). The helpers below the protocols (error framing, handler task tracking,
per-message log context) live here so that both adapters behave the same way by construction.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
)
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

import structlog

from aorta.bus.batches import Batch
from aorta.errors import AortaError, Internal, Invalid
from aorta.logger import get_logger
from aorta.observability import tracing
from aorta.tasks import GuardedTasks

if TYPE_CHECKING:
    from aorta.bus.events import CloudEvent

T = TypeVar("T")


_log = get_logger(__name__)

REQUEST_ID_HEADER = "Aorta-Request-Id"
"""Optional request header; its value is bound as `request_id` in the handler's log context."""

ERROR_HEADER = "Aorta-Error"
"""Set to "1" on an answer (or stream end) whose body is the JSON of `AortaError.to_wire()`."""

DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024
"""The largest body one bus message may carry: the `max_payload` Aorta's nats-servers are
configured with (`aorta.bus.nats_server`, deploy/base/nats.yaml), raised from nats-server's
default of 1 MiB so that an answer holding an object's 4 MiB of metadata (Clara's limit) fits
one message.
`NatsBus` checks messages against what its server announces; `MemoryNetwork` uses this."""

DeliverPolicy = Literal["all", "new"]


@dataclass(frozen=True)
class BusOptions:
    """Tuning shared by both adapters; the defaults suit services.

    - `stream_window`: how many streamed items a producer may send beyond the last one the
      consumer acknowledged.
    - `stream_window_bytes`: how many bytes of items it may have sent beyond them: it sends
      while less than this is unacknowledged, so a stream holds at most this plus one item
      in flight, however its items are sized (a stream of small items batched into large
      ones, or of a few items of megabytes, is not held to a count meant for neither). Both
      ends of a stream must agree on both windows (a consumer acknowledges every half window
      of items or of bytes, whichever comes first).
    - `stream_credit_timeout`: how long a producer waits for its consumer to make room before it
      gives up on an abandoned stream.
    - `drain_timeout`: how long draining a subscription waits for running handlers before
      cancelling them.
    - `event_max_deliver`: how many times an event is delivered to a failing handler.
    - `event_ack_wait`: how long an event handler may run before the event is delivered again.
    """

    stream_window: int = 32
    stream_window_bytes: int = 128 * 1024
    stream_credit_timeout: float = 300.0
    drain_timeout: float = 10.0
    event_max_deliver: int = 5
    event_ack_wait: float = 30.0


@dataclass(frozen=True)
class Request:
    """One request as a handler sees it: the subject it arrived on, its body and headers."""

    subject: str
    data: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


UnaryHandler = Callable[[Request], Awaitable[bytes]]
StreamItem = bytes | Batch
"""What a stream handler yields: an item, or several sent together (`aorta.bus.batches`)."""
StreamHandler = Callable[[Request], AsyncIterator[StreamItem]]
EventHandler = Callable[["CloudEvent"], Awaitable[None]]
MessageHandler = Callable[[bytes, str], Awaitable[None]]
"""A pub/sub handler: called with (data, subject)."""


class Subscription(Protocol):
    async def drain(self) -> None:
        """Stops receiving, then waits for the handlers already running (bounded by the bus's
        drain timeout; handlers still running after it are cancelled). Idempotent."""


class Bus(Protocol):
    """The message bus. Every method raises `Unavailable` when the bus cannot be reached or is
    closed, and `Invalid` for a malformed subject or a body above the bus's message limit."""

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the port's contract: a per-call bound)
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """Sends one request and returns the one answer.

        An `AortaError` raised by the handler is re-raised here with the same kind, code and
        messages. No responder: `Unavailable("no service answers <subject>")` at once. No answer
        within `timeout` (default: the adapter's): `Unavailable` naming the subject and the
        timeout; the handler is not interrupted. Cancelling the caller abandons the answer.
        """
        ...

    def request_stream(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Sends one request and yields the answers in the order the handler yielded them.

        Ends when the handler's generator ends; an error the handler raises mid-stream is raised
        after the items already yielded. `timeout` bounds the wait for each next item (idle
        timeout), not the whole stream. The producer never runs more than the adapter's window
        of items, nor more than its window of bytes plus one item, ahead of the consumer.
        Closing the iterator early (`aclose`, best with `contextlib.aclosing`, or cancelling
        the consumer) tells the producer to stop: the handler's generator is closed at its
        next `yield`; an iterator that is only dropped is closed when it is garbage collected.
        """
        ...

    async def serve(self, subject: str, handler: UnaryHandler, *, queue: str) -> Subscription:
        """Answers requests on `subject` (wildcards allowed) as one member of queue group
        `queue`: each request goes to exactly one member. Each request runs in its own task;
        an `AortaError` goes back to the caller as is, any other exception is logged with its
        traceback and becomes `Internal` (no details) for the caller. Returns once requests
        from any client reach this handler (the same holds for the other subscribe methods)."""
        ...

    async def serve_stream(
        self, subject: str, handler: StreamHandler, *, queue: str
    ) -> Subscription:
        """Like `serve`, for streamed answers (see `request_stream`). The handler may yield a
        `Batch` to send several items as one bus message; the consumer receives them one by
        one all the same."""
        ...

    async def publish(self, subject: str, data: bytes) -> None:
        """Fire-and-forget: delivered to the subscribers present now, not stored."""
        ...

    async def subscribe(self, subject: str, handler: MessageHandler) -> Subscription:
        """Calls `handler(data, subject)` for each message on `subject` (wildcards allowed), one
        at a time in arrival order. A handler exception is logged and the next message follows."""
        ...

    def on_gap(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Calls `callback` whenever messages meant for this bus's `subscribe` handlers may
        have been lost: the connection dropped (called then, and again once it is back) or
        the server dropped messages of a subscriber that fell behind. What keeps a copy up to
        date from such messages drops it then. Returns the function that stops the calls."""
        ...

    async def publish_event(self, event: CloudEvent) -> None:
        """Stores `event` on `event.nats_subject` and returns once the store acknowledged it.
        Publishing the same event id again (a retry) stores it once."""
        ...

    async def subscribe_events(
        self,
        subject_filter: str,
        handler: EventHandler,
        *,
        durable: str | None = None,
        deliver: DeliverPolicy = "new",
    ) -> Subscription:
        """Delivers stored events matching `subject_filter` (under `aorta.events.`), one at a
        time. `deliver="all"` replays from the first stored event, `"new"` starts after the last.
        With `durable`, the consumer's position survives this subscription, the bus and the
        server: a later subscription with the same name resumes where it left off (its
        `deliver` then no longer matters); one durable name serves one subscription at a time
        (`Conflict` otherwise, or when the filter differs). An event is acknowledged when the
        handler returns; a handler exception redelivers it after a short delay, up to the
        adapter's bound, then it is kept as a dead letter with the reason
        (`aorta.bus.dead_letters`) instead of dropped. Redelivery may reorder events."""
        ...

    async def close(self) -> None:
        """Drains every subscription of this bus, then disconnects. Bounded; idempotent."""
        ...


_TOKEN = re.compile(r"^[^\s.*>]+$")


def check_subject(subject: str, *, wildcards: bool) -> str:
    """Returns `subject`, or raises `Invalid` if it is not a valid NATS subject.

    Tokens are separated by dots and may not be empty or contain white space, `*` or `>`.
    With `wildcards`, a token may be `*`, and the last one may be `>`.
    """
    tokens = subject.split(".") if subject else [""]
    for index, token in enumerate(tokens):
        if _TOKEN.match(token):
            continue
        if wildcards and (token == "*" or (token == ">" and index == len(tokens) - 1)):
            continue
        raise Invalid(f"{subject!r} is not a valid bus subject")
    return subject


def check_size(data: bytes, limit: int, *, what: str, error: type[AortaError] = Invalid) -> None:
    """Raises `error` (a caller's mistake by default) when `data` cannot travel as one bus
    message; `what` names the message in the error."""
    if len(data) > limit:
        raise error(f"{what} is {len(data)} bytes, above the bus message limit of {limit} bytes")


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS matching: `*` matches one token, a final `>` one or more."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(wanted) == len(tokens)


def encode_error(error: AortaError) -> bytes:
    """The body of an error answer (sent with `ERROR_HEADER: 1`)."""
    return json.dumps(error.to_wire()).encode()


def decode_error(body: bytes, *, subject: str) -> AortaError:
    """Rebuilds the error an error answer carries; a malformed one becomes `Internal`."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return Internal(f"{subject} answered with a malformed error")
    return AortaError.from_wire(document)


def as_received(error: AortaError, *, subject: str) -> AortaError:
    """`error` as a caller in another process receives it (through its wire form)."""
    return decode_error(encode_error(error), subject=subject)


def as_caller_error(exc: Exception, *, subject: str) -> AortaError:
    """What the caller sees for a handler's exception: an `AortaError` as is; anything else
    becomes an `Internal` that reveals nothing of it. Both that and an `Internal` (a bug by
    definition) are logged here with their traceback."""
    if isinstance(exc, AortaError) and not isinstance(exc, Internal):
        return exc
    _log.error("bus handler failed", subject=subject, exc_info=exc)
    if isinstance(exc, Internal):
        return exc
    return Internal(f"an internal error occurred while handling {subject}")


@contextmanager
def message_context(request: Request) -> Iterator[None]:
    """Binds `subject` (and `request_id`, when the request carries one) to structlog's context
    for the duration of one handler call, in a span continuing the caller's trace when tracing
    is on and the caller sent one (`aorta.observability.tracing`)."""
    bound: dict[str, Any] = {"subject": request.subject}
    request_id = request.headers.get(REQUEST_ID_HEADER)
    if request_id:
        bound["request_id"] = request_id
    with (
        structlog.contextvars.bound_contextvars(**bound),
        tracing.server_span(request.subject, request.headers, root=False),
    ):
        yield


def outgoing_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers a request goes out with: `headers`, plus the request id being served (bound
    by `message_context` or the gateway) unless they name one, and the current trace context
    (`traceparent`) when tracing is on; so a chain of requests logs one request id and trace."""
    sent = dict(headers or {})
    if REQUEST_ID_HEADER not in sent:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            sent[REQUEST_ID_HEADER] = str(request_id)
    tracing.inject(sent)
    return sent


async def call_subscriber(handler: MessageHandler, data: bytes, subject: str) -> None:
    """Runs a pub/sub handler with `subject` bound to the log context; logs its exception."""
    with structlog.contextvars.bound_contextvars(subject=subject):
        try:
            await handler(data, subject)
        except Exception:
            _log.exception("bus subscriber failed")


def redelivery_delay(attempt: int) -> float:
    """Seconds to wait before delivering an event again after its `attempt`-th failure."""
    return (0.1, 0.5, 2.0)[min(attempt, 3) - 1]


class GapWatchers:
    """The callbacks of `Bus.on_gap`, for an adapter to call when a gap happens."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def gap(self) -> None:
        """Calls every callback; one that raises is logged and the others still run."""
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:
                _log.exception("bus gap watcher failed")


class SerialWorker(Generic[T]):
    """Hands items to `handle` one at a time, in arrival order, from one guarded task."""

    def __init__(self, handle: Callable[[T], Awaitable[None]], *, name: str) -> None:
        self._handle = handle
        self._queue: asyncio.Queue[tuple[T] | None] = asyncio.Queue()
        self._stopping = False
        self._tasks = GuardedTasks(name)
        self._tasks.spawn(self._run())

    def put(self, item: T) -> None:
        if not self._stopping:
            self._queue.put_nowait((item,))

    async def _run(self) -> None:
        while (entry := await self._queue.get()) is not None and not self._stopping:
            try:
                await self._handle(entry[0])
            except Exception:
                _log.exception("bus handler failed")

    async def stop(self, grace: float) -> None:
        """Lets the item in hand finish (up to `grace` seconds, then cancels it); drops the
        rest."""
        self._stopping = True
        self._queue.put_nowait(None)
        await self._tasks.wait(grace)
