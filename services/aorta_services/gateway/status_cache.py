"""Jobs.Status answers kept at the gateway while the job stays as it is.

Under load, a Status answered by the scheduler costs two bus round trips through nats-server
for a few hundred bytes; a job that clients poll rarely changes. The gateway keeps an answer
only when the scheduler marks it `settled` (the job is created or stopped: every later change
of its answer comes with one of the job's events, `job.metadata_changed` included), and drops
it as soon as anything could make it wrong:

- any event of the job (`aorta.events.job.<id>.>`, read live on the gateway's own bus
  connection), and any command for it passing through this gateway (before and after it);
- any gap in what the gateway hears (`Bus.on_gap`: the connection dropped or came back, the
  server dropped messages of a slow subscriber): everything goes;
- an answer that was being fetched while its job's entry was dropped is not kept, since it
  may have been read before the change;
- `MAX_AGE` after it was fetched at the latest, which bounds what a change whose event is
  delayed (its writer lost the bus; the leader replays it within seconds) can leave behind.

Until the event subscription is up, nothing is kept. The cache holds at most `MAX_ENTRIES`
jobs, the least recently read dropped first. Status is open to every admitted caller (the
guard checks the role before the handler runs, for cached answers too), so an answer is the
same for every caller and is shared.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aorta import contracts
from aorta.bus import Bus, Subscription
from aorta.bus_permissions import EVENTS_PREFIX
from aorta.logger import get_logger

log = get_logger(__name__)

JOB_EVENTS = f"{EVENTS_PREFIX}.job.>"
MAX_ENTRIES = 10_000
MAX_AGE = 5.0
"""Seconds an answer is kept at most, events or not."""


@dataclass(frozen=True)
class _Entry:
    answer: contracts.JobStatus
    fetched: float


class Fetch:
    """One answer being fetched for a job: `keep` stores it unless the job's entry was
    dropped meanwhile."""

    def __init__(self, cache: StatusCache, job_id: str) -> None:
        self._cache = cache
        self.job_id = job_id
        self.started = cache.clock()
        self.spoiled = not cache.live

    def keep(self, answer: contracts.JobStatus) -> None:
        """Stores `answer` if it is settled, is the job's this fetch asked for, and nothing
        about the job was heard since the fetch began."""
        if self.spoiled or not answer.settled or answer.status.job_id.value != self.job_id:
            return
        self._cache.store(self.job_id, _Entry(answer, self.started))


class StatusCache:
    """Settled Status answers by job id (module docstring)."""

    def __init__(
        self,
        *,
        max_entries: int = MAX_ENTRIES,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self._max_entries = max_entries
        self._max_age = max_age
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._fetches: dict[str, set[Fetch]] = {}
        self._subscription: Subscription | None = None
        self._stop_watching: Callable[[], None] | None = None

    @property
    def live(self) -> bool:
        """Whether the job events reach the cache, so that it may keep answers."""
        return self._subscription is not None

    async def start(self, bus: Bus) -> None:
        """Follows the job events and the gaps of `bus`; answers are kept from now on."""
        self._stop_watching = bus.on_gap(self.clear)
        self._subscription = await bus.subscribe(JOB_EVENTS, self._heard)

    async def stop(self) -> None:
        """Stops following the events and forgets every answer."""
        subscription, self._subscription = self._subscription, None
        if self._stop_watching is not None:
            self._stop_watching()
            self._stop_watching = None
        self.clear()
        if subscription is not None:
            await subscription.drain()

    def get(self, job_id: str) -> contracts.JobStatus | None:
        """The kept answer for `job_id`, if there is one and it is young enough."""
        entry = self._entries.get(job_id)
        if entry is None:
            return None
        if self.clock() - entry.fetched > self._max_age:
            del self._entries[job_id]
            return None
        self._entries.move_to_end(job_id)
        return entry.answer

    @contextmanager
    def fetching(self, job_id: str) -> Iterator[Fetch]:
        """A `Fetch` of `job_id`'s answer, spoiled by anything that drops the job's entry
        before it ends."""
        fetch = Fetch(self, job_id)
        pending = self._fetches.setdefault(job_id, set())
        pending.add(fetch)
        try:
            yield fetch
        finally:
            pending.discard(fetch)
            if not pending:
                self._fetches.pop(job_id, None)

    def store(self, job_id: str, entry: _Entry) -> None:
        if not self.live:
            return
        self._entries[job_id] = entry
        self._entries.move_to_end(job_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def drop(self, job_id: str) -> None:
        """Forgets `job_id`'s answer, and spoils the fetches of it under way."""
        self._entries.pop(job_id, None)
        for fetch in self._fetches.get(job_id, ()):
            fetch.spoiled = True

    def clear(self) -> None:
        """Forgets every answer and spoils every fetch under way (a gap: events may be lost)."""
        if self._entries:
            log.info("gateway.status_cache_cleared", entries=len(self._entries))
        self._entries.clear()
        for pending in self._fetches.values():
            for fetch in pending:
                fetch.spoiled = True

    async def _heard(self, data: bytes, subject: str) -> None:
        # aorta.events.job.<job id>.<event...>: the id is the fourth token.
        tokens = subject.split(".", 4)
        if len(tokens) > 3:
            self.drop(tokens[3])
        else:
            self.clear()
