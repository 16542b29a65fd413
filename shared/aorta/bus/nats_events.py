"""Domain events on JetStream for `NatsBus`: the `AORTA_EVENTS` stream and its consumers.

Events are CloudEvents JSON on `aorta.events.<entity>.<id>.<event>`, stored by one file-backed
stream capturing `aorta.events.>` and published with `Nats-Msg-Id: <event id>`, so a retried
publish within the stream's duplicate window (two minutes) is stored once. Consumers are push
consumers with explicit acks and a single `filter_subject`: nats-server 2.9 silently ignores the
newer `filter_subjects` and would then deliver every subject. An event a handler keeps failing
goes to the dead-letter stream (`aorta.bus.dead_letters`), created by the first consumer.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext, api

from aorta.bus import dead_letters
from aorta.bus.dead_letters import (
    DEAD_LETTER_MAX_AGE,
    DEAD_LETTER_MAX_MSGS,
    DEAD_LETTER_PREFIX,
    DEAD_LETTER_STREAM,
    EPHEMERAL,
    DeadLetter,
    reason_of,
)
from aorta.bus.events import EVENTS_PREFIX, CloudEvent, check_event_filter
from aorta.bus.nats_wire import quietly, translated
from aorta.bus.port import (
    BusOptions,
    DeliverPolicy,
    EventHandler,
    SerialWorker,
    check_size,
    check_subject,
    redelivery_delay,
)
from aorta.disk_space import EVENT_STREAM_FLOOR
from aorta.errors import Conflict, Invalid, Unavailable
from aorta.logger import get_logger

STREAM_NAME = "AORTA_EVENTS"

NO_ROOM_CODES = frozenset({10023, 10047})
"""JetStream's "insufficient resources" and "insufficient storage resources available"."""

_log = get_logger(__name__)


