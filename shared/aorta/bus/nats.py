"""The NATS adapter of the bus port (nats-py), used in production and by `aorta up`.

Request/reply is core NATS with queue groups; streamed answers use an inbox per stream with
credit-based flow control (framing in `aorta.bus.nats_wire`); events live on a JetStream stream
(`aorta.bus.nats_events`). Only these modules and `aorta.bus.nats_client` import `nats`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from aorta.bus.credentials import BusCredentials
from aorta.bus.events import CloudEvent
from aorta.bus.nats_client import (
    PongSafeClient,
    ServedSubscription,
    close_quietly,
    round_trip,
)
from aorta.bus.nats_events import JetStreamEvents
from aorta.bus.nats_wire import (
    consume_stream,
    copy_headers,
    produce_stream,
    quietly,
    request_of,
    translated,
)
from aorta.bus.port import (
    DEFAULT_MAX_PAYLOAD,
    ERROR_HEADER,
    BusOptions,
    DeliverPolicy,
    EventHandler,
    GapWatchers,
    MessageHandler,
    SerialWorker,
    StreamHandler,
    Subscription,
    UnaryHandler,
    as_caller_error,
    call_subscriber,
    check_size,
    check_subject,
    decode_error,
    encode_error,
    message_context,
)
from aorta.bus_permissions import EVENTS_USER, inbox_prefix
from aorta.errors import AortaError, Internal, Unavailable
from aorta.logger import get_logger
from aorta.observability import metrics
from aorta.settings import redact_uri
from aorta.tasks import GuardedTasks

_CLOSE_TIMEOUT = 5.0


_log = get_logger(__name__)


class NatsBus:
    """`aorta.bus.port.Bus` over one NATS connection. Create it with `NatsBus.connect`."""

    def __init__(self, nc: Client, *, default_timeout: float, options: BusOptions) -> None:
        self._nc = nc
        self._timeout = default_timeout
        self._options = options
        self._events = JetStreamEvents(
            nc.jetstream(timeout=default_timeout), timeout=default_timeout, options=options
        )
        self._subscriptions: set[ServedSubscription] = set()
        self._gaps = GapWatchers()
        self._closed = False
        self._last_error = ""
        self._log = _log

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        name: str,
        default_timeout: float,
        stream_max_age: float | None = 7 * 24 * 3600.0,
        stream_max_bytes: int | None = 1024**3,
        connect_timeout: float = 10.0,
        options: BusOptions | None = None,
        credentials: BusCredentials | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> NatsBus:
        """Connects as client `name` and makes sure the event stream exists (unless it logs in
        as the read-only `events` user, which may only read events live).

        With `credentials`, the client logs in as that user and takes its inboxes under the
        user's own prefix (`aorta.bus_permissions.inbox_prefix`), where its permissions let
        only it subscribe; without, it connects anonymously (a server without authentication,
        as in tests). `tls` encrypts the connection and verifies the server.

        The stream is created when absent (file storage; the oldest events are dropped beyond
        `stream_max_age` seconds or `stream_max_bytes`, None: unlimited); an existing stream is
        used as it is. Once connected, a lost connection is retried every second, forever, and
        logged; requests made meanwhile wait (within their timeout). Raises `Unavailable` when
        no server answers within `connect_timeout` or when the server lacks JetStream.
        """
        shown = _without_credentials(url)
        bus = cls(
            PongSafeClient(), default_timeout=default_timeout, options=options or BusOptions()
        )
        user = credentials.user if credentials is not None else None
        bus._log = _log.bind(bus=name, url=shown, user=user)
        login: dict[str, Any] = {}
        if credentials is not None:
            login = {
                "user": credentials.user,
                "password": credentials.password,
                "inbox_prefix": inbox_prefix(credentials.user),
            }
        try:
            await asyncio.wait_for(
                bus._nc.connect(
                    url,
                    name=name,
                    connect_timeout=max(1, int(connect_timeout)),
                    reconnect_time_wait=1,
                    max_reconnect_attempts=-1,
                    error_cb=bus._on_error,
                    disconnected_cb=bus._on_disconnected,
                    reconnected_cb=bus._on_reconnected,
                    tls=tls,
                    **login,
                ),
                connect_timeout,
            )
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            await bus.close()
            refused = f"; last error: {bus._last_error}" if bus._last_error else ""
            raise Unavailable(
                f"cannot connect to NATS at {shown} as {user or 'anonymous'} within "
                f"{connect_timeout:g} s{refused}"
            ) from exc
        try:
            # The read-only events user may not manage streams: it only reads events live.
            if user != EVENTS_USER:
                await bus._events.ensure_stream(stream_max_age, stream_max_bytes)
        except BaseException:
            await bus.close()
            raise
        bus._log.info("bus connected", max_payload=bus._nc.max_payload)
        if bus._nc.max_payload < DEFAULT_MAX_PAYLOAD:
            # Every message is still checked against the server's limit and refused above it.
            bus._log.warning(
                "the server's max_payload is below the platform's; larger answers will fail",
                max_payload=bus._nc.max_payload,
                expected=DEFAULT_MAX_PAYLOAD,
            )
        return bus

    async def _on_error(self, exc: Exception) -> None:
        # nats-py reports the server's refusals here: an authorization or permissions
        # violation names the user and subject, never a password. A refused login is kept
        # over the resets that follow it, as the reason a connect gives up.
        if "authorization violation" not in self._last_error.lower():
            self._last_error = redact_uri(str(exc))
        self._log.warning("bus connection error", error=redact_uri(repr(exc)))
        if isinstance(exc, nats.errors.SlowConsumerError):
            self._gaps.gap()

    async def _on_disconnected(self) -> None:
        self._gaps.gap()
        if not self._closed:
            self._log.warning("bus disconnected; reconnecting")

    async def _on_reconnected(self) -> None:
        self._gaps.gap()
        self._log.info("bus reconnected")

    def on_gap(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._gaps.add(callback)

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
        began = time.perf_counter()
        try:
            with translated(subject, wait):
                msg = await self._nc.request(
                    subject, data, timeout=wait, headers=copy_headers(headers)
                )
        finally:
            if metrics.recording():
                metrics.BUS_REQUEST_SECONDS.labels(metrics.subject_service(subject)).observe(
                    time.perf_counter() - began
                )
        if (msg.headers or {}).get(ERROR_HEADER):
            raise decode_error(msg.data, subject=subject)
        return msg.data

    def request_stream(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        self._check_request(subject, data)
        return consume_stream(
            self._nc,
            subject,
            data,
            item_timeout=self._timeout if timeout is None else timeout,
            headers=headers,
            window=self._options.stream_window,
            window_bytes=self._options.stream_window_bytes,
        )

    async def serve(self, subject: str, handler: UnaryHandler, *, queue: str) -> Subscription:
        return await self._serve(subject, queue, partial(self._answer, handler))

    async def serve_stream(
        self, subject: str, handler: StreamHandler, *, queue: str
    ) -> Subscription:
        run = partial(
            produce_stream,
            self._nc,
            handler,
            window=self._options.stream_window,
            window_bytes=self._options.stream_window_bytes,
            credit_timeout=self._options.stream_credit_timeout,
        )
        return await self._serve(subject, queue, run)

    async def publish(self, subject: str, data: bytes) -> None:
        self._check_open()
        check_subject(subject, wildcards=False)
        check_size(data, self._nc.max_payload, what=f"the message to {subject}")
        with translated(subject, self._timeout):
            await self._nc.publish(subject, data)

    async def subscribe(self, subject: str, handler: MessageHandler) -> Subscription:
        self._check_open()
        check_subject(subject, wildcards=True)

        async def handle(msg: Msg) -> None:
            await call_subscriber(handler, msg.data, msg.subject)

        worker = SerialWorker(handle, name=f"aorta.bus.subscribe:{subject}")

        async def enqueue(msg: Msg) -> None:
            worker.put(msg)

        try:
            with translated(subject, self._timeout):
                sub = await self._nc.subscribe(subject, cb=enqueue)
        except BaseException:
            await worker.stop(0)
            raise
        return await self._registered(subject, self._track(sub, worker=worker))

    async def publish_event(self, event: CloudEvent) -> None:
        self._check_open()
        await self._events.publish(event, self._nc.max_payload)
        if metrics.recording():
            metrics.EVENTS_PUBLISHED.inc()

    async def subscribe_events(
        self,
        subject_filter: str,
        handler: EventHandler,
        *,
        durable: str | None = None,
        deliver: DeliverPolicy = "new",
    ) -> Subscription:
        self._check_open()
        sub, worker = await self._events.subscribe(
            subject_filter, handler, durable=durable, deliver=deliver
        )
        return await self._registered(subject_filter, self._track(sub, worker=worker))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(sub.drain() for sub in list(self._subscriptions)))
        if self._nc.is_connected:
            await quietly(round_trip(self._nc, _CLOSE_TIMEOUT))
        await close_quietly(self._nc, _CLOSE_TIMEOUT)

    async def _serve(
        self, subject: str, queue: str, run: Callable[[Msg], Coroutine[Any, Any, None]]
    ) -> Subscription:
        self._check_open()
        check_subject(subject, wildcards=True)
        check_subject(queue, wildcards=False)
        inflight = GuardedTasks(f"aorta.bus.serve:{subject}")

        async def dispatch(msg: Msg) -> None:
            inflight.spawn(run(msg))

        with translated(subject, self._timeout):
            sub = await self._nc.subscribe(subject, queue=queue, cb=dispatch)
        return await self._registered(subject, self._track(sub, inflight=inflight))

    async def _answer(self, handler: UnaryHandler, msg: Msg) -> None:
        request = request_of(msg)
        with message_context(request):
            try:
                body = await handler(request)
                check_size(body, self._nc.max_payload, what="the answer", error=Internal)
            except asyncio.CancelledError:
                await self._reply(msg, Unavailable(f"{request.subject} stopped before answering"))
                raise
            except Exception as exc:
                await self._reply(msg, as_caller_error(exc, subject=request.subject))
            else:
                await self._reply(msg, body)

    async def _reply(self, msg: Msg, answer: bytes | AortaError) -> None:
        if not msg.reply:
            return
        if isinstance(answer, AortaError):
            body, headers = encode_error(answer), {ERROR_HEADER: "1"}
        else:
            body, headers = answer, None
        await quietly(self._nc.publish(msg.reply, body, headers=headers))

    async def _registered(self, subject: str, sub: ServedSubscription) -> ServedSubscription:
        """Returns `sub` once the server has registered it, so that a message sent right after,
        from any connection, reaches it; drains it when that cannot be confirmed."""
        try:
            with translated(subject, self._timeout):
                # Two PING/PONG round trips: nats-py 2.16 writes PING straight to the socket,
                # ahead of a SUB still in its buffer; the first round trip lets its flusher
                # write the SUB, the second one follows it.
                for _ in range(2):
                    await round_trip(self._nc, max(1.0, self._timeout))
        except BaseException:
            await sub.drain()
            raise
        return sub

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the bus is closed")

    def _check_request(self, subject: str, data: bytes) -> None:
        self._check_open()
        check_subject(subject, wildcards=False)
        check_size(data, self._nc.max_payload, what=f"the request to {subject}")

    def _track(
        self,
        sub: NatsSubscription,
        *,
        inflight: GuardedTasks | None = None,
        worker: SerialWorker[Msg] | None = None,
    ) -> ServedSubscription:
        tracked = ServedSubscription(
            sub, self._subscriptions, self._options.drain_timeout, inflight, worker
        )
        self._subscriptions.add(tracked)
        return tracked


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
