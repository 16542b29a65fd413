"""Batched bus bodies: items come back in order, whole, with bodies bounded by the limit."""

from __future__ import annotations

import pytest

from aorta.bus import frames
from aorta.errors import Internal


def test_items_come_back_in_order_across_bodies_of_bounded_size() -> None:
    items = [bytes([n % 256]) * (n * 7) for n in range(200)]
    bodies = list(frames.batched(items, 1024))
    assert len(bodies) > 1
    # A body holds what fits: only a body of one item may exceed the limit.
    for body in bodies:
        assert len(body) <= 1024 or len(frames.split(body)) == 1
    assert [item for body in bodies for item in frames.split(body)] == items


def test_an_item_above_the_limit_travels_alone_between_its_neighbours() -> None:
    small, large = b"s" * 10, b"L" * 5000
    bodies = list(frames.batched([small, small, large, small], 100))
    assert [frames.split(body) for body in bodies] == [[small, small], [large], [small]]


def test_empty_items_and_no_items() -> None:
    assert list(frames.batched([], 100)) == []
    [body] = frames.batched([b"", b"x", b""], 100)
    assert frames.split(body) == [b"", b"x", b""]


@pytest.mark.parametrize("cut", [1, 2, 150])
def test_a_body_cut_short_is_an_internal_error(cut: int) -> None:
    [body] = frames.batched([b"x" * 200], 1000)
    with pytest.raises(Internal):
        frames.split(body[:-cut] if cut != 1 else body[:1])


def test_a_body_holds_at_most_the_items_asked() -> None:
    items = [bytes([n]) for n in range(20)]
    bodies = list(frames.batched(items, 1024, 8))
    assert [len(frames.split(body)) for body in bodies] == [8, 8, 4]
    assert [item for body in bodies for item in frames.split(body)] == items
