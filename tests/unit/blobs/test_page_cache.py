"""Drop-behind: which ranges of a file a transfer hands back to the kernel, and when."""

from __future__ import annotations

import os

import pytest

from aorta.blobs import page_cache
from aorta.blobs.page_cache import KEEP_BELOW, STEP, WRITE_BACK_LAG, DropBehind

MiB = 1 << 20


@pytest.fixture
def advice(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The `[start, end)` ranges advised away, in order."""
    given: list[tuple[int, int]] = []

    def advise(fd: int, offset: int, length: int, what: int) -> None:
        assert (fd, what) == (7, os.POSIX_FADV_DONTNEED)
        given.append((offset, offset + length))

    monkeypatch.setattr(page_cache, "_advise", advise)
    return given


def test_a_small_transfer_leaves_the_page_cache_alone(advice: list[tuple[int, int]]) -> None:
    cache = DropBehind(7)
    for position in range(MiB, KEEP_BELOW, MiB):
        cache.moved(position)
    cache.finished(KEEP_BELOW - 1)
    assert advice == []


def test_a_large_transfer_hands_back_its_ranges_as_it_goes(advice: list[tuple[int, int]]) -> None:
    assert (KEEP_BELOW, WRITE_BACK_LAG) == (2 * STEP, 4 * STEP)  # what the ranges below assume
    cache = DropBehind(7)
    for position in range(MiB, 8 * STEP + 1, MiB):
        cache.moved(position)
    # At each STEP past KEEP_BELOW: the newest range (only queued for write-back while dirty),
    # then the one WRITE_BACK_LAG behind, clean by then.
    assert [(start // STEP, end // STEP) for start, end in advice] == [
        (0, 2),
        (2, 3),
        (3, 4),
        (4, 5),
        (0, 1),
        (5, 6),
        (1, 2),
        (6, 7),
        (2, 3),
        (7, 8),
        (3, 4),
    ]
    cache.finished(8 * STEP + 5)
    assert advice[-1] == (0, 8 * STEP + 5)


def test_a_read_from_an_offset_counts_from_there(advice: list[tuple[int, int]]) -> None:
    origin = 100 * MiB
    cache = DropBehind(7, origin)
    cache.moved(origin + KEEP_BELOW - 1)
    assert advice == []
    cache.moved(origin + KEEP_BELOW)
    assert advice == [(origin, origin + KEEP_BELOW)]
    cache.finished(origin + KEEP_BELOW + 1)
    assert advice[-1] == (origin, origin + KEEP_BELOW + 1)


def test_advice_the_system_refuses_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(fd: int, offset: int, length: int, what: int) -> None:
        raise OSError(29, "Illegal seek")

    monkeypatch.setattr(page_cache, "_advise", refuse)
    DropBehind(7).finished(KEEP_BELOW)  # no error
