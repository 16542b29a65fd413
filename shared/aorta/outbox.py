"""At-least-once domain events for every service: stage with the change, publish after.

A service that changes state never publishes its event straight onto the bus, where a bus
outage or a crash between the write and the publish would lose it. It stages the event in the
state store first, in one of two ways, and an `Outbox` publishes what is staged:

- **In the changed document** (inserts and updates of one document): `staged` adds the event
  to the document's `outbox` field (and sets `outbox_pending`) before `insert`, and `staging`
  wraps the change `aorta.store.modify_document` applies, so the event is stored in the same
  atomic write as the change, or not at all. Guarantee: the event is published if and only if
  the change was stored.
- **Apart, in the `event_outbox` collection** (a change that is not one document write: a
  deletion, a record kept in another collection): `Outbox.stage_apart` stores the event before
  the change, with the state (creation time and version, or absent) the changed document had
  then. A writer that sees its change fail discards the entry. The replay publishes an entry
  older than `APART_GRACE` when the document's state after it (what the next entry staged for
  the same document found, else the document now) differs: the change was made; and discards
  it when the state is as it was: the writer died before its change. Guarantee: the event of
  a change that was made is always published; the event of one whose writer died before making
  it is published only when the document was changed in another way before a replay judged it.

After the change, the writer `flush`es (or `publish_apart`s): the events are published in order
and exactly those published are removed. A writer about to change the document again may leave
that removal to its next write (`flush(..., later=True)`, then `staging`'s `published`): a
chain of changes then costs one write each, not two; the outbox publishes none of those again,
and a replay removes what is left after `LEAVE_SECONDS`. An `Outbox` also `replay`s the pending
events of the collections it `watch`es, at the service's start and every `REPLAY_INTERVAL`, so
an event whose bus was down or whose writer died is published late. A bus failure never fails
the change: it is logged (`outbox.event_delayed`) and the event stays pending. Only an event
the bus can never take (`Invalid`: above the message limit) is dropped, logged as
`outbox.event_lost`, so that it cannot hold back the events after it forever.

An event keeps its id however often it is published, and the bus publishes with the id as
`Nats-Msg-Id`, so JetStream stores a replay within its duplicate window once; beyond it (a
writer that died between the publish and the removal, two replicas replaying at once) a
consumer may see an event twice and must treat the CloudEvent id as the deduplication key
(docs/events.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from collections.abc import Set as AbstractSet
from contextlib import aclosing
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from aorta.bus import Bus, CloudEvent
from aorta.errors import AortaError, Invalid, NotFound
from aorta.logger import get_logger
from aorta.outbox_staging import (
    OUTBOX_FIELD,
    PENDING_FIELD,
    event_document,
    event_from_document,
    staged,
    staging,
    staging_record,
)
from aorta.store import Collection, Document, StateStore, kept_changing, modify_document
from aorta.timestamps import to_iso, utcnow

__all__ = [
    "APART_COLLECTION",
    "APART_GRACE",
    "LEAVE_SECONDS",
    "OUTBOX_FIELD",
    "PENDING_FIELD",
    "REPLAY_INTERVAL",
    "Outbox",
    "event_document",
    "event_from_document",
    "publish_staged",
    "staged",
    "staging",
    "staging_record",
]

log = get_logger(__name__)

APART_COLLECTION = "event_outbox"
"""Events staged apart from the change they describe (`Outbox.stage_apart`)."""

APART_GRACE = 60.0
"""Seconds an event staged apart is left to its writer before a replay judges it."""

REPLAY_INTERVAL = 30.0
"""Seconds between two replays of a running service (`Outbox.run`)."""

LEAVE_SECONDS = 60.0
"""Seconds an event published and left staged for its document's next write
(`Outbox.flush(..., later=True)`) may stay there before a replay removes it. With a replay's
interval added, below JetStream's duplicate window (two minutes): another replica that finds
it staged and publishes it again meanwhile is deduplicated by the bus."""


async def publish_staged(bus: Bus, document: Mapping[str, Any], *, log_as: str = "outbox") -> bool:
    """Publishes the staged event `document`; True once the bus took it, or once it was
    dropped because no bus ever could (`Invalid`: above the message limit), logged as
    `<log_as>.event_lost`. False when the bus refused it for now (logged as
    `<log_as>.event_delayed`): it stays staged. Never raises the bus's errors."""
    try:
        await bus.publish_event(event_from_document(document))
    except AortaError as error:
        lost = isinstance(error, Invalid)
        report = log.error if lost else log.warning
        report(
            f"{log_as}.event_{'lost' if lost else 'delayed'}",
            event_id=document.get("id"),
            type=document.get("type"),
            error=str(error),
        )
        return lost
    return True


