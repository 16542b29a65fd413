"""Server-side paging keeps one page whatever the number of jobs, in a stable order."""

from __future__ import annotations

import random

import pytest

from aorta_services.web.paging import BadCursor, Page, decode_cursor, encode_cursor


def _jobs(count: int) -> list[tuple[int, str]]:
    # Several jobs share a creation second, as a burst of jobs does.
    return [(1000 + index // 3, f"{index:032x}") for index in range(count)]


def _pages(jobs: list[tuple[int, str]], limit: int) -> list[list[tuple[int, str]]]:
    pages: list[list[tuple[int, str]]] = []
    cursor: str | None = None
    while True:
        page = Page(limit, decode_cursor(cursor) if cursor else None)
        shuffled = jobs[:]
        random.Random(len(pages)).shuffle(shuffled)
        for key in shuffled:
            page.offer(key, key)
        items, cursor = page.result()
        assert page.total == len(jobs)
        pages.append(items)
        if cursor is None:
            return pages


@pytest.mark.parametrize(("count", "limit"), [(0, 5), (1, 5), (10, 5), (11, 5), (1000, 7)])
def test_pages_cover_every_job_once_newest_first(count: int, limit: int) -> None:
    jobs = _jobs(count)
    pages = _pages(jobs, limit)
    seen = [item for page in pages for item in page]
    assert seen == sorted(jobs, reverse=True)
    assert all(len(page) <= limit for page in pages)


def test_a_page_holds_no_more_than_its_limit_and_one() -> None:
    page = Page(3)
    for key in _jobs(10_000):
        page.offer(key, key)
    assert len(page._heap) == 4
    items, cursor = page.result()
    assert items == sorted(_jobs(10_000), reverse=True)[:3]
    assert cursor is not None


def test_a_job_created_between_two_pages_does_not_shift_the_next_one() -> None:
    jobs = _jobs(6)
    first = Page(3)
    for key in jobs:
        first.offer(key, key)
    _, cursor = first.result()
    assert cursor is not None
    second = Page(3, decode_cursor(cursor))
    for key in [*jobs, (9999, "f" * 32)]:
        second.offer(key, key)
    following, _ = second.result()
    assert following == sorted(jobs, reverse=True)[3:]


@pytest.mark.parametrize("text", ["", "not-a-cursor", encode_cursor((1, "x"))[:-2] + "!!", "WzFd"])
def test_cursors_not_made_here_are_refused(text: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(text)


def test_cursors_round_trip() -> None:
    assert decode_cursor(encode_cursor((63_900_000_000, "ab" * 16))) == (63_900_000_000, "ab" * 16)
