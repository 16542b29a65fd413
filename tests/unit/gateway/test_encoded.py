"""Chunk messages encoded around their bytes are the bytes protobuf would have produced."""

from __future__ import annotations

import random

import pytest
from google.protobuf.message import DecodeError

from aorta.api import common_pb2, models_pb2, payloads_pb2
from aorta_services.gateway import encoded

Download = payloads_pb2.PayloadsDownloadResponse


@pytest.mark.parametrize("length", [1, 127, 128, 16_383, 16_384, 1 << 20, (4 << 20) - 1])
def test_a_chunk_message_is_what_protobuf_serializes(length: int) -> None:
    data = bytes(range(256)) * (length // 256) + bytes(length % 256)
    header = common_pb2.ResponseHeader(code=0)
    details = payloads_pb2.PayloadFileDetails(name="/input/scan.nii.gz", size=7 << 30, mode=0o640)
    tag = encoded.bytes_field_tag(Download, "data")

    first_prefix = Download(header=header, details=details).SerializeToString()
    first = encoded.with_bytes(first_prefix, tag, data)
    later = encoded.with_bytes(Download(header=header).SerializeToString(), tag, data)

    assert first == Download(header=header, details=details, data=data).SerializeToString()
    assert later == Download(header=header, data=data).SerializeToString()
    parsed = Download.FromString(first)
    assert (parsed.details, parsed.data, parsed.header.code) == (details, data, 0)


def test_an_empty_chunk_is_an_explicit_empty_field_that_parses_as_none() -> None:
    tag = encoded.bytes_field_tag(Download, "data")
    message = encoded.with_bytes(Download(header={"code": 0}).SerializeToString(), tag, b"")
    assert Download.FromString(message) == Download(header={"code": 0})


def test_the_chunk_may_be_any_bytes_like_object() -> None:
    tag = encoded.bytes_field_tag(models_pb2.ModelsDownloadModelResponse, "data")
    message = encoded.with_bytes(b"", tag, memoryview(bytearray(b"archive")))
    assert models_pb2.ModelsDownloadModelResponse.FromString(message).data == b"archive"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (1 << 32, b"\x80\x80\x80\x80\x10"),
        ((1 << 64) - 1, b"\xff" * 9 + b"\x01"),
    ],
)
def test_varints_are_base_128_little_end_first(value: int, expected: bytes) -> None:
    assert encoded.varint(value) == expected


def test_a_negative_varint_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        encoded.varint(-1)


@pytest.mark.parametrize("field", ["header", "details"])
def test_only_a_bytes_field_has_a_bytes_tag(field: str) -> None:
    with pytest.raises(ValueError, match="not a single bytes field"):
        encoded.bytes_field_tag(Download, field)


def test_the_data_tag_is_field_three_length_delimited() -> None:
    assert encoded.bytes_field_tag(Download, "data") == bytes([3 << 3 | 2])


Upload = payloads_pb2.PayloadsUploadRequest


def _upload(name: str, data: bytes, size: int | None = None) -> bytes:
    return Upload(
        header=common_pb2.RequestHeader(user_agent="test"),
        payload_id=common_pb2.Identifier(value="0123456789abcdef0123456789abcdef"),
        details=payloads_pb2.PayloadFileDetails(
            name=name, size=len(data) if size is None else size
        ),
        data=data,
    ).SerializeToString()


def _as_protobuf_reads(raw: bytes) -> tuple[Upload, bytes] | None:
    try:
        whole = Upload.FromString(raw)
    except DecodeError:
        return None
    data = whole.data
    whole.ClearField("data")
    return whole, data


def _as_decoded(decoder: encoded.ChunkDecoder[Upload], raw: bytes) -> tuple[Upload, bytes] | None:
    try:
        fields, data = decoder.decode(raw)
    except DecodeError:
        return None
    copy = Upload()
    copy.CopyFrom(fields)
    copy.ClearField("data")
    return copy, bytes(data)


def test_the_chunk_decoder_accepts_and_reads_exactly_what_protobuf_does() -> None:
    """Valid messages in every layout, and every one of them cut short or with a byte changed,
    one after another through one decoder (whose remembered fields must never leak)."""
    chunk = bytes(range(256)) * 300
    later = Upload(details=payloads_pb2.PayloadFileDetails(name="b")).SerializeToString()
    valid = [
        _upload("a", chunk),
        _upload("a", chunk),
        _upload("a", chunk[:10]),
        _upload("a", b""),
        _upload("b", chunk, size=7 << 30),
        b"\x22\x03abc" + later,  # data first
        b"\x22\x01z" + later + b"\x22\x02cd",  # data twice: the last one counts
        later + b"\x22\x00",  # an empty chunk written out
        later + b"\x20\x05",  # data with a varint's wire type: an unknown field
        later + b"\x7a\x01q" + b"\x22\x02ef",  # an unknown field
        b"",
    ]
    rng = random.Random(7)
    cases: list[bytes] = []
    for raw in valid:
        cases.append(raw)
        for _ in range(40):
            if raw:
                at = rng.randrange(len(raw))
                cases.append(raw[:at])
                cases.append(raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1 :])
            cases.append(valid[0])  # the fast path's case, between the odd ones
    decoder = encoded.ChunkDecoder(Upload, "data")
    for raw in cases:
        assert _as_decoded(decoder, raw) == _as_protobuf_reads(raw), raw[:80]


def test_repeated_fields_are_parsed_once_and_the_chunk_is_sliced_out() -> None:
    decoder = encoded.ChunkDecoder(Upload, "data")
    first, data = decoder.decode(_upload("a", b"x" * 70_000))
    again, more = decoder.decode(_upload("a", b"y" * 70_000))
    other, _ = decoder.decode(_upload("a", b"z" * 5))
    assert again is first and other is not first
    assert (data, more) == (b"x" * 70_000, b"y" * 70_000)
    assert first.details.name == "a" and not first.data


def test_the_chunk_is_a_view_of_the_message_not_a_copy() -> None:
    raw = _upload("a", b"x" * 70_000)
    _, data = encoded.ChunkDecoder(Upload, "data").decode(raw)
    assert data.obj is raw and data.readonly and data == b"x" * 70_000
