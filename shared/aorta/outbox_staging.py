"""How an event is staged in the document it describes (`aorta.outbox` publishes it): the
outbox fields, the copies `insert` stores and the changes `modify_document` applies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Protocol, TypeVar

from aorta.bus import CloudEvent
from aorta.store import Document

OUTBOX_FIELD = "outbox"
"""A document's staged events: their CloudEvents JSON objects, oldest first."""

PENDING_FIELD = "outbox_pending"
"""True while a document's outbox holds events (indexed, so a replay finds them cheaply)."""


def event_document(event: CloudEvent) -> Document:
    """`event` as the JSON object it is published as, for a store document. Not encoded to
    check it: `make_event` checked that its data is JSON."""
    return event.to_document()


def event_from_document(document: Mapping[str, Any]) -> CloudEvent:
    """The event a staged document holds, validated as a consumer would (`Invalid` if not)."""
    return CloudEvent.from_document(document)


def staged(document: Mapping[str, Any], *events: CloudEvent) -> Document:
    """A copy of `document` with `events` appended to its outbox (for `insert`)."""
    outbox = [*document.get(OUTBOX_FIELD, ()), *(event_document(e) for e in events)]
    return {**document, OUTBOX_FIELD: outbox, PENDING_FIELD: bool(outbox)}


def staging(
    change: Callable[[Document], Document],
    build: Callable[[Document], CloudEvent | None],
    *,
    published: AbstractSet[str] = frozenset(),
) -> Callable[[Document], Document]:
    """`change` for `modify_document`, keeping the stored outbox (records that know nothing of
    it drop it) but for the `published` events (`Outbox.left`), and appending the event `build`
    makes of the changed document, if any. A `change` that raises stages nothing; one re-run
    after a lost race stages the winner's."""

    def changed(before: Document) -> Document:
        after = change(before)
        outbox = [e for e in before.get(OUTBOX_FIELD, ()) if e.get("id") not in published]
        kept = {**after, OUTBOX_FIELD: outbox}
        event = build(after)
        return staged(kept, event) if event is not None else staged(kept)

    return changed


class _Record(Protocol):
    def to_document(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Record)


def staging_record(
    load: Callable[[Document], R],
    change: Callable[[R], R],
    event: Callable[[R], CloudEvent],
    *,
    published: AbstractSet[str] = frozenset(),
) -> Callable[[Document], Document]:
    """`staging` for a repository of records: `change` of the record `load` reads from the
    stored document, with the `event` of the changed record staged (and the `published`
    events removed)."""
    return staging(
        lambda document: change(load(document)).to_document(),
        lambda d: event(load(d)),
        published=published,
    )
