"""Chunk messages built around, and read around, the bytes they carry, for the streams that
move files.

A protobuf message copies a `bytes` field in when it is set and out again when it is
serialized; for a file streamed in megabyte chunks those two copies were most of the gateway's
work per byte. A message's wire form is the concatenation of its fields' encodings, so a chunk
message is the same bytes as its other fields, serialized once per stream (`prefix`), followed
by the chunk as a length-delimited field: one copy, and byte for byte what protobuf itself
would have produced for a non-empty chunk (it writes fields in number order, and the data
fields come last; an empty one it would leave out, where this writes it empty, which parses
the same).

The other way, `ChunkDecoder` reads an upload's request messages without parsing their
chunk into a message: the bytes before the chunk are parsed (once while they repeat, as they do
in every chunk of a file from NVIDIA's client) and the chunk is a view of the wire bytes.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

M = TypeVar("M", bound=Message)

_LENGTH_DELIMITED = 2


def bytes_field_tag(message_class: type[Message], field: str) -> bytes:
    """The encoded tag of `message_class`'s `bytes` field named `field`."""
    descriptor = message_class.DESCRIPTOR.fields_by_name[field]
    if descriptor.type != FieldDescriptor.TYPE_BYTES or descriptor.is_repeated:
        raise ValueError(
            f"{message_class.DESCRIPTOR.full_name}.{field} is not a single bytes field"
        )
    return varint(descriptor.number << 3 | _LENGTH_DELIMITED)


def with_bytes(prefix: bytes, tag: bytes, data: bytes) -> bytes:
    """The message serialized as `prefix` (its other fields, all numbered below the bytes
    field's) with `data` as the bytes field whose encoded tag is `tag`."""
    return b"".join((prefix, tag, varint(len(data)), data))


def varint(value: int) -> bytes:
    """`value` (not negative) as a protobuf base-128 varint."""
    if value < 0:
        raise ValueError(f"varints here encode non-negative numbers, not {value}")
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class ChunkDecoder(Generic[M]):
    """Reads wire messages of `message_class` as their other fields, parsed, and their bytes
    field `field`, a view of the wire bytes (no copy, where parsing a message copies the chunk
    in and reading the field copies it out again).

    A message whose bytes field is its last field, as protobuf writes it, is split there: the
    bytes before it are parsed as a message of their own (a message is its fields
    concatenated, so they parse as they would within it), and while the next messages begin
    with the same bytes, the same parsed object is returned again (callers may compare it by
    identity to skip checks they made already). Any other layout (the field missing or
    repeated, other fields after it, unknown wire types) is parsed whole, as protobuf would.
    Either way `decode` accepts exactly what `message_class.FromString` accepts.
    """

    def __init__(self, message_class: type[M], field: str) -> None:
        self._class = message_class
        self._field = field
        self._tag = bytes_field_tag(message_class, field)
        self._number = message_class.DESCRIPTOR.fields_by_name[field].number
        self._prefix = b""
        self._fields: M | None = None

    def decode(self, raw: bytes) -> tuple[M, memoryview]:
        """The message's other fields and its chunk, a read-only view of `raw` (or of the
        parsed field); `DecodeError` where protobuf raises it.

        The fields object is shared with later messages that carry the same ones: read it,
        never change it."""
        fields = self._fields
        at = len(self._prefix)
        if fields is not None and raw.startswith(self._tag, at) and raw.startswith(self._prefix):
            length, start = _read_varint(raw, at + len(self._tag))
            if start + length == len(raw):
                return fields, memoryview(raw)[start:]
        return self._split(raw)

    def _split(self, raw: bytes) -> tuple[M, memoryview]:
        found = _last_field(raw, self._number)
        if found is None:
            whole = self._class.FromString(raw)
            return whole, memoryview(getattr(whole, self._field))
        tag_at, start = found
        prefix = raw[:tag_at]
        fields = self._class.FromString(prefix)
        self._prefix, self._fields = prefix, fields
        return fields, memoryview(raw)[start:]


def _read_varint(raw: bytes, at: int) -> tuple[int, int]:
    """The varint at `raw[at:]` and the offset after it; `DecodeError` if it is cut short or
    longer than protobuf allows (10 bytes)."""
    value = 0
    shift = 0
    for position in range(at, min(len(raw), at + 10)):
        byte = raw[position]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position + 1
        shift += 7
    raise DecodeError("a varint is cut short or too long")


def _last_field(raw: bytes, number: int) -> tuple[int, int] | None:
    """Where the length-delimited field `number` begins (its tag, its content) when it is the
    last field of `raw`, appears once and every field before it is length-delimited; None
    otherwise, including for malformed bytes (which `FromString` then refuses)."""
    at = 0
    try:
        while at < len(raw):
            key, after_key = _read_varint(raw, at)
            if key & 7 != _LENGTH_DELIMITED:
                return None
            length, start = _read_varint(raw, after_key)
            end = start + length
            if key >> 3 == number:
                return (at, start) if end == len(raw) else None
            at = end
    except DecodeError:
        return None
    return None
