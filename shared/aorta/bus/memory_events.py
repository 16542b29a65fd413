"""Stored events delivered by the in-memory bus (`aorta.bus.memory`): a durable consumer's
position, and the consumer that delivers from it one event at a time, retrying a failing
handler and then keeping the event as a dead letter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from aorta.bus import dead_letters
from aorta.bus.dead_letters import DeadLetter, reason_of
from aorta.bus.events import CloudEvent
from aorta.bus.port import EventHandler, redelivery_delay, subject_matches
from aorta.logger import get_logger
from aorta.tasks import GuardedTasks

_log = get_logger(__name__)


@dataclass
class DurablePosition:
    """Where a consumer resumes: its filter, the offset of the next stored event, and whether
    a subscription holds it now."""

    subject_filter: str
    offset: int
    bound: bool = False


class EventConsumer:
    """Delivers the network's events from a position, one at a time, in one guarded task."""

    def __init__(
        self,
        events: list[tuple[str, bytes]],
        state: DurablePosition,
        handler: EventHandler,
        max_deliver: int,
        name: str,
        dead_letter: Callable[[DeadLetter], None],
    ) -> None:
        self._events, self._state, self._name = events, state, name
        self._dead_letter = dead_letter
        self._handler, self._max_deliver = handler, max_deliver
        self.woken = asyncio.Event()
        self._stopping = False
        self._tasks = GuardedTasks(f"aorta.bus.events:{state.subject_filter}")
        self._tasks.spawn(self._run())

    async def stop(self, grace: float) -> None:
        self._stopping = True
        self.woken.set()
        await self._tasks.wait(grace)

    async def _run(self) -> None:
        events = self._events
        while not self._stopping:
            if self._state.offset >= len(events):
                self.woken.clear()
                await self.woken.wait()
                continue
            subject, body = events[self._state.offset]
            if subject_matches(self._state.subject_filter, subject):
                await self._deliver(subject, CloudEvent.from_json(body))
            # Acknowledged: a durable consumer resumes after this event.
            self._state.offset += 1

    async def _deliver(self, subject: str, event: CloudEvent) -> None:
        with structlog.contextvars.bound_contextvars(subject=subject, event_id=event.id):
            for attempt in range(1, self._max_deliver + 1):
                try:
                    await self._handler(event)
                    return
                except Exception as error:
                    if attempt >= self._max_deliver:
                        _log.error(
                            "event handler failed; dead letter", attempts=attempt, exc_info=True
                        )
                        letter = DeadLetter(self._name, event, reason_of(error), attempt)
                        self._dead_letter(letter)
                        dead_letters.stored(letter)
                        return
                    _log.warning(
                        "event handler failed; redelivering", attempt=attempt, exc_info=True
                    )
                    await asyncio.sleep(redelivery_delay(attempt))
