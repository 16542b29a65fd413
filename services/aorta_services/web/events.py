"""The platform's CloudEvents, fanned out to the browsers that follow them.

The console subscribes once to `aorta.events.>` (as the read-only `events` bus user) and hands
each event to every open stream. A stream filters what its user may see: viewers and admins
see every event; a `user` sees its own jobs' events (the job's owner, asked of the platform
once per job and remembered; a `user` may not read another's job, so its refusal is remembered
too, once per job and token) and pipeline and model events, never payload events nor pipeline
service events (a service is shared by the jobs of every user: its events name them all, and
a failed one's message ends with its last log lines). Each stream
buffers a bounded number of events; one that falls behind loses the oldest and is told with a
`resync` event, so the page reloads what it shows instead of missing a change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aorta.bus import Bus, Subscription
from aorta.bus.events import CloudEvent
from aorta.bus_permissions import EVENTS_PREFIX
from aorta.errors import AortaError
from aorta.logger import get_logger
from aorta_services.web.platform_client import Caller
from aorta_services.web.problems import ApiError

log = get_logger(__name__)

K = TypeVar("K")
V = TypeVar("V")

BUFFERED = 256
"""Events a stream holds for a browser that reads slowly."""
REMEMBERED_OWNERS = 10_000
USERS_NEVER_SEE = frozenset({"payload", "service"})
"""Entities whose events carry other users' things, which a `user`'s stream never gets."""

OwnerLookup = Callable[[str, str | None], Awaitable[str]]
"""(job id, token) → the job's owner; raises `ApiError` when the token may not read it."""


@dataclass(eq=False)
class Stream:
    """One browser's stream: what it follows and the events waiting to be sent (compared and
    hashed by identity, as members of the hub's set)."""

    caller: Caller
    token: str | None
    job_id: str | None = None
    queue: asyncio.Queue[CloudEvent | None] = field(default_factory=lambda: asyncio.Queue(BUFFERED))
    lagged: bool = False

    def offer(self, event: CloudEvent) -> None:
        """Queues `event` if the stream follows its job; drops the oldest when full."""
        if self.job_id is not None and not (event.entity == "job" and event.subject == self.job_id):
            return
        if self.queue.full():
            self.lagged = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(event)

    def end(self) -> None:
        """Ends the stream (the console stops): the reader receives None."""
        with contextlib.suppress(asyncio.QueueEmpty):
            while self.queue.full():
                self.queue.get_nowait()
        self.queue.put_nowait(None)


class EventHub:
    """The one bus subscription, the open streams, and the job owners learnt so far."""

    def __init__(self, owner_of: OwnerLookup) -> None:
        self._owner_of = owner_of
        self._streams: set[Stream] = set()
        self._owners: OrderedDict[str, str] = OrderedDict()
        # (job id, token) the platform refused: asking again would only be refused (and
        # audited) again, for every event of every other user's job.
        self._refused: OrderedDict[tuple[str, str | None], None] = OrderedDict()
        self._subscription: Subscription | None = None

    async def start(self, bus: Bus) -> None:
        self._subscription = await bus.subscribe(f"{EVENTS_PREFIX}.>", self._received)

    async def stop(self) -> None:
        for stream in list(self._streams):
            stream.end()
        if self._subscription is not None:
            await self._subscription.drain()
            self._subscription = None

    def open(self, caller: Caller, token: str | None, job_id: str | None) -> Stream:
        stream = Stream(caller, token, job_id)
        self._streams.add(stream)
        return stream

    def close(self, stream: Stream) -> None:
        self._streams.discard(stream)

    async def _received(self, data: bytes, subject: str) -> None:
        try:
            event = CloudEvent.from_json(data)
        except AortaError as error:
            log.warning("console.event_unreadable", subject=subject, error=str(error))
            return
        if event.entity == "job" and event.event == "deleted":
            self._owners.pop(event.subject, None)
            for refused in [key for key in self._refused if key[0] == event.subject]:
                del self._refused[refused]
        for stream in self._streams:
            stream.offer(event)

    async def visible(self, stream: Stream, event: CloudEvent) -> bool:
        """Whether `stream`'s user may see `event`."""
        if stream.caller.sees_every_job:
            return True
        if event.entity in USERS_NEVER_SEE:
            return False
        if event.entity != "job":
            return True
        return await self.job_owner(event.subject, stream.token) == stream.caller.subject

    async def job_owner(self, job_id: str, token: str | None) -> str | None:
        """The subject that created `job_id` ("" for none), asked of the platform with
        `token` once and remembered; None when the token may not read the job (or it is
        gone)."""
        owner = self._owners.get(job_id)
        if owner is None:
            if (job_id, token) in self._refused:
                return None
            try:
                owner = await self._owner_of(job_id, token)
            except ApiError as error:
                if error.code == "PERMISSION_DENIED":
                    remember(self._refused, (job_id, token), None)
                return None
            remember(self._owners, job_id, owner)
        return owner


def remember(memory: OrderedDict[K, V], key: K, value: V) -> None:
    """Adds `key` to `memory`, forgetting the oldest beyond `REMEMBERED_OWNERS`."""
    memory[key] = value
    while len(memory) > REMEMBERED_OWNERS:
        memory.popitem(last=False)
