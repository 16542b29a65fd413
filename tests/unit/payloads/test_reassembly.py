"""Upload streams reassembled file by file, as the gateway reads them (no gRPC, no store)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import pytest

from aorta.api import common_pb2, payloads_pb2
from aorta.errors import ErrorCode, Invalid
from aorta_services.gateway.payload_streams import UploadStream

PAYLOAD = "0123456789abcdef0123456789abcdef"
DASHED = "01234567-89ab-cdef-0123-456789abcdef"

Request = payloads_pb2.PayloadsUploadRequest


def message(
    name: str, data: bytes = b"", *, size: int | None = None, mode: int = 0, payload: str = PAYLOAD
) -> Request:
    """A chunk as NVIDIA's client sends it: details.size is the chunk's length by default."""
    return Request(
        header=common_pb2.RequestHeader(user_agent="test"),
        payload_id=common_pb2.Identifier(value=payload),
        details=payloads_pb2.PayloadFileDetails(
            name=name, size=len(data) if size is None else size, mode=mode
        ),
        data=data,
    )


class Malformed(Exception):
    """What the stand-in stream raises where the gateway would end the call."""


class Wire:
    """The requests as the gateway's rpc layer hands them over: wire bytes."""

    def __init__(self, messages: Iterable[Request | bytes]) -> None:
        self._messages = iter(
            item if isinstance(item, bytes) else item.SerializeToString() for item in messages
        )

    async def next(self) -> bytes | None:
        return next(self._messages, None)

    async def malformed(self) -> NoReturn:
        raise Malformed


def feed(messages: Iterable[Request | bytes]) -> Wire:
    return Wire(messages)


async def read_all(messages: Iterable[Request | bytes]) -> list[tuple[str, int, bytes]]:
    """Every file of the stream as (name, mode, bytes), consuming chunks as a put would."""
    stream = UploadStream(feed(messages))
    assert await stream.payload_id() == PAYLOAD
    files: list[tuple[str, int, bytes]] = []
    while (incoming := await stream.next_file()) is not None:
        assert not incoming.complete
        data = b"".join([chunk async for chunk in incoming.chunks()])
        assert incoming.complete
        files.append((incoming.name, incoming.mode, data))
    return files


async def test_sequential_files_are_reassembled_in_arrival_order() -> None:
    files = await read_all(
        [
            message("a.dcm", b"aa"),
            message("a.dcm", b"AA"),
            message("dir/b.dcm", b"b1", mode=0o640),
            message("dir/b.dcm", b"b2", mode=0o600),
            message("a.dcm.bak", b"c"),
        ]
    )
    assert files == [("a.dcm", 0, b"aaAA"), ("dir/b.dcm", 0o640, b"b1b2"), ("a.dcm.bak", 0, b"c")]


async def test_an_empty_data_message_makes_a_zero_byte_file() -> None:
    assert await read_all([message("empty"), message("next", b"x")]) == [
        ("empty", 0, b""),
        ("next", 0, b"x"),
    ]


async def test_header_only_messages_are_skipped_and_ids_may_be_dashed_or_omitted() -> None:
    files = await read_all(
        [
            Request(header=common_pb2.RequestHeader(user_agent="first")),
            message("a", b"1", payload=DASHED),
            message("a", b"2", payload=""),
            Request(payload_id=common_pb2.Identifier(value=PAYLOAD)),
            message("a", b"3"),
        ]
    )
    assert files == [("a", 0, b"123")]


async def test_mode_keeps_permission_bits_only() -> None:
    assert await read_all([message("x", b"1", mode=0o100755)]) == [("x", 0o755, b"1")]


async def test_a_name_coming_back_after_another_file_is_refused() -> None:
    stream = UploadStream(feed([message("a", b"1"), message("b", b"2"), message("a", b"3")]))
    await stream.payload_id()
    for expected in (b"1", b"2"):
        incoming = await stream.next_file()
        assert incoming is not None
        assert b"".join([chunk async for chunk in incoming.chunks()]) == expected
    with pytest.raises(Invalid, match="'a' comes back in the upload stream") as caught:
        await stream.next_file()
    assert caught.value.code == ErrorCode.PAYLOAD_REQUEST_INVALID


async def test_an_empty_stream_is_refused() -> None:
    with pytest.raises(Invalid, match="carried no file") as caught:
        await UploadStream(feed([])).payload_id()
    assert caught.value.code == ErrorCode.PAYLOAD_REQUEST_INVALID


