"""Contract: keyset pages (`Collection.pages`), on every adapter."""

from __future__ import annotations

from typing import Any

import pytest

from aorta.errors import Invalid
from aorta.store import Collection, Document, StateStore
from aorta.store.paging import PAGE_BYTES, key_of

ROWS = 25


async def _jobs(store: StateStore) -> Collection:
    """`ROWS` documents with a number key where pairs share a value (so the id breaks ties),
    an owner and a large-ish field; one whose key is a string, one without the key."""
    jobs = store.collection("jobs")
    for n in range(ROWS):
        await jobs.insert(
            {
                "id": f"j{n:02d}",
                "created": n // 2,
                "owner": "ann" if n % 3 else "bob",
                "body": "x" * 100,
                "metadata": [["k", str(n)]],
            }
        )
    await jobs.insert({"id": "odd", "created": "soon", "owner": "ann"})
    await jobs.insert({"id": "none", "owner": "ann"})
    return jobs


async def _all_pages(collection: Collection, **options: Any) -> list[list[Document]]:
    return [page async for page in collection.pages(**options)]


def _ids(pages: list[list[Document]]) -> list[str]:
    return [document["id"] for page in pages for document in page]


def _numbered() -> list[tuple[int, str]]:
    return [(n // 2, f"j{n:02d}") for n in range(ROWS)]


def _keyed() -> list[str]:
    """Every listed id by key, ascending: the numbers, then the string key."""
    return [id for _, id in sorted(_numbered())] + ["odd"]


async def test_every_document_once_in_order_in_bounded_pages(store: StateStore) -> None:
    jobs = await _jobs(store)
    await jobs.ensure_index(["created", "id"])

    pages = await _all_pages(jobs, filter={"created": {"$gte": 0}}, key=["created"], page_size=4)

    assert [len(page) for page in pages] == [4] * 6 + [1]
    assert _ids(pages) == [id for _, id in sorted(_numbered())]


async def test_descending_pages(store: StateStore) -> None:
    jobs = await _jobs(store)

    pages = await _all_pages(jobs, key=["created"], descending=True, page_size=7)

    assert max(len(page) for page in pages) == 7
    assert _ids(pages) == _keyed()[::-1]


@pytest.mark.parametrize("descending", [False, True])
async def test_numbers_then_strings_across_page_boundaries(
    store: StateStore, descending: bool
) -> None:
    jobs = await _jobs(store)

    pages = await _all_pages(jobs, key=["created"], descending=descending, page_size=1)

    assert _ids(pages) == (_keyed()[::-1] if descending else _keyed())


async def test_a_key_of_strings_and_the_id_alone(store: StateStore) -> None:
    jobs = await _jobs(store)

    by_owner = await _all_pages(jobs, key=["owner"], page_size=3)
    by_id = await _all_pages(jobs, page_size=10)

    every = await jobs.find()
    assert _ids(by_owner) == [d["id"] for d in sorted(every, key=lambda d: (d["owner"], d["id"]))]
    assert _ids(by_id) == sorted(d["id"] for d in every)


async def test_filters_still_apply_across_pages(store: StateStore) -> None:
    jobs = await _jobs(store)

    pages = await _all_pages(
        jobs, filter={"owner": "bob", "created": {"$lt": 9}}, key=["created"], page_size=2
    )

    expected = [id for key, id in sorted(_numbered()) if int(id[1:]) % 3 == 0 and key < 9]
    assert _ids(pages) == expected


async def test_after_resumes_behind_a_given_document(store: StateStore) -> None:
    jobs = await _jobs(store)
    first = await anext(aiter(jobs.pages(key=["created"], descending=True, page_size=5)))

    rest = await _all_pages(
        jobs,
        key=["created"],
        descending=True,
        page_size=5,
        after=key_of(first[-1], ["created", "id"]),
    )

    assert _ids([first, *rest]) == _keyed()[::-1]


async def test_projection_returns_only_the_fields_asked_for(store: StateStore) -> None:
    jobs = await _jobs(store)

    pages = await _all_pages(jobs, key=["created"], fields=["owner", "absent"], page_size=10)

    first = pages[0][0]
    assert first == {"id": "j00", "owner": "bob", "created": 0}
    assert all(set(d) == {"id", "owner", "created"} for page in pages for d in page)


async def test_projection_keeps_json_types(store: StateStore) -> None:
    jobs = store.collection("typed")
    value = {"n": 1.5, "s": "t", "b": False, "z": None, "l": [1, "2", {"x": True}]}
    await jobs.insert({"id": "a", "k": 1, **value, "skipped": "x" * 10})

    pages = await _all_pages(jobs, key=["k"], fields=list(value))

    assert pages == [[{"id": "a", "k": 1, **value}]]


async def test_a_page_of_large_documents_is_bounded_in_bytes(store: StateStore) -> None:
    big = store.collection("big")
    chunk = "m" * (PAGE_BYTES // 3)
    for n in range(5):
        await big.insert({"id": f"b{n}", "k": n, "metadata": [["k", chunk]]})

    pages = await _all_pages(big, key=["k"], page_size=100)

    assert [len(page) for page in pages] == [3, 2]
    assert _ids(pages) == [f"b{n}" for n in range(5)]


async def test_nothing_matches_gives_no_page(store: StateStore) -> None:
    jobs = await _jobs(store)

    assert await _all_pages(jobs, filter={"owner": "nobody"}, key=["created"]) == []


async def test_pages_are_read_one_at_a_time(store: StateStore) -> None:
    jobs = await _jobs(store)
    pages = jobs.pages(key=["created"], page_size=10)

    first = await anext(pages)
    await jobs.insert({"id": "late", "created": 100, "owner": "ann"})
    rest = [page async for page in pages]

    assert len(first) == 10
    assert _ids([first, *rest])[-2:] == ["late", "odd"]


@pytest.mark.parametrize(
    "options",
    [
        {"key": "created"},
        {"key": ["created", "created"]},
        {"key": ["id", "created"]},
        {"key": ["bad-name"]},
        {"page_size": 0},
        {"page_size": 10_001},
        {"page_size": True},
        {"fields": ["a.b"]},
        {"fields": "owner"},
        {"after": [1]},
        {"after": [None, "x"]},
        {"filter": {"created": {"$bad": 1}}},
    ],
)
async def test_bad_arguments_are_invalid(store: StateStore, options: dict[str, Any]) -> None:
    jobs = await _jobs(store)
    options = {"key": ["created"], **options}

    with pytest.raises(Invalid):
        await _all_pages(jobs, **options)


async def test_float_keys_and_fields_come_back_exact(store: StateStore) -> None:
    times = store.collection("times")
    moments = [1_765_000_000.123456 + n * 1e-6 for n in range(6)]
    for n, moment in enumerate(moments):
        await times.insert({"id": f"t{n}", "created": moment})

    pages = await _all_pages(times, key=["created"], fields=[], page_size=1)

    assert [d["created"] for page in pages for d in page] == moments
