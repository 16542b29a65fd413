"""`modify_document`: the one read-change-write of a document, on every adapter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aorta.errors import Conflict, ErrorCode, Invalid, NotFound
from aorta.store import Document, StateStore, kept_changing, modify_document

GAVE_UP = kept_changing("widget w", code=ErrorCode.PAYLOAD_STORE_ERROR)


def missing() -> Exception:
    return NotFound("no widget w", code=ErrorCode.PAYLOAD_NOT_FOUND)


def without_managed(document: Document) -> Document:
    return {k: v for k, v in document.items() if k not in ("version", "created_at", "updated_at")}


async def test_only_the_changed_fields_are_written_against_the_version_read(
    store: StateStore,
) -> None:
    widgets = store.collection("widgets")
    await widgets.insert({"id": "w", "count": 1, "name": "first"})

    def add_one(document: Document) -> Document:
        return {**without_managed(document), "count": document["count"] + 1}

    stored = await modify_document(widgets, "w", add_one, missing=missing, gave_up=GAVE_UP)
    assert (stored["count"], stored["name"], stored["version"]) == (2, "first", 2)
    assert await widgets.get("w") == stored


async def test_nothing_is_written_when_nothing_changes(store: StateStore) -> None:
    widgets = store.collection("widgets")
    inserted = await widgets.insert({"id": "w", "count": 1})
    stored = await modify_document(widgets, "w", without_managed, missing=missing, gave_up=GAVE_UP)
    assert stored == inserted
    assert (await widgets.get("w"))["version"] == 1


async def test_concurrent_changes_all_land_once_each(store: StateStore) -> None:
    widgets = store.collection("widgets")
    await widgets.insert({"id": "w", "seen": []})

    async def append(item: int) -> None:
        def change(document: Document) -> Document:
            return {**without_managed(document), "seen": [*document["seen"], item]}

        await modify_document(widgets, "w", change, missing=missing, gave_up=GAVE_UP)

    await asyncio.gather(*(append(item) for item in range(5)))
    stored = await widgets.get("w")
    assert sorted(stored["seen"]) == [0, 1, 2, 3, 4]
    assert stored["version"] == 6


async def test_writers_in_one_process_take_turns_and_never_lose_a_race(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each read yields before its caller writes, so writers that did not take turns would all
    # read version 1 and all but one lose. Losing is what a slow group commit turned into
    # giving up: the losers stayed together, one got through per commit (see optimistic.py).
    widgets = store.collection("widgets")
    await widgets.insert({"id": "w", "seen": []})
    read, update = widgets.get, widgets.update
    lost: list[Conflict] = []

    async def yielding_read(id: str) -> Document:
        document = await read(id)
        await asyncio.sleep(0)
        return document

    async def counted_update(id: str, changes: Any, **options: Any) -> Document:
        try:
            return await update(id, changes, **options)
        except Conflict as error:
            lost.append(error)
            raise

    monkeypatch.setattr(widgets, "get", yielding_read)
    monkeypatch.setattr(widgets, "update", counted_update)

    async def append(item: int) -> None:
        def change(document: Document) -> Document:
            return {**without_managed(document), "seen": [*document["seen"], item]}

        await modify_document(widgets, "w", change, missing=missing, gave_up=GAVE_UP)

    await asyncio.gather(*(append(item) for item in range(5)))
    assert lost == []
    stored = await read("w")
    assert sorted(stored["seen"]) == [0, 1, 2, 3, 4]
    assert stored["version"] == 6


async def test_a_refusal_writes_nothing_and_is_not_retried(store: StateStore) -> None:
    widgets = store.collection("widgets")
    await widgets.insert({"id": "w", "count": 1})
    calls: list[Any] = []

    def refuse(document: Document) -> Document:
        calls.append(document["version"])
        raise Conflict("the widget is in use", code=ErrorCode.PAYLOAD_IN_USE)

    with pytest.raises(Conflict, match="in use"):
        await modify_document(widgets, "w", refuse, missing=missing, gave_up=GAVE_UP)
    assert calls == [1]
    assert (await widgets.get("w"))["version"] == 1


async def test_an_absent_document_raises_the_callers_error(store: StateStore) -> None:
    widgets = store.collection("widgets")
    with pytest.raises(NotFound, match="no widget w") as raised:
        await modify_document(widgets, "w", without_managed, missing=missing, gave_up=GAVE_UP)
    assert raised.value.code == ErrorCode.PAYLOAD_NOT_FOUND


async def test_a_custom_read_may_refuse_a_document(store: StateStore) -> None:
    widgets = store.collection("widgets")
    await widgets.insert({"id": "w", "visible": False})

    async def visible_only() -> Document:
        document = await widgets.get("w")
        if not document["visible"]:
            raise missing()
        return document

    with pytest.raises(NotFound, match="no widget w"):
        await modify_document(
            widgets, "w", without_managed, missing=missing, gave_up=GAVE_UP, read=visible_only
        )


async def test_a_change_the_store_refuses_raises_its_error(store: StateStore) -> None:
    widgets = store.collection("widgets")
    await widgets.insert({"id": "w"})
    with pytest.raises(Invalid):
        await modify_document(
            widgets,
            "w",
            lambda document: {**without_managed(document), "": 1},
            missing=missing,
            gave_up=GAVE_UP,
        )