@pytest.mark.parametrize(
    ("messages", "code", "text"),
    [
        ([message("a", b"1", payload="")], ErrorCode.PAYLOAD_ID_INVALID, "names no payload"),
        ([message("a", b"1", payload="nope")], ErrorCode.PAYLOAD_ID_INVALID, "'nope'"),
        ([Request(data=b"xx")], ErrorCode.PAYLOAD_FILE_NAME_INVALID, "names no file"),
    ],
)
async def test_a_stream_without_payload_or_name_is_refused(
    messages: list[Request], code: int, text: str
) -> None:
    with pytest.raises(Invalid, match=text) as caught:
        await UploadStream(feed(messages)).payload_id()
    assert caught.value.code == code


async def test_another_payload_mid_stream_fails_the_file_before_its_end() -> None:
    other = "f" * 32
    stream = UploadStream(feed([message("a", b"1"), message("a", b"2", payload=other)]))
    await stream.payload_id()
    incoming = await stream.next_file()
    assert incoming is not None
    with pytest.raises(Invalid, match="upload to one payload per stream"):
        async for _ in incoming.chunks():
            pass


async def test_unsafe_names_are_refused_when_their_file_starts() -> None:
    stream = UploadStream(feed([message("ok", b"1"), message("../escape", b"2")]))
    await stream.payload_id()
    incoming = await stream.next_file()
    assert incoming is not None
    assert [chunk async for chunk in incoming.chunks()] == [b"1"]
    with pytest.raises(Invalid, match=r"'\.\.' path segment") as caught:
        await stream.next_file()
    assert caught.value.code == ErrorCode.PAYLOAD_FILE_NAME_INVALID


async def test_chunk_sized_details_size_is_never_refused() -> None:
    """NVIDIA's client: details.size is each chunk's length, whatever the file's size."""
    chunks = [b"x" * 65536, b"y" * 65536, b"z" * 10]
    files = await read_all([message("big", chunk) for chunk in chunks])
    assert files == [("big", 0, b"".join(chunks))]


async def test_a_total_announced_in_every_message_must_be_met() -> None:
    """Aorta's CLI: details.size is the whole file's size in every message."""
    whole = [message("f", b"ab", size=4), message("f", b"cd", size=4)]
    assert await read_all(whole) == [("f", 0, b"abcd")]
    stream = UploadStream(feed(whole[:1]))
    await stream.payload_id()
    incoming = await stream.next_file()
    assert incoming is not None
    with pytest.raises(Invalid, match="ended after 2 bytes, but its messages announced 4"):
        async for _ in incoming.chunks():
            pass


async def test_sizes_that_vary_are_not_a_total() -> None:
    files = await read_all([message("f", b"ab", size=9), message("f", b"cd", size=7)])
    assert files == [("f", 0, b"abcd")]


async def test_before_commit_runs_after_the_last_chunk_and_may_refuse() -> None:
    calls: list[str] = []

    async def refuse() -> None:
        calls.append("checked")
        raise Invalid("locked meanwhile")

    stream = UploadStream(feed([message("a", b"1"), message("a", b"2")]))
    await stream.payload_id()
    incoming = await stream.next_file(refuse)
    assert incoming is not None
    seen = []
    with pytest.raises(Invalid, match="locked meanwhile"):
        async for chunk in incoming.chunks():
            seen.append(chunk)
            assert calls == []
    assert seen == [b"1", b"2"] and calls == ["checked"]
    assert not incoming.complete


async def test_a_message_that_does_not_parse_ends_the_call_as_malformed() -> None:
    good = message("a", b"1").SerializeToString()
    stream = UploadStream(feed([good, good[:-3] + b"\x22\x09x"]))
    await stream.payload_id()
    incoming = await stream.next_file()
    assert incoming is not None
    with pytest.raises(Malformed):
        async for _ in incoming.chunks():
            pass
    assert not incoming.complete


async def test_fields_in_any_order_read_as_protobuf_reads_them() -> None:
    """Other clients may write `data` before the other fields, or twice (the last one counts)."""
    later = message("a", b"").SerializeToString()
    first = b"\x22\x02ab" + later
    twice = b"\x22\x01z" + later + b"\x22\x02cd"
    assert await read_all([first, twice, message("a", b"ef")]) == [("a", 0, b"abcdef")]
