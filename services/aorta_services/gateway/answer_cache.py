"""Read answers kept at the gateway while the thing they describe stays as it is.

Under load, a read answered by a service costs two bus round trips through nats-server for a
few hundred bytes; a job, payload or pipeline that clients poll rarely changes. The gateway
keeps an answer only when its service marks it `settled` (every later change of the answer
comes with one of the thing's events), and drops it as soon as anything could make it wrong:

- any event of the thing (`aorta.events.<entity>.<id>.>`, read live on the gateway's own bus
  connection), and any command for it passing through this gateway (`kept_answers.changing`);
- any gap in what the gateway hears (`Bus.on_gap`: the connection dropped or came back, the
  server dropped messages of a slow subscriber): everything goes;
- an answer that was being fetched while its thing's entries were dropped is not kept, since
  it may have been read before the change;
- `MAX_AGE` after it was fetched at the latest, which bounds what a change whose event is
  delayed (its writer lost the bus; the outbox replays it) can leave behind.

Until the event subscription is up, nothing is kept. An answer is kept by the thing's id and a
key of the request's effective content (one thing may be asked several ways); dropping the
thing drops them all. A cache holds at most `max_entries` answers and `max_bytes` of them, the
least recently read dropped first. The guard admits each call before its handler asks the
cache, so a cached answer reaches only callers allowed to read it; the reads kept here are
open to every admitted caller, so one answer serves them all.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aorta import contracts
from aorta.bus import Bus, Subscription
from aorta.bus_permissions import EVENTS_PREFIX
from aorta.logger import get_logger

log = get_logger(__name__)

MAX_ENTRIES = 10_000
MAX_BYTES = 32 * 1024 * 1024
"""Bytes of answers one cache holds at most (as its `size` function counts them)."""
MAX_AGE = 5.0
"""Seconds an answer is kept at most, events or not."""

V = TypeVar("V")


@dataclass(frozen=True)
class _Entry(Generic[V]):
    answer: V
    fetched: float
    size: int


class Fetch(Generic[V]):
    """One answer being fetched for a thing: `keep` stores it unless the thing's entries were
    dropped meanwhile."""

    def __init__(self, cache: AnswerCache[V], entity_id: str) -> None:
        self._cache = cache
        self.entity_id = entity_id
        self.started = cache.clock()
        self.spoiled = not cache.live

    def keep(self, answer: V, key: bytes = b"") -> None:
        """Stores `answer` under `key` unless something about the thing was heard since the
        fetch began. The caller has checked that the answer is settled and is the one of the
        thing this fetch named (its id as the thing's events spell it)."""
        if not self.spoiled:
            self._cache.store(
                self.entity_id, key, _Entry(answer, self.started, self._cache.size(answer))
            )


class AnswerCache(Generic[V]):
    """Settled answers about one kind of thing (`entity`: job, payload, pipeline), by its id
    and a request key (module docstring)."""

    def __init__(
        self,
        entity: str,
        *,
        size: Callable[[V], int] = lambda answer: 1,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.entity = entity
        self.size = size
        self.clock = clock
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._entries: OrderedDict[tuple[str, bytes], _Entry[V]] = OrderedDict()
        self._keys: dict[str, set[bytes]] = {}
        self._bytes = 0
        self._fetches: dict[str, set[Fetch[V]]] = {}
        self._subscription: Subscription | None = None
        self._stop_watching: Callable[[], None] | None = None

    @property
    def events(self) -> str:
        """The subjects of the events that drop answers."""
        return f"{EVENTS_PREFIX}.{self.entity}.>"

    @property
    def live(self) -> bool:
        """Whether the events reach the cache, so that it may keep answers."""
        return self._subscription is not None

    async def start(self, bus: Bus) -> None:
        """Follows the entity's events and the gaps of `bus`; answers are kept from now on."""
        self._stop_watching = bus.on_gap(self.clear)
        self._subscription = await bus.subscribe(self.events, self._heard)

    async def stop(self) -> None:
        """Stops following the events and forgets every answer."""
        subscription, self._subscription = self._subscription, None
        if self._stop_watching is not None:
            self._stop_watching()
            self._stop_watching = None
        self.clear()
        if subscription is not None:
            await subscription.drain()

    def get(self, entity_id: str, key: bytes = b"") -> V | None:
        """The kept answer for `entity_id` and `key`, if there is one and it is young enough."""
        entry = self._entries.get((entity_id, key))
        if entry is None:
            return None
        if self.clock() - entry.fetched > self._max_age:
            self._remove(entity_id, key)
            return None
        self._entries.move_to_end((entity_id, key))
        return entry.answer

    @contextmanager
    def fetching(self, entity_id: str) -> Iterator[Fetch[V]]:
        """A `Fetch` of an answer about `entity_id`, spoiled by anything that drops the
        thing's entries before it ends."""
        fetch = Fetch(self, entity_id)
        pending = self._fetches.setdefault(entity_id, set())
        pending.add(fetch)
        try:
            yield fetch
        finally:
            pending.discard(fetch)
            if not pending:
                self._fetches.pop(entity_id, None)

    def store(self, entity_id: str, key: bytes, entry: _Entry[V]) -> None:
        if not self.live or entry.size > self._max_bytes:
            return
        self._remove(entity_id, key)
        self._entries[entity_id, key] = entry
        self._keys.setdefault(entity_id, set()).add(key)
        self._bytes += entry.size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            (oldest_id, oldest_key), _ = next(iter(self._entries.items()))
            self._remove(oldest_id, oldest_key)

    def drop(self, entity_id: str) -> None:
        """Forgets every answer about `entity_id`, and spoils the fetches of it under way."""
        for key in tuple(self._keys.get(entity_id, ())):
            self._remove(entity_id, key)
        for fetch in self._fetches.get(entity_id, ()):
            fetch.spoiled = True

    def clear(self) -> None:
        """Forgets every answer and spoils every fetch under way (a gap: events may be lost)."""
        if self._entries:
            log.info("gateway.answer_cache_cleared", entity=self.entity, entries=len(self._entries))
        self._entries.clear()
        self._keys.clear()
        self._bytes = 0
        for pending in self._fetches.values():
            for fetch in pending:
                fetch.spoiled = True

    def _remove(self, entity_id: str, key: bytes) -> None:
        entry = self._entries.pop((entity_id, key), None)
        if entry is None:
            return
        self._bytes -= entry.size
        keys = self._keys[entity_id]
        keys.discard(key)
        if not keys:
            del self._keys[entity_id]

    async def _heard(self, data: bytes, subject: str) -> None:
        # aorta.events.<entity>.<id>.<event...>: the id is the fourth token.
        tokens = subject.split(".", 4)
        if len(tokens) > 3:
            self.drop(tokens[3])
        else:
            self.clear()


@dataclass(frozen=True)
class KeptStream:
    """A streamed answer as the client gets it: the thing's owner (initial metadata) and each
    message, serialized."""

    owner: str
    messages: tuple[bytes, ...]


def _status_size(answer: contracts.JobStatus) -> int:
    return answer.status.ByteSize() + len(answer.owner) + len(answer.trace_id) + len(answer.waiting)


def _stream_size(answer: KeptStream) -> int:
    return len(answer.owner) + sum(len(message) for message in answer.messages)


@dataclass
class KeptAnswers:
    """The gateway's caches: Jobs.Status by job, Payloads.Details by payload and
    Pipelines.Details by pipeline. Ones never started keep nothing."""

    jobs: AnswerCache[contracts.JobStatus] = field(
        default_factory=lambda: AnswerCache("job", size=_status_size)
    )
    payloads: AnswerCache[KeptStream] = field(
        default_factory=lambda: AnswerCache("payload", size=_stream_size)
    )
    pipelines: AnswerCache[KeptStream] = field(
        default_factory=lambda: AnswerCache("pipeline", size=_stream_size)
    )

    def caches(self) -> tuple[AnswerCache[contracts.JobStatus] | AnswerCache[KeptStream], ...]:
        return (self.jobs, self.payloads, self.pipelines)

    async def start(self, bus: Bus) -> None:
        """Starts following each cache's events."""
        for cache in self.caches():
            await cache.start(bus)

    async def stop(self) -> None:
        """Stops every cache."""
        for cache in self.caches():
            await cache.stop()
