"""Many serialized messages in one bus body, each prefixed by its length (pure, no I/O).

A stream whose items are small (a `Jobs.List` of a long history: a few hundred bytes a job)
spends most of its time on the bus's per-message work, not on the bytes. Its producer packs
the items into bodies of about `limit` bytes (`batched`) and its consumer takes them apart
again (`split`). Each item is written as its length, a protobuf base-128 varint, then its
bytes; an item larger than `limit` travels alone. A producer that must not run far ahead of
its consumer (the bus lets it run a window of bodies ahead) also bounds the items a body
holds (`most`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from aorta.errors import Internal


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def batched(items: Iterable[bytes], limit: int, most: int | None = None) -> Iterator[bytes]:
    """The bodies carrying `items` in order, each holding the items that fit in `limit`
    bytes (at least one), and `most` items at most; nothing when there are no items."""
    parts: list[bytes] = []
    size = 0
    most_parts = 2 * most if most is not None else None
    for item in items:
        length = _varint(len(item))
        added = len(length) + len(item)
        if parts and (size + added > limit or len(parts) == most_parts):
            yield b"".join(parts)
            parts, size = [], 0
        parts += (length, item)
        size += added
    if parts:
        yield b"".join(parts)


def split(body: bytes) -> list[bytes]:
    """The items a body of `batched` carries, in order; `Internal` when it is cut short."""
    items: list[bytes] = []
    position, end = 0, len(body)
    while position < end:
        length = shift = 0
        while True:
            if position >= end:
                raise Internal("a batched bus body ends inside an item's length")
            byte = body[position]
            position += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        if position + length > end:
            raise Internal("a batched bus body ends inside an item")
        items.append(body[position : position + length])
        position += length
    return items
