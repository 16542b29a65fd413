"""What the local-folder store promises beyond the contract: its files, its staging folder,
crash leftovers, and the keys a folder cannot hold side by side."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from aorta.blobs.local import BATCH_BYTES, LocalBlobStore
from aorta.blobs.staging import StagedFile
from aorta.errors import Conflict, Unavailable


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def keys(store: LocalBlobStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


def staged_files(root: Path) -> list[Path]:
    return sorted((root / ".aorta" / "staging").glob("*/*.part"))


async def test_objects_are_plain_files_under_the_root(tmp_path: Path) -> None:
    store = await LocalBlobStore.open(tmp_path)
    try:
        await store.put("payloads/p/input/a.txt", chunks_of(b"hello"))
        assert (tmp_path / "payloads" / "p" / "input" / "a.txt").read_bytes() == b"hello"

        # Files a person drops in are objects too; names no key can have are not listed.
        (tmp_path / "payloads" / "p" / "input" / "b.txt").write_bytes(b"by hand")
        (tmp_path / "payloads" / "p" / "input" / "bad\nname").write_bytes(b"x")
        assert await keys(store) == ["payloads/p/input/a.txt", "payloads/p/input/b.txt"]
        assert staged_files(tmp_path) == []
    finally:
        await store.close()


async def test_a_failed_put_leaves_no_staging_file(tmp_path: Path) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * (3 << 20)
        raise RuntimeError("client gone")

    store = await LocalBlobStore.open(tmp_path)
    try:
        with pytest.raises(RuntimeError):
            await store.put("k", failing())
        assert staged_files(tmp_path) == []
        assert not (tmp_path / "k").exists()
    finally:
        await store.close()


async def test_a_put_takes_the_next_batch_while_the_last_one_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first batch's write waits until the sender is asked for more: a put that wrote each
    # batch before reading on would never finish.
    asked_for_more = threading.Event()
    write = StagedFile.write

    def slow_write(self: StagedFile, pieces: Sequence[bytes | bytearray]) -> None:
        if not asked_for_more.wait(10):
            raise AssertionError("the put waited for the disk before reading on")
        write(self, pieces)

    async def sender() -> AsyncIterator[bytes]:
        yield b"a" * BATCH_BYTES
        asked_for_more.set()
        yield b"b" * BATCH_BYTES

    monkeypatch.setattr(StagedFile, "write", slow_write)
    store = await LocalBlobStore.open(tmp_path)
    try:
        info = await asyncio.wait_for(store.put("k", sender()), 20)
        assert (tmp_path / "k").read_bytes() == b"a" * BATCH_BYTES + b"b" * BATCH_BYTES
        assert info.sha256 == hashlib.sha256((tmp_path / "k").read_bytes()).hexdigest()
    finally:
        await store.close()


async def test_a_put_whose_sender_fails_mid_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writing = threading.Event()
    release = threading.Event()
    write = StagedFile.write

    def held_write(self: StagedFile, pieces: Sequence[bytes | bytearray]) -> None:
        writing.set()
        release.wait(10)
        write(self, pieces)

    async def sender() -> AsyncIterator[bytes]:
        yield b"a" * BATCH_BYTES
        await asyncio.to_thread(writing.wait, 10)
        # The sender breaks off while its first batch is still being written.
        asyncio.get_running_loop().call_later(0.2, release.set)
        raise RuntimeError("client gone")

    monkeypatch.setattr(StagedFile, "write", held_write)
    store = await LocalBlobStore.open(tmp_path)
    try:
        with pytest.raises(RuntimeError, match="client gone"):
            await store.put("k", sender())
        assert release.is_set(), "the staging file went while its write was still running"
        assert staged_files(tmp_path) == []
        assert not (tmp_path / "k").exists()
    finally:
        await store.close()


async def test_stale_staging_of_a_dead_store_is_removed_on_open(tmp_path: Path) -> None:
    live = await LocalBlobStore.open(tmp_path)
    try:
        # A store whose process died mid-upload: its folder and lock file remain, unlocked.
        dead = tmp_path / ".aorta" / "staging" / ("d" * 32)
        dead.mkdir()
        (dead / "lock").touch()
        (dead / "0123.part").write_bytes(b"partial upload")
        # The live store is uploading right now.
        live_staging = next(p for p in (tmp_path / ".aorta" / "staging").iterdir() if p != dead)
        (live_staging / "4567.part").write_bytes(b"in flight")

        reopened = await LocalBlobStore.open(tmp_path)
        await reopened.close()

        assert not dead.exists()
        assert (live_staging / "4567.part").read_bytes() == b"in flight"
        assert await keys(live) == []
    finally:
        await live.close()


async def test_a_store_holds_its_lock_until_closed(tmp_path: Path) -> None:
    store = await LocalBlobStore.open(tmp_path)
    (staging,) = (tmp_path / ".aorta" / "staging").iterdir()
    fd = os.open(staging / "lock", os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        await store.close()
        assert not staging.exists()
        with pytest.raises(Unavailable, match="closed"):
            await store.put("k", chunks_of(b"late"))
    finally:
        os.close(fd)


@pytest.mark.parametrize(("first", "second"), [("a/b", "a/b/c"), ("a/b/c", "a/b")])
async def test_a_key_and_a_key_below_it_conflict(tmp_path: Path, first: str, second: str) -> None:
    store = await LocalBlobStore.open(tmp_path)
    try:
        await store.put(first, chunks_of(b"first"))
        with pytest.raises(Conflict, match=second):
            await store.put(second, chunks_of(b"second"))
        assert await keys(store) == [first]
        assert staged_files(tmp_path) == []
    finally:
        await store.close()


async def test_deleting_removes_emptied_folders(tmp_path: Path) -> None:
    store = await LocalBlobStore.open(tmp_path)
    try:
        await store.put("a/b/c/d", chunks_of(b"1"))
        await store.put("a/x", chunks_of(b"2"))
        await store.delete("a/b/c/d")
        assert not (tmp_path / "a" / "b").exists()
        assert (tmp_path / "a" / "x").exists()

        # So the name of a former folder can become an object.
        await store.put("a/b", chunks_of(b"3"))
        assert await store.delete_prefix("a/") == 2
        assert os.listdir(tmp_path) == [".aorta"]
    finally:
        await store.close()


async def test_an_empty_folder_left_by_a_crash_does_not_block_a_put(tmp_path: Path) -> None:
    store = await LocalBlobStore.open(tmp_path)
    try:
        (tmp_path / "a" / "b").mkdir(parents=True)
        await store.put("a/b", chunks_of(b"object"))
        assert (tmp_path / "a" / "b").read_bytes() == b"object"
    finally:
        await store.close()
