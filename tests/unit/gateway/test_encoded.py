"""Chunk messages encoded around their bytes are the bytes protobuf would have produced."""

from __future__ import annotations

import pytest

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