class JetStreamEvents:
    """`publish_event` and `subscribe_events` of `NatsBus`, over one JetStream context."""

    def __init__(self, js: JetStreamContext, *, timeout: float, options: BusOptions) -> None:
        self._js = js
        self._timeout = timeout
        self._options = options
        self._dead_letters_ready = False

    async def ensure_stream(self, max_age: float | None, max_bytes: int | None) -> None:
        """Creates the stream when absent; an existing one is used as it is (first creator's
        limits stand: the services' bus users may create the stream, not change it). A
        server without the room to reserve `max_bytes` gets a stream half as large, and so on
        down to `EVENT_STREAM_FLOOR`, so the platform starts on a nearly full disk. Raises
        `Unavailable` when the server has no JetStream."""
        try:
            await self._js.stream_info(STREAM_NAME)
            return
        except nats.js.errors.NotFoundError:
            pass
        except nats.errors.Error as exc:
            raise Unavailable("the NATS server has no JetStream (start it with -js)") from exc
        config = api.StreamConfig(
            name=STREAM_NAME,
            subjects=[EVENTS_PREFIX + ".>"],
            storage=api.StorageType.FILE,
            max_age=max_age,
            max_bytes=max_bytes,
        )
        while True:
            with translated(STREAM_NAME, self._timeout):
                try:
                    await self._js.add_stream(config)
                    return
                except nats.js.errors.APIError as exc:
                    smaller = _smaller(config.max_bytes, exc)
                    if smaller is None:
                        if not isinstance(exc, nats.js.errors.BadRequestError):
                            raise
                        # Another replica created it first, with other limits: theirs stand.
                        await self._js.stream_info(STREAM_NAME)
                        return
                    reason = exc.description
            _log.warning(
                "event stream limit lowered: the bus has no room for it",
                refused=config.max_bytes,
                max_bytes=smaller,
                error=reason,
            )
            config = dataclasses.replace(config, max_bytes=smaller)

    async def publish(self, event: CloudEvent, max_payload: int) -> None:
        subject, body = event.nats_subject, event.to_json()
        check_size(body, max_payload, what=f"event {event.id}")
        try:
            with translated(subject, self._timeout):
                ack = await self._js.publish(subject, body, headers={"Nats-Msg-Id": event.id})
        except Unavailable as exc:
            if isinstance(exc.__cause__, nats.js.errors.NoStreamResponseError):
                raise Unavailable(f"no event stream stores {subject}") from exc
            raise
        if ack.duplicate:
            _log.debug("event already stored", event_id=event.id, subject=subject)

    async def subscribe(
        self,
        subject_filter: str,
        handler: EventHandler,
        *,
        durable: str | None,
        deliver: DeliverPolicy,
    ) -> tuple[NatsSubscription, SerialWorker[Msg]]:
        """A push consumer feeding `handler` one event at a time; see `Bus.subscribe_events`."""
        check_event_filter(subject_filter)
        if durable is not None:
            await self._check_durable(durable, subject_filter)
        await self._ensure_dead_letters()
        config = api.ConsumerConfig(
            durable_name=durable,
            deliver_policy=api.DeliverPolicy.ALL if deliver == "all" else api.DeliverPolicy.NEW,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self._options.event_ack_wait,
            # Unbounded: after `event_max_deliver` failures `_deliver` stores a dead letter and
            # terminates the event, and redelivery must go on while that store fails.
            max_deliver=-1,
            filter_subject=subject_filter,
        )
        consumer = durable or EPHEMERAL
        worker = SerialWorker(
            partial(self._deliver, handler, consumer), name=f"aorta.bus.events:{durable}"
        )

        async def enqueue(msg: Msg) -> None:
            worker.put(msg)

        try:
            with translated(subject_filter, self._timeout):
                sub = await self._js.subscribe(
                    subject_filter,
                    stream=STREAM_NAME,
                    durable=durable,
                    cb=enqueue,
                    manual_ack=True,
                    config=config,
                )
        except Unavailable as exc:
            await worker.stop(0)
            if "already bound" in str(exc.__cause__):
                raise Conflict(f"durable event consumer {durable} is already in use") from exc
            raise
        return sub, worker

    async def _check_durable(self, durable: str, subject_filter: str) -> None:
        if "." in check_subject(durable, wildcards=False):
            raise Invalid(f"durable consumer name {durable!r} may not contain a dot")
        try:
            with translated(subject_filter, self._timeout):
                info = await self._js.consumer_info(STREAM_NAME, durable)
        except Unavailable as exc:
            if isinstance(exc.__cause__, nats.js.errors.NotFoundError):
                return
            raise
        if info.config.filter_subject != subject_filter:
            raise Conflict(
                f"durable event consumer {durable} follows {info.config.filter_subject}, "
                f"not {subject_filter}"
            )

    async def _ensure_dead_letters(self) -> None:
        """Creates the dead-letter stream when absent (once per bus)."""
        if self._dead_letters_ready:
            return
        config = api.StreamConfig(
            name=DEAD_LETTER_STREAM,
            subjects=[DEAD_LETTER_PREFIX + ".>"],
            storage=api.StorageType.FILE,
            max_age=DEAD_LETTER_MAX_AGE,
            max_msgs=DEAD_LETTER_MAX_MSGS,
        )
        with translated(DEAD_LETTER_STREAM, self._timeout):
            try:
                await self._js.stream_info(DEAD_LETTER_STREAM)
            except nats.js.errors.NotFoundError:
                try:
                    await self._js.add_stream(config)
                except nats.js.errors.BadRequestError:
                    # Another consumer created it first.
                    await self._js.stream_info(DEAD_LETTER_STREAM)
        self._dead_letters_ready = True

    async def _dead_letter(self, letter: DeadLetter, msg: Msg) -> bool:
        """Stores `letter`; True once stored."""
        try:
            with translated(letter.subject, self._timeout):
                await self._js.publish(letter.subject, msg.data, headers=letter.headers())
        except Unavailable as error:
            _log.warning("event.dead_letter_delayed", error=str(error))
            dead_letters.not_stored(letter)
            return False
        dead_letters.stored(letter)
        return True

    async def _deliver(self, handler: EventHandler, consumer: str, msg: Msg) -> None:
        attempt = msg.metadata.num_delivered
        try:
            event = CloudEvent.from_json(msg.data)
        except Invalid as exc:
            _log.error("dropping a malformed event", subject=msg.subject, error=str(exc))
            await quietly(msg.term())
            return
        with structlog.contextvars.bound_contextvars(subject=msg.subject, event_id=event.id):
            try:
                await handler(event)
            except Exception as error:
                if attempt >= self._options.event_max_deliver:
                    _log.error("event handler failed; dead letter", attempts=attempt, exc_info=True)
                    letter = DeadLetter(consumer, event, reason_of(error), attempt)
                    if await self._dead_letter(letter, msg):
                        await quietly(msg.term())
                    else:
                        await quietly(msg.nak(delay=redelivery_delay(attempt)))
                else:
                    _log.warning(
                        "event handler failed; redelivering", attempt=attempt, exc_info=True
                    )
                    await quietly(msg.nak(delay=redelivery_delay(attempt)))
                return
        await quietly(msg.ack())


def _smaller(max_bytes: int | None, refusal: nats.js.errors.APIError) -> int | None:
    """The next limit to try after the server refused `max_bytes` for want of room (half of
    it, not below the floor); None when the refusal is not about room or the floor was had."""
    if refusal.err_code not in NO_ROOM_CODES or max_bytes is None or max_bytes <= 0:
        return None
    floor = min(EVENT_STREAM_FLOOR, max_bytes)
    return None if max_bytes <= floor else max(floor, max_bytes // 2)
