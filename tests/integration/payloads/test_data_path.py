"""Payload bytes through the gateway with a gRPC client, on both blob stores: upload, details,
download, remove, delete, metadata, and the names that are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from aorta.api import payloads_pb2
from aorta.errors import ErrorCode, Unavailable
from aorta.payload_layout import payload_prefix
from aorta.payload_names import checksums
from tests.integration.payloads.payload_grpc import (
    CHUNK,
    Platform,
    Stub,
    chunk_messages,
    create,
    delete,
    details,
    digest,
    download,
    ident,
    listing,
    pattern,
    remove,
    stream,
    upload,
)

pytestmark = pytest.mark.timeout(60)

LARGE = 9 * 1024 * 1024 + 12345
"""Crosses the download's 1 MiB messages and the S3 store's 8 MiB parts."""


async def blob_names(platform: Platform, payload_id: str) -> list[str]:
    prefix = payload_prefix(payload_id)
    return [info.key[len(prefix) :] async for info in platform.blobs.list(prefix)]


async def test_files_go_up_and_come_back_identical(stub: Stub) -> None:
    payload_id = await create(stub)
    files = [
        ("scan.dcm", pattern(LARGE, 1)),
        ("series/0001.dcm", pattern(3 * CHUNK + 1, 2)),
        ("empty.txt", b""),
        ("Ünïcode name.txt", b"text"),
    ]
    reply = await upload(stub, payload_id, files)
    assert reply.header.code == 0, list(reply.header.messages)
    assert (reply.details.name, reply.details.size) == ("/input/Ünïcode name.txt", 4)
    expected = {f"/input/{name}": data for name, data in files}
    assert checksums(reply.header.messages) == {n: digest(d) for n, d in expected.items()}
    assert await listing(stub, payload_id) == {n: len(d) for n, d in sorted(expected.items())}
    for name, data in expected.items():
        first, received = await download(stub, payload_id, name)
        assert first.header.code == 0
        assert (first.details.name, first.details.size) == (name, len(data))
        assert digest(received) == digest(data)


async def test_download_streams_megabyte_messages_and_takes_any_spelling(stub: Stub) -> None:
    payload_id = await create(stub)
    data = pattern(LARGE)
    await upload(stub, payload_id, [("Scan.DCM", data)])
    request = payloads_pb2.PayloadsDownloadRequest(payload_id=ident(payload_id), name="scan.dcm")
    messages = [item async for item in stub.Download(request)]
    assert [len(m.data) for m in messages[:-1]] == [1 << 20] * (len(messages) - 1)
    assert messages[0].details.name == "/input/Scan.DCM"
    assert all(m.header.code == 0 for m in messages)
    assert not any(m.HasField("details") for m in messages[1:])
    for name in ("./input/Scan.DCM", "input/scan.dcm", "/INPUT/SCAN.DCM"):
        assert (await download(stub, payload_id, name))[1] == data


async def test_a_zero_byte_file_is_one_message(stub: Stub) -> None:
    payload_id = await create(stub)
    await upload(stub, payload_id, [("empty", b"")])
    request = payloads_pb2.PayloadsDownloadRequest(
        payload_id=ident(payload_id), name="/input/empty"
    )
    messages = [item async for item in stub.Download(request)]
    assert len(messages) == 1
    assert (messages[0].details.name, messages[0].details.size, messages[0].data) == (
        "/input/empty",
        0,
        b"",
    )


async def test_remove_and_delete(stub: Stub, platform: Platform) -> None:
    payload_id = await create(stub)
    await upload(stub, payload_id, [("a", b"a"), ("dir/b", b"b")])
    assert (await remove(stub, payload_id, "/input/dir/b")).code == 0
    assert await listing(stub, payload_id) == {"/input/a": 1}
    gone = await remove(stub, payload_id, "/input/dir/b")
    assert gone.code == ErrorCode.PAYLOAD_FILE_NOT_FOUND
    assert "has no file named 'input/dir/b'" in gone.messages[0]
    assert (await delete(stub, payload_id)).code == 0
    assert await blob_names(platform, payload_id) == []
    (after,) = await details(stub, payload_id)
    assert after.header.code == ErrorCode.PAYLOAD_NOT_FOUND
    assert list(after.header.messages) == [f"no payload has id {payload_id}"]


async def test_metadata_of_a_reusable_payload(stub: Stub) -> None:
    payload_id = await create(stub, {"study": "ct"})
    added = await stub.AddMetadata(
        payloads_pb2.PayloadsAddMetadataRequest(payload_id=ident(payload_id), metadata={"a": "1"})
    )
    assert dict(added.metadata) == {"study": "ct", "a": "1"}
    removed = await stub.RemoveMetadata(
        payloads_pb2.PayloadsRemoveMetadataRequest(payload_id=ident(payload_id), keys=["STUDY"])
    )
    assert dict(removed.metadata) == {"a": "1"}
    assert dict((await details(stub, payload_id))[0].metadata) == {"a": "1"}


async def test_megabytes_of_metadata_round_trip(stub: Stub) -> None:
    """Clara allows 4 MB of metadata per object: 3.5 MB crosses the bus in every answer."""
    metadata = {f"key-{i:05d}": f"{i:05d}" + "v" * 251 for i in range(3_500_000 // 265)}
    payload_id = await create(stub, metadata)
    assert (await upload(stub, payload_id, [("a.txt", b"abc")])).header.code == 0
    [first] = await details(stub, payload_id)
    assert (first.file.name, dict(first.metadata)) == ("/input/a.txt", metadata)
    added = await stub.AddMetadata(
        payloads_pb2.PayloadsAddMetadataRequest(payload_id=ident(payload_id), metadata={"a": "1"})
    )
    assert dict(added.metadata) == {**metadata, "a": "1"}
    past_4_mib = {f"more-{i}": "v" * 256 for i in range(3000)}
    too_much = await stub.AddMetadata(
        payloads_pb2.PayloadsAddMetadataRequest(payload_id=ident(payload_id), metadata=past_4_mib)
    )
    assert too_much.header.code == ErrorCode.METADATA_INVALID
    assert dict((await details(stub, payload_id))[0].metadata) == {**metadata, "a": "1"}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("../escape", "'..' path segment"),
        ("a/../../escape", "'..' path segment"),
        ("/etc/passwd", "absolute path"),
        ("a\\..\\b", "backslash"),
        ("nul\x00", "control character"),
        ("a//b", "empty path segment"),
        ("x" * 300, "longer than 255 bytes"),
    ],
)
async def test_unsafe_names_are_refused_and_nothing_is_stored(
    stub: Stub, platform: Platform, name: str, text: str
) -> None:
    payload_id = await create(stub)
    reply = await upload(stub, payload_id, [(name, b"evil")])
    assert reply.header.code == ErrorCode.PAYLOAD_FILE_NAME_INVALID
    assert text in reply.header.messages[0]
    assert await blob_names(platform, payload_id) == []
    assert [info.key async for info in platform.blobs.list("")] == []


@pytest.mark.parametrize(
    ("payload_id", "code"),
    [
        ("0123456789abcdef0123456789abcdef", ErrorCode.PAYLOAD_NOT_FOUND),
        ("../../etc", ErrorCode.PAYLOAD_ID_INVALID),
    ],
)
async def test_uploads_and_downloads_need_a_real_payload(
    stub: Stub, payload_id: str, code: int
) -> None:
    reply = await upload(stub, payload_id, [("a", b"a")])
    assert reply.header.code == code
    request = payloads_pb2.PayloadsDownloadRequest(payload_id=ident(payload_id), name="/input/a")
    (message,) = [item async for item in stub.Download(request)]
    assert message.header.code == code


async def test_download_errors_name_the_problem(stub: Stub) -> None:
    payload_id = await create(stub)
    await upload(stub, payload_id, [("a", b"a"), ("A", b"A")])
    for name, code, text in [
        ("/input/missing", ErrorCode.PAYLOAD_FILE_NOT_FOUND, "has no file named"),
        ("", ErrorCode.PAYLOAD_FILE_NAME_INVALID, "name the file to download"),
        ("/input/../x", ErrorCode.PAYLOAD_FILE_NAME_INVALID, "'..' path segment"),
    ]:
        request = payloads_pb2.PayloadsDownloadRequest(payload_id=ident(payload_id), name=name)
        (message,) = [item async for item in stub.Download(request)]
        assert message.header.code == code and text in message.header.messages[0]
    # Two files differ only in case: the exact spelling wins, any other is ambiguous.
    assert (await download(stub, payload_id, "/input/A"))[1] == b"A"
    assert (await download(stub, payload_id, "a"))[1] == b"a"
    request = payloads_pb2.PayloadsDownloadRequest(payload_id=ident(payload_id), name="INPUT/a")
    (message,) = [item async for item in stub.Download(request)]
    assert message.header.code == ErrorCode.PAYLOAD_FILE_NOT_FOUND
    assert "('/input/A', '/input/a'); give the exact name" in message.header.messages[0]


async def test_interleaved_files_are_refused_and_earlier_files_kept(stub: Stub) -> None:
    payload_id = await create(stub)
    messages = [
        *chunk_messages(payload_id, "a", b"1"),
        *chunk_messages(payload_id, "b", b"2"),
        *chunk_messages(payload_id, "a", b"3"),
    ]
    reply = await stub.Upload(stream(messages))
    assert reply.header.code == ErrorCode.PAYLOAD_REQUEST_INVALID
    assert "'a' comes back in the upload stream" in reply.header.messages[0]
    assert (
        "2 file(s) of this upload were stored before the error: /input/a, /input/b"
        in (reply.header.messages[1])
    )
    assert await listing(stub, payload_id) == {"/input/a": 1, "/input/b": 1}


async def test_a_file_shorter_than_its_announced_size_is_not_stored(stub: Stub) -> None:
    payload_id = await create(stub)
    message = chunk_messages(payload_id, "short", b"1234")[0]
    message.details.size = 10
    reply = await stub.Upload(stream([message]))
    assert reply.header.code == ErrorCode.PAYLOAD_REQUEST_INVALID
    assert "ended after 4 bytes, but its messages announced 10" in reply.header.messages[0]
    assert await listing(stub, payload_id) == {}


async def test_a_file_and_a_folder_of_one_name(stub: Stub, platform: Platform) -> None:
    payload_id = await create(stub)
    await upload(stub, payload_id, [("dir/x", b"x")])
    content = b"a file where a folder is"
    reply = await upload(stub, payload_id, [("dir", content)])
    if platform.kind == "local":
        assert reply.header.code == ErrorCode.PAYLOAD_FILE_NAME_INVALID
        assert "file 'dir' cannot be stored" in reply.header.messages[0]
        assert await listing(stub, payload_id) == {"/input/dir/x": 1}
    else:  # S3 keys are not folders: both may exist
        assert reply.header.code == 0
        assert await listing(stub, payload_id) == {"/input/dir": len(content), "/input/dir/x": 1}


async def test_a_download_that_breaks_off_ends_with_an_rpc_error(
    stub: Stub, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload_id = await create(stub)
    await upload(stub, payload_id, [("big", pattern(3 * (1 << 20)))])
    get = platform.blobs.get

    async def failing(key: str, **options: int) -> AsyncIterator[bytes]:
        async for chunk in get(key, **options):
            yield chunk
            raise Unavailable("the disk went away")

    monkeypatch.setattr(platform.blobs, "get", failing)
    request = payloads_pb2.PayloadsDownloadRequest(payload_id=ident(payload_id), name="/input/big")
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for message in stub.Download(request):
            received.append(message)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "the download of /input/big broke off" in str(caught.value.details())
    assert len(received) == 1 and received[0].details.size == 3 * (1 << 20)