class Outbox:
    """Publishes staged events, then removes them (module docstring); one per service."""

    def __init__(
        self,
        bus: Bus,
        store: StateStore,
        *,
        service: str,
        grace: float = APART_GRACE,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`service` names the entries this outbox stages apart (each replays only its own);
        `grace` and `clock` are there for tests."""
        self._bus = bus
        self._grace = grace
        self._clock = clock
        self._store = store
        self._apart = store.collection(APART_COLLECTION)
        self._service = service
        self._watched: dict[str, Collection] = {}
        self._written: dict[str, Callable[[Document], object]] = {}
        self._left: dict[tuple[str, str], dict[str, datetime]] = {}
        """Per (collection, document id), the events published and left staged, with when."""

    async def watch(
        self, collection: Collection, *, written: Callable[[Document], object] | None = None
    ) -> None:
        """Has `replay` publish the pending events of `collection`; creates the indexes.
        `written` is told every document of it this outbox writes (a removal of events), for
        a repository that keeps copies of what it wrote."""
        await collection.ensure_index([PENDING_FIELD, "id"])
        await self._apart.ensure_index(["service", "staged", "id"])
        await self._apart.ensure_index(["collection", "document", "staged"])
        self._watched[collection.name] = collection
        if written is not None:
            self._written[collection.name] = written

    def left(self, collection: Collection, id: str) -> frozenset[str]:
        """The events of document `id` this outbox published and left staged (`flush(...,
        later=True)`): the writer's next change of it removes them (`staging`'s `published`)
        and then says so (`removed`)."""
        return frozenset(self._left.get((collection.name, id), ()))

    def removed(self, collection: Collection, id: str, events: AbstractSet[str]) -> None:
        """A write of document `id` removed `events` (from `left`) from its outbox."""
        key = (collection.name, id)
        left = self._left.get(key)
        if left is None:
            return
        for event_id in events:
            left.pop(event_id, None)
        if not left:
            del self._left[key]

    async def flush(
        self, collection: Collection, document: Mapping[str, Any], *, later: bool = False
    ) -> bool:
        """Publishes `document`'s pending events in order, then removes the published ones
        from it (other writers may have staged more meanwhile). Stops at the first the bus
        does not take. Returns whether none was left for that reason; store and bus errors
        are logged, never raised (the change itself is stored). Events this outbox published
        and left staged are not published again, and are removed with the rest.

        With `later`, the published events stay staged for the writer's next change of the
        document to remove (`left`), or a replay after `LEAVE_SECONDS`.

        The removal's write starts from `document` when it carries its stored `version` (the
        document a write just returned), without reading it again: a document changed since
        only loses that race, and the removal is made again on the document read afresh."""
        key = (collection.name, str(document["id"]))
        left = self._left.get(key, {})
        done: list[str] = []
        delivered = True
        for event in document.get(OUTBOX_FIELD, ()):
            if event["id"] in left:
                continue
            if not await self._publish(event):
                delivered = False
                break
            done.append(event["id"])
        if later:
            if done:
                self._left.setdefault(key, {}).update(dict.fromkeys(done, self._clock()))
            return delivered
        gone = frozenset(done) | left.keys()
        if gone and await self._clear(collection, document, gone):
            self.removed(collection, key[1], gone)
        return delivered

    async def stage_apart(
        self,
        event: CloudEvent,
        collection: Collection,
        document_id: str,
        before: Mapping[str, Any] | None,
    ) -> Document:
        """Stores `event` in the `event_outbox` collection before a change of document
        `document_id` of `collection`, which is `before` as read (None: absent), together with
        the events still pending in it (a deletion would lose them); raises the store's errors
        (the change must not be made then). A deletion must expect the version read, or know
        that no event can be staged in the document meanwhile. Returns the entry for
        `publish_apart` (or `discard_apart`, when the change fails)."""
        entry: Document = {
            "id": event.id,
            "service": self._service,
            "collection": collection.name,
            "document": document_id,
            "before": _state(before),
            "staged": to_iso(self._clock()),
            "events": [*self._unpublished(collection, before), event_document(event)],
        }
        return await self._apart.insert(entry)

    async def publish_apart(self, entry: Mapping[str, Any]) -> bool:
        """Publishes the events of an entry `stage_apart` stored, in order, after its change,
        and removes it; when the bus does not take one, the replay publishes them later (the
        ones taken again, under their ids). Never raises."""
        for event in entry["events"]:
            if not await self._publish(event):
                return False
        await self._forget(str(entry["id"]))
        return True

    async def discard_apart(self, entry: Mapping[str, Any]) -> None:
        """Removes an entry `stage_apart` stored whose change was not made after all (the
        writer saw it fail); never raises."""
        await self._forget(str(entry["id"]))

    async def replay(self) -> None:
        """Flushes every watched document with pending events, then judges the entries staged
        apart longer than the grace (`APART_GRACE`) ago; stops at the first event the bus
        does not take. Store errors raise."""
        for collection in self._watched.values():
            pending = collection.pages({PENDING_FIELD: True})
            if not await self._each(pending, partial(self._replay_document, collection)):
                return
        self._forget_left()
        judged = to_iso(self._clock() - timedelta(seconds=self._grace))
        entries = self._apart.pages(
            {"service": self._service, "staged": {"$lte": judged}}, key=("staged",)
        )
        await self._each(entries, self._replay_apart)

    async def _each(
        self,
        pages: AsyncGenerator[list[Document], None],
        replay: Callable[[Document], Awaitable[bool]],
    ) -> bool:
        """`replay`s the documents of `pages` (read a page at a time, so a long backlog is
        never held at once) until one returns False; returns whether none did."""
        async with aclosing(pages):
            async for page in pages:
                for document in page:
                    if not await replay(document):
                        return False
        return True

    async def run(self, stopped: asyncio.Event, interval: float = REPLAY_INTERVAL) -> None:
        """Replays now and every `interval` seconds until `stopped` is set; a replay that
        fails (the store is away) is logged and tried again at the next interval."""
        while not stopped.is_set():
            try:
                await self.replay()
            except AortaError as error:
                log.warning("outbox.replay_failed", service=self._service, error=str(error))
            # asyncio.timeout: wait_for may swallow a cancellation on Python 3.11.
            try:
                async with asyncio.timeout(interval):
                    await stopped.wait()
            except TimeoutError:
                continue

    def start_replaying(self, interval: float = REPLAY_INTERVAL) -> Callable[[], Awaitable[None]]:
        """Starts `run` as a task; returns what stops it (for `RunningService.on_stop`)."""
        stopped = asyncio.Event()
        task = asyncio.create_task(self.run(stopped, interval), name=f"outbox:{self._service}")

        async def stop() -> None:
            stopped.set()
            await task

        return stop

    async def _replay_document(self, collection: Collection, document: Document) -> bool:
        # Left staged for the next write a moment ago: not the replay's to remove yet.
        left = self._left.get((collection.name, str(document["id"])), {})
        events = [left.get(e.get("id", "")) for e in document.get(OUTBOX_FIELD, ())]
        recent = self._clock() - timedelta(seconds=LEAVE_SECONDS)
        if events and all(when is not None and when > recent for when in events):
            return True
        return await self.flush(collection, document)

    def _forget_left(self) -> None:
        """Forgets what was left staged long ago, after a replay removed what was still
        there: another writer removed the rest, or deleted its document. Bounds the memory."""
        expired = self._clock() - timedelta(seconds=2 * LEAVE_SECONDS)
        for key, left in list(self._left.items()):
            if max(left.values()) < expired:
                del self._left[key]

    def _unpublished(
        self, collection: Collection, document: Mapping[str, Any] | None
    ) -> list[Document]:
        """The events staged in `document` that this outbox did not publish yet."""
        if document is None:
            return []
        left = self._left.get((collection.name, str(document["id"])), {})
        return [e for e in document.get(OUTBOX_FIELD, ()) if e.get("id") not in left]

    async def _replay_apart(self, entry: Document) -> bool:
        # The state the change left: what the next change of the document staged apart
        # found, if one was staged since, else what the document is now.
        same = {"collection": entry["collection"], "document": entry["document"]}
        later = await self._apart.find(
            {**same, "staged": {"$gt": entry["staged"]}}, sort=[("staged", 1)], limit=1
        )
        if later:
            after = later[0]["before"]
        else:
            name = entry["collection"]
            collection = self._watched.get(name) or self._store.collection(name)
            after = _state(await collection.find_one({"id": entry["document"]}))
        if after != entry["before"]:
            return await self.publish_apart(entry)
        # The change never happened (its writer failed before making it): nothing to tell.
        log.info("outbox.staged_change_not_made", event_id=entry["id"])
        await self._forget(str(entry["id"]))
        return True

    async def _publish(self, document: Mapping[str, Any]) -> bool:
        return await publish_staged(self._bus, document)

    async def _clear(
        self, collection: Collection, known: Mapping[str, Any], published: frozenset[str]
    ) -> bool:
        """Removes the `published` events from document `known`; whether they are gone."""
        id = str(known["id"])
        unread = [dict(known)] if "version" in known else []

        async def read() -> Document:
            return unread.pop() if unread else await collection.get(id)

        def without(document: Document) -> Document:
            left = [e for e in document.get(OUTBOX_FIELD, ()) if e.get("id") not in published]
            return {**document, OUTBOX_FIELD: left, PENDING_FIELD: bool(left)}

        try:
            stored = await modify_document(
                collection,
                id,
                without,
                missing=lambda: NotFound(f"{collection.name} {id} is gone"),
                gave_up=kept_changing(f"{collection.name} {id}", code=0),
                read=read,
            )
        except NotFound:
            return True
        except AortaError as error:
            # The events stay staged: a replay publishes them again under the same ids.
            log.warning("outbox.event_not_cleared", events=len(published), error=str(error))
            return False
        written = self._written.get(collection.name)
        if written is not None:
            written(stored)
        return True

    async def _forget(self, id: str) -> None:
        try:
            await self._apart.delete(id)
        except NotFound:
            return
        except AortaError as error:
            log.warning("outbox.event_not_cleared", events=1, error=str(error))


def _state(document: Mapping[str, Any] | None) -> str | None:
    """Which incarnation and version `document` is at (None: absent), as staged entries
    compare it: the creation time tells a re-created document from the one deleted."""
    if document is None:
        return None
    return f"{document['created_at']}#{document['version']}"
