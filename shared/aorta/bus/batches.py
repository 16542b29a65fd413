"""Streamed items sent together: a stream handler yields a `Batch` to have several small items
travel as one bus message, which its consumer still receives one by one.

A stream of many small items (a whole `Jobs.List`: one item per job) pays the bus's per-message
work (framing, headers, sequence and credit checks, a task hop on each side) for every item;
batched, it pays it once per batch. Large items are better sent alone: a batch is packed and
split again, which copies its items, and a consumer holds a whole batch until its last item is
taken. `batched` groups a stream's items that way. The stream's windows (`BusOptions`) count
a batch as one message and its bytes as its items' bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

LIST_BATCH_BYTES = 8 * 1024
"""How many bytes of list items travel as one bus message: a store page of small items in a
few messages, so a whole list of a long history pays the bus's per-message work a few hundred
times per 100,000 items rather than once per item; an item this large or larger goes alone."""


@dataclass(frozen=True)
class Batch:
    """Items a stream handler yields together, in order."""

    items: tuple[bytes, ...]

    @property
    def size(self) -> int:
        """The items' bytes, without the framing."""
        return sum(len(item) for item in self.items)


def batched(items: Iterable[bytes], budget: int) -> Iterator[bytes | Batch]:
    """`items`, consecutive ones grouped into batches of at most `budget` bytes; an item of
    `budget` bytes or more, and a group of one, goes alone as it is. Lazy: an item is taken
    from `items` only when the group before it is full or `items` ends."""
    group: list[bytes] = []
    held = 0
    for item in items:
        if len(item) >= budget:
            yield from _sent(group)
            group, held = [], 0
            yield item
            continue
        if held + len(item) > budget:
            yield from _sent(group)
            group, held = [], 0
        group.append(item)
        held += len(item)
    yield from _sent(group)


def _sent(group: list[bytes]) -> Iterator[bytes | Batch]:
    if len(group) == 1:
        yield group[0]
    elif group:
        yield Batch(tuple(group))


def pack(batch: Batch) -> bytes:
    """One body carrying `batch`: each item's length as a varint, then the item."""
    return b"".join(part for item in batch.items for part in (_varint(len(item)), item))


def unpack(body: bytes) -> list[bytes]:
    """The items a `pack`ed body carries; `ValueError` when it is not one."""
    items, at, end = [], 0, len(body)
    while at < end:
        length, shift = 0, 0
        while True:
            if at >= end or shift > 63:
                raise ValueError("a batch ends inside an item's length")
            byte = body[at]
            at += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if at + length > end:
            raise ValueError("a batch ends inside an item")
        items.append(body[at : at + length])
        at += length
    return items


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
