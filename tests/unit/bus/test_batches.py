"""Batches of streamed items: how items are grouped, and the framing that carries a group."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aorta.bus.batches import Batch, batched, pack, unpack


def test_small_items_are_grouped_up_to_the_budget() -> None:
    items = [b"a" * 4, b"b" * 4, b"c" * 4, b"d" * 4, b"e" * 4]

    assert list(batched(items, 10)) == [
        Batch((b"a" * 4, b"b" * 4)),
        Batch((b"c" * 4, b"d" * 4)),
        b"e" * 4,
    ]


def test_an_item_of_the_budget_or_more_goes_alone_as_it_is() -> None:
    large = b"L" * 10
    items = [b"a", b"b", large, b"c"]

    sent = list(batched(items, 10))

    assert sent == [Batch((b"a", b"b")), large, b"c"]
    assert sent[1] is large


def test_items_are_taken_only_as_groups_fill() -> None:
    taken: list[int] = []

    def items() -> Iterator[bytes]:
        for n in range(6):
            taken.append(n)
            yield b"x" * 4

    groups = batched(items(), 8)
    first = next(groups)

    assert first == Batch((b"x" * 4, b"x" * 4))
    # The third item told the group was full; the rest are not made yet.
    assert taken == [0, 1, 2]


def test_nothing_yields_nothing() -> None:
    assert list(batched([], 10)) == []


def test_a_packed_batch_unpacks_to_its_items() -> None:
    items = (b"", b"a", b"b" * 200, b"c" * 70_000)

    assert unpack(pack(Batch(items))) == list(items)


@pytest.mark.parametrize("body", [b"\x05abc", b"\x80", b"\x02ab\x03a"])
def test_a_truncated_body_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        unpack(body)
