"""The blob store contract, part 1: what every adapter stores, reads, lists, copies and deletes.

Runs against every store of conftest's `case` fixture (local folder, S3 through moto at a
bucket's root and under a prefix, and a real S3 endpoint when one is given).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aorta.blobs import BlobInfo, BlobStore
from aorta.errors import Invalid, NotFound


async def chunks_of(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def put_bytes(store: BlobStore, key: str, data: bytes) -> BlobInfo:
    return await store.put(key, chunks_of([data]))


async def read(
    store: BlobStore,
    key: str,
    offset: int = 0,
    length: int | None = None,
    chunk_size: int = 1 << 20,
) -> bytes:
    stream = store.get(key, offset=offset, length=length, chunk_size=chunk_size)
    return b"".join([chunk async for chunk in stream])


async def keys(store: BlobStore, prefix: str) -> list[str]:
    return [info.key async for info in store.list(prefix)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_round_trip_of_many_small_chunks(store: BlobStore) -> None:
    parts = [bytes([n % 251]) * (n % 97 + 1) for n in range(2000)]
    data = b"".join(parts)

    info = await store.put("payloads/p1/input/scan.nii.gz", chunks_of(parts))

    assert (info.key, info.size, info.sha256) == (
        "payloads/p1/input/scan.nii.gz",
        len(data),
        sha256(data),
    )
    assert await read(store, "payloads/p1/input/scan.nii.gz") == data
    assert (await store.stat("payloads/p1/input/scan.nii.gz")).size == len(data)


@pytest.mark.parametrize(
    "parts", [[], [b""], [b"", b"", b""]], ids=["no-chunk", "one-empty", "empty-chunks"]
)
async def test_empty_object(store: BlobStore, parts: list[bytes]) -> None:
    info = await store.put("empty", chunks_of(parts))

    assert (info.size, info.sha256) == (0, sha256(b""))
    assert [chunk async for chunk in store.get("empty")] == []
    assert (await store.stat("empty")).size == 0
    assert await keys(store, "") == ["empty"]


@pytest.mark.parametrize("extra", [0, 1], ids=["exactly-one-boundary", "past-two-boundaries"])
async def test_round_trip_across_block_and_part_boundaries(case: Any, extra: int) -> None:
    size = case.boundary * (1 + extra) + extra
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    # Odd chunk sizes, so chunks straddle every boundary.
    parts = [data[at : at + 700_001] for at in range(0, len(data), 700_001)]

    info = await case.store.put("big/object.bin", chunks_of(parts))

    assert (info.size, info.sha256) == (len(data), sha256(data))
    assert await read(case.store, "big/object.bin") == data


async def test_ranged_reads(store: BlobStore) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    await put_bytes(store, "ranged", data)

    assert await read(store, "ranged", offset=100, length=50) == data[100:150]
    assert await read(store, "ranged", offset=10_000) == data[10_000:]
    assert await read(store, "ranged", offset=10_200, length=100) == data[10_200:]
    assert await read(store, "ranged", offset=10_240) == b""
    assert await read(store, "ranged", offset=50_000, length=10) == b""
    assert await read(store, "ranged", offset=5, length=0) == b""
    pieces = [chunk async for chunk in store.get("ranged", offset=3, length=1000, chunk_size=7)]
    assert b"".join(pieces) == data[3:1003]
    assert max(len(piece) for piece in pieces) <= 7


@pytest.mark.parametrize(
    "options",
    [{"offset": -1}, {"length": -1}, {"chunk_size": 0}],
    ids=["offset", "length", "chunk"],
)
async def test_bad_ranges_are_invalid(store: BlobStore, options: dict[str, int]) -> None:
    await put_bytes(store, "ranged", b"abc")
    with pytest.raises(Invalid):
        await read(store, "ranged", **options)


@pytest.mark.parametrize(
    "options", [{}, {"offset": 10}, {"length": 0}], ids=["all", "offset", "empty"]
)
async def test_get_of_a_missing_key_is_not_found_on_first_iteration(
    store: BlobStore, options: dict[str, int]
) -> None:
    stream = store.get("missing/key", **options)
    with pytest.raises(NotFound, match="missing/key"):
        await anext(stream)


async def test_stat(store: BlobStore) -> None:
    before = datetime.now(UTC) - timedelta(minutes=5)
    await put_bytes(store, "a/stat.txt", b"hello")

    info = await store.stat("a/stat.txt")

    assert (info.key, info.size) == ("a/stat.txt", 5)
    assert info.sha256 in {None, sha256(b"hello")}
    assert info.modified.tzinfo is not None and info.modified.utcoffset() == timedelta(0)
    assert before < info.modified < datetime.now(UTC) + timedelta(minutes=5)
    with pytest.raises(NotFound):
        await store.stat("a/missing.txt")
    with pytest.raises(NotFound):
        await store.stat("a")  # a folder of keys is not an object


async def test_list_is_a_sorted_recursive_string_prefix_match(store: BlobStore) -> None:
    names = ["a/b/c", "a/b/d/e", "a/bc", "a/b.txt", "a-b", "a/a", "b", "a/b/\u00fc", "a/b/z"]
    for number, name in enumerate(names):
        await put_bytes(store, name, b"x" * number)

    assert await keys(store, "a/b/") == ["a/b/c", "a/b/d/e", "a/b/z", "a/b/\u00fc"]
    assert await keys(store, "a/b") == [
        "a/b.txt",
        "a/b/c",
        "a/b/d/e",
        "a/b/z",
        "a/b/\u00fc",
        "a/bc",
    ]
    assert await keys(store, "") == sorted(names)
    assert await keys(store, "a/b/d/e") == ["a/b/d/e"]
    assert await keys(store, "nothing/") == []
    infos = {info.key: info for info in [info async for info in store.list("a/")]}
    assert infos["a/bc"].size == names.index("a/bc")
    assert all(info.modified.utcoffset() == timedelta(0) for info in infos.values())


async def test_delete(store: BlobStore) -> None:
    await put_bytes(store, "a/b/c", b"1")
    await put_bytes(store, "a/b/d", b"2")

    await store.delete("a/b/c")

    with pytest.raises(NotFound):
        await store.stat("a/b/c")
    with pytest.raises(NotFound, match="a/b/c"):
        await store.delete("a/b/c")
    with pytest.raises(NotFound):
        await store.delete("a/b")  # only a prefix of other keys
    assert await keys(store, "") == ["a/b/d"]


async def test_delete_prefix(store: BlobStore) -> None:
    for name in ["p/1/x", "p/1/y/z", "p/10", "p/2/x", "q"]:
        await put_bytes(store, name, b"data")

    assert await store.delete_prefix("p/1/") == 2
    assert await keys(store, "") == ["p/10", "p/2/x", "q"]
    assert await store.delete_prefix("p/1") == 1  # a string prefix: p/10 goes too
    assert await store.delete_prefix("nothing/") == 0
    with pytest.raises(Invalid):
        await store.delete_prefix("")
    assert await keys(store, "") == ["p/2/x", "q"]


async def test_copy(store: BlobStore) -> None:
    await put_bytes(store, "src/a", b"source bytes")
    await put_bytes(store, "dst/a", b"old target")

    info = await store.copy("src/a", "dst/a")

    assert (info.key, info.size) == ("dst/a", 12)
    assert info.sha256 in {None, sha256(b"source bytes")}
    assert await read(store, "dst/a") == b"source bytes"
    assert await read(store, "src/a") == b"source bytes"
    assert (await store.copy("src/a", "src/a")).size == 12
    assert await read(store, "src/a") == b"source bytes"
    with pytest.raises(NotFound, match="src/missing"):
        await store.copy("src/missing", "dst/a")
    assert await read(store, "dst/a") == b"source bytes"
    assert await keys(store, "") == ["dst/a", "src/a"]


async def test_put_replaces_an_existing_object(store: BlobStore) -> None:
    await put_bytes(store, "k", b"first version, longer")
    info = await put_bytes(store, "k", b"second")

    assert (info.size, info.sha256) == (6, sha256(b"second"))
    assert await read(store, "k") == b"second"
    assert (await store.stat("k")).size == 6
    assert await keys(store, "") == ["k"]


BAD_KEYS = [
    "",
    "/abs",
    "a//b",
    "a/",
    "./a",
    "a/./b",
    "a/../b",
    "..",
    "a\x00b",
    "a\nb",
    "a\x7fb",
    "\ud800",
    "x/" * 512 + "x",  # 1025 bytes
    "\u00e9/" * 341 + "\u00e9",  # 1025 bytes in UTF-8
    "a/" + "x" * 256,  # a 256-byte file name
    ".aorta/staging/x",
    ".aorta",
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_invalid_keys_are_refused(store: BlobStore, key: str) -> None:
    consumed: list[bytes] = []

    async def watched() -> AsyncIterator[bytes]:
        consumed.append(b"x")
        yield b"x"

    with pytest.raises(Invalid, match="not valid"):
        await store.put(key, watched())
    with pytest.raises(Invalid):
        await read(store, key)
    with pytest.raises(Invalid):
        await store.stat(key)
    with pytest.raises(Invalid):
        await store.delete(key)
    with pytest.raises(Invalid):
        await store.copy(key, "fine")
    with pytest.raises(Invalid):
        await store.copy("fine", key)
    assert consumed == []
    assert await keys(store, "") == []


@pytest.mark.parametrize("prefix", ["/a", "a//", "../", "a/../", "a\x00", ".aorta/", "x/" * 513])
async def test_invalid_prefixes_are_refused(store: BlobStore, prefix: str) -> None:
    with pytest.raises(Invalid, match="not valid"):
        await keys(store, prefix)
    with pytest.raises(Invalid, match="not valid"):
        await store.delete_prefix(prefix)


async def test_the_longest_valid_key_and_unusual_characters_work(store: BlobStore) -> None:
    long_key = "/".join(["a" * 255, "b" * 255, "c" * 255, "d" * 254, "k"])  # 1024 bytes
    odd_key = "dir with spaces/\u00fcml\u00e4ut & sym+bols=%20?#[]!.nii.gz"
    await put_bytes(store, long_key, b"long")
    await put_bytes(store, odd_key, b"odd")

    assert await read(store, long_key) == b"long"
    assert await read(store, odd_key) == b"odd"
    assert await keys(store, "") == sorted([long_key, odd_key])


async def test_non_bytes_chunks_are_invalid(store: BlobStore) -> None:
    async def text() -> AsyncIterator[bytes]:
        yield "not bytes"  # type: ignore[misc]

    with pytest.raises(Invalid, match="bytes"):
        await store.put("k", text())
    assert await keys(store, "") == []
