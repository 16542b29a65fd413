"""The run log: what it keeps, when it is pushed, and how it reads back as lines."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from aorta.blobs import BlobInfo, BlobStore
from aorta.errors import NotFound
from aorta.executors import run_log
from aorta.executors.run_log import RunLog, file_chunks, open_for_reading, split_lines


class RecordingBlobs:
    """Keeps each put's bytes and each deleted key; `put` and `delete` are all the log uses."""

    def __init__(self) -> None:
        self.puts: list[tuple[str, bytes]] = []
        self.deleted: list[str] = []

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> BlobInfo:
        data = b"".join([chunk async for chunk in chunks])
        self.puts.append((key, data))
        return BlobInfo(key, len(data), datetime.now(UTC))

    async def delete(self, key: str) -> None:
        self.deleted.append(key)
        raise NotFound(key)


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def lines_of(*parts: bytes) -> list[str]:
    return [line async for line in split_lines(chunks_of(*parts))]


@pytest.fixture
async def log(tmp_path: Path) -> RunLog:
    created = RunLog(tmp_path / "operator.log", max_bytes=1000)
    await created.create()
    return created


async def test_lines_are_split_across_chunks_and_encodings(tmp_path: Path) -> None:
    snowman = "☃".encode()
    assert await lines_of(b"a\nb", b"c\r\n", snowman[:1], snowman[1:] + b"\n", b"partial") == [
        "a",
        "bc",
        "☃",
        "partial",
    ]
    assert await lines_of(b"bad \xff byte\n") == ["bad \ufffd byte"]
    assert await lines_of() == []
    assert await lines_of(b"\n\n") == ["", ""]


async def test_a_note_starts_on_a_line_of_its_own(log: RunLog) -> None:
    await log.append(b"no newline yet")
    await log.note("stopping")
    await log.note("stopped")

    assert log.path.read_text() == "no newline yet\n[aorta] stopping\n[aorta] stopped\n"


async def test_a_log_past_its_cap_keeps_its_most_recent_lines(log: RunLog) -> None:
    for number in range(200):
        await log.append(f"line {number:03}\n".encode())

    text = log.path.read_text()
    assert len(text.encode()) <= 1000
    first, *kept = text.splitlines()
    assert first.startswith("[aorta] ") and "bytes of earlier output were dropped" in first
    assert kept[-1] == "line 199"
    numbers = [int(line.split()[1]) for line in kept]
    assert numbers == list(range(numbers[0], 200))  # whole lines, none missing at the end
    assert await log.tail(2) == ["line 198", "line 199"]


async def test_the_dropped_count_adds_up_across_truncations(log: RunLog) -> None:
    total = 0
    for _ in range(30):
        chunk = b"x" * 99 + b"\n"
        total += len(chunk)
        await log.append(chunk)

    first, *kept = log.path.read_text().splitlines()
    dropped = int(first.split()[1])
    assert dropped + sum(len(line) + 1 for line in kept) == total


async def test_a_push_happens_only_when_something_changed(log: RunLog) -> None:
    blobs = RecordingBlobs()
    await log.push(blobs, "logs/job/op.log")  # type: ignore[arg-type]
    await log.push(blobs, "logs/job/op.log")  # type: ignore[arg-type]
    await log.append(b"hello\n")
    await log.push(blobs, "logs/job/op.log")  # type: ignore[arg-type]
    await log.push(blobs, "logs/job/op.log")  # type: ignore[arg-type]

    assert blobs.puts == [("logs/job/op.log", b""), ("logs/job/op.log", b"hello\n")]


async def test_a_log_nothing_was_written_to_is_removed_rather_than_stored_empty(
    log: RunLog,
) -> None:
    blobs = RecordingBlobs()
    key = "logs/job/op.log"
    await log.push(blobs, key, absent_when_empty=True)  # type: ignore[arg-type]
    await log.push(blobs, key, absent_when_empty=True)  # type: ignore[arg-type]
    assert (blobs.puts, blobs.deleted) == ([], [key])

    await log.append(b"hello\n")
    await log.push(blobs, key, absent_when_empty=True)  # type: ignore[arg-type]
    assert (blobs.puts, blobs.deleted) == ([(key, b"hello\n")], [key])


async def test_a_log_of_an_earlier_process_is_stored_even_when_asked_to_skip_empty_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "operator.log"
    path.write_bytes(b"before the crash\n")
    blobs = RecordingBlobs()

    log = RunLog(path, max_bytes=1000)
    await log.push(blobs, "k", absent_when_empty=True)  # type: ignore[arg-type]

    assert blobs.puts == [("k", b"before the crash\n")]


async def test_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert await RunLog(tmp_path / "none.log", max_bytes=1024).tail(5) == []


async def test_chunks_dropped_before_their_first_read_still_close_their_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "operator.log"
    path.write_bytes(b"output\n")
    file = await open_for_reading(path)
    chunks = file_chunks(file)
    del chunks
    gc.collect()
    assert file.closed


async def test_a_push_cancelled_before_the_store_reads_leaves_no_file_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[BinaryIO] = []

    async def recording(path: Path) -> BinaryIO:
        opened.append(await open_for_reading(path))
        return opened[-1]

    class StalledBlobs:
        """A store that takes the put and never reads it (a slow start, then a cancel)."""

        def __init__(self) -> None:
            self.called = asyncio.Event()

        async def put(self, key: str, chunks: AsyncIterable[bytes]) -> BlobInfo:
            self.called.set()
            await asyncio.Event().wait()
            raise AssertionError("never resumed")

    monkeypatch.setattr(run_log, "open_for_reading", recording)
    log = RunLog(tmp_path / "operator.log", max_bytes=1 << 20)
    await log.create()
    await log.append(b"output\n")
    blobs = StalledBlobs()
    push = asyncio.create_task(log.push(cast(BlobStore, blobs), "logs/job/op.log"))
    await blobs.called.wait()
    push.cancel()
    await asyncio.wait([push])
    assert push.cancelled()
    del push  # and with it the put's frame, the last holder of the chunks
    gc.collect()
    assert [file.closed for file in opened] == [True]


async def test_an_open_cancelled_while_its_thread_opens_the_file_closes_it(tmp_path: Path) -> None:
    # Opening a FIFO's read end blocks until a writer opens the other: the thread is held in
    # its open while the caller is cancelled, and released after. A file left to the garbage
    # collector fails the test with its ResourceWarning (seen under load in a services test).
    fifo = tmp_path / "operator.log"
    os.mkfifo(fifo)
    opening = asyncio.create_task(open_for_reading(fifo))
    await asyncio.sleep(0)
    opening.cancel()
    await asyncio.wait([opening])
    assert opening.cancelled()
    writer = await asyncio.to_thread(os.open, fifo, os.O_WRONLY)  # returns once it was opened
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    os.write(writer, b"x")
                except BrokenPipeError:
                    break  # no reader left: the opened file was closed
                await asyncio.sleep(0.01)
    finally:
        os.close(writer)
