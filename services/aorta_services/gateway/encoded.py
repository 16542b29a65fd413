"""Response messages built around the bytes they carry, for the streams that move files.

A protobuf message copies a `bytes` field in when it is set and out again when it is
serialized; for a file streamed in megabyte chunks those two copies were most of the gateway's
work per byte. A message's wire form is the concatenation of its fields' encodings, so a chunk
message is the same bytes as its other fields, serialized once per stream (`prefix`), followed
by the chunk as a length-delimited field: one copy, and byte for byte what protobuf itself
would have produced for a non-empty chunk (it writes fields in number order, and the data
fields come last; an empty one it would leave out, where this writes it empty, which parses
the same).
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

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
