"""What the S3 store promises beyond the contract, against moto: failed uploads are aborted, a
prefix location keeps its keys apart, foreign objects are skipped, errors are translated."""

from __future__ import annotations

import asyncio
import io
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from minio import Minio

from aorta.blobs.s3 import DEFAULT_PART_SIZE, S3BlobStore, parse_location
from aorta.errors import Internal, Invalid, NotFound, Unavailable
from aorta.testing.s3 import S3Server


@pytest.fixture
def bucket() -> str:
    return f"aorta-test-{uuid.uuid4().hex[:20]}"


def raw_client(server: S3Server) -> Minio:
    return Minio(
        server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        secure=False,
        region=server.region,
    )


async def open_store(server: S3Server, location: str, **options: Any) -> S3BlobStore:
    return await S3BlobStore.open(
        location,
        endpoint=server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        region=server.region,
        **options,
    )


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def incomplete_uploads(server: S3Server, bucket: str) -> list[str]:
    result = raw_client(server)._list_multipart_uploads(bucket)
    return [upload.object_name for upload in result.uploads]


async def test_failed_and_cancelled_multipart_uploads_are_aborted(
    s3_server: S3Server, bucket: str
) -> None:
    store = await open_store(s3_server, f"s3://{bucket}")
    stalled = asyncio.Event()

    async def parts_then(failure: BaseException | None) -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"p" * DEFAULT_PART_SIZE
        if failure is not None:
            raise failure
        stalled.set()
        await asyncio.Event().wait()
        yield b""

    try:
        with pytest.raises(OSError):
            await store.put("failed", parts_then(OSError("disk gone")))
        upload = asyncio.create_task(store.put("cancelled", parts_then(None)))
        await asyncio.wait_for(stalled.wait(), 30)
        upload.cancel()
        with pytest.raises(asyncio.CancelledError):
            await upload

        assert await asyncio.to_thread(incomplete_uploads, s3_server, bucket) == []
        assert [info.key async for info in store.list("")] == []
    finally:
        await store.close()


async def test_a_prefix_location_keeps_keys_apart(s3_server: S3Server, bucket: str) -> None:
    first = await open_store(s3_server, f"s3://{bucket}/tenants/one")
    second = await open_store(s3_server, f"s3://{bucket}/tenants/two/")
    try:
        await first.put("a/x", chunks_of(b"one"))
        await second.put("a/x", chunks_of(b"two"))

        assert [info.key async for info in first.list("")] == ["a/x"]
        assert b"".join([c async for c in second.get("a/x")]) == b"two"
        assert await first.delete_prefix("a/") == 1
        names = [o.object_name for o in raw_client(s3_server).list_objects(bucket, recursive=True)]
        assert names == ["tenants/two/a/x"]
    finally:
        await first.close()
        await second.close()


async def test_objects_other_tools_wrote_with_invalid_keys_are_skipped(
    s3_server: S3Server, bucket: str
) -> None:
    store = await open_store(s3_server, f"s3://{bucket}")
    try:
        await store.put("folder/real", chunks_of(b"ours"))
        client = raw_client(s3_server)
        for name in ["folder/", "folder//double", "folder/" + "x" * 256]:
            await asyncio.to_thread(client.put_object, bucket, name, io.BytesIO(b""), 0)

        assert [info.key async for info in store.list("folder")] == ["folder/real"]
        assert (await store.stat("folder/real")).sha256 is None  # S3 cannot record it
    finally:
        await store.close()


async def test_an_unreachable_endpoint_is_unavailable(bucket: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"127.0.0.1:{probe.getsockname()[1]}"
        with pytest.raises(Unavailable, match="cannot be reached"):
            await S3BlobStore.open(
                f"s3://{bucket}", endpoint=endpoint, access_key="a", secret_key="b"
            )


async def test_a_deleted_bucket_is_reported_not_crashed(s3_server: S3Server, bucket: str) -> None:
    store = await open_store(s3_server, f"s3://{bucket}")
    try:
        await asyncio.to_thread(raw_client(s3_server).remove_bucket, bucket)
        with pytest.raises(NotFound):
            await store.stat("k")
        with pytest.raises(Internal, match="NoSuchBucket"):
            await store.put("k", chunks_of(b"x"))
    finally:
        await store.close()


async def test_the_bucket_is_created_once_and_reused(s3_server: S3Server, bucket: str) -> None:
    stores = await asyncio.gather(*(open_store(s3_server, f"s3://{bucket}") for _ in range(3)))
    try:
        await stores[0].put("shared", chunks_of(b"x"))
        assert (await stores[2].stat("shared")).size == 1
    finally:
        for store in stores:
            await store.close()


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://my.bucket-1/a/b", ("my.bucket-1", "a/b/")),
        ("s3://bucket/a/b/", ("bucket", "a/b/")),
    ],
)
def test_locations(location: str, expected: tuple[str, str]) -> None:
    assert parse_location(location) == expected


@pytest.mark.parametrize(
    "location",
    [
        "s3://",
        "s3://Bad_Bucket",
        "s3://ab",
        "s3://bucket/a//b",
        "s3://bucket/../x",
        "s3://b?x=1",
        "gs://bucket",
    ],
)
def test_bad_locations(location: str) -> None:
    with pytest.raises(Invalid):
        parse_location(location)


@pytest.mark.parametrize("part_size", [DEFAULT_PART_SIZE // 2, 6 << 30])
def test_part_sizes_outside_what_s3_accepts_are_invalid(part_size: int) -> None:
    with pytest.raises(Invalid, match="part size"):
        S3BlobStore(
            "s3://bucket",
            endpoint="127.0.0.1:9",
            access_key="a",
            secret_key="b",
            part_size=part_size,
        )


async def test_uploads_a_dead_process_left_are_aborted_once_stale(
    s3_server: S3Server, bucket: str
) -> None:
    store = await open_store(s3_server, f"s3://{bucket}/platform")
    raw = raw_client(s3_server)
    try:
        # Uploads begun and never finished, as by a process killed mid-put: one under the
        # store's prefix, one of another tool beside it.
        await asyncio.to_thread(raw._create_multipart_upload, bucket, "platform/input/a", {})
        await asyncio.to_thread(raw._create_multipart_upload, bucket, "other/b", {})
        await store.put("input/kept", chunks_of(b"kept"))

        # moto dates every upload 2010-11-10: a century's age limit keeps it, a day's does not.
        assert await store.abort_stale_uploads(older_than=100 * 365 * 86400.0) == 0
        assert await asyncio.to_thread(incomplete_uploads, s3_server, bucket) != []

        assert await store.abort_stale_uploads() == 1
        assert await asyncio.to_thread(incomplete_uploads, s3_server, bucket) == ["other/b"]
        assert [info.key async for info in store.list("")] == ["input/kept"]
    finally:
        await store.close()
