"""The staged file's direct writes: whole blocks past the page cache where the filesystem
allows it, the rest (a short last block, a filesystem refusing direct I/O) through it, and the
same bytes and sha256 either way."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from pathlib import Path

import pytest

from aorta.blobs.staging import DIRECT_ALIGNMENT, StagedFile

BLOCK = 64 * DIRECT_ALIGNMENT


def blocks_of(total: int) -> list[bytearray]:
    data = os.urandom(total)
    return [bytearray(data[start : start + BLOCK]) for start in range(0, total, BLOCK)]


def store(tmp_path: Path, blocks: list[bytearray]) -> tuple[bytes, str | None]:
    staged = StagedFile(tmp_path / "object.part")
    staged.open()
    for block in blocks:
        staged.write(block)
    target = tmp_path / "objects" / "object"
    info = staged.commit(tmp_path, target, "objects/object")
    return target.read_bytes(), info.sha256


@pytest.mark.parametrize("total", [3 * BLOCK, 3 * BLOCK + 1000, 1000, 0])
def test_whole_blocks_and_a_short_last_one_are_stored_exactly(tmp_path: Path, total: int) -> None:
    blocks = blocks_of(total)
    expected = b"".join(blocks)

    stored, sha256 = store(tmp_path, blocks)

    assert stored == expected
    assert sha256 == hashlib.sha256(expected).hexdigest()


def test_a_filesystem_refusing_direct_io_at_open_gets_ordinary_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open
    direct_opens: list[int] = []

    def refusing_open(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if flags & getattr(os, "O_DIRECT", 0):
            direct_opens.append(flags)
            raise OSError(errno.EINVAL, "direct I/O not supported")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", refusing_open)
    blocks = blocks_of(2 * BLOCK + 7)

    stored, sha256 = store(tmp_path, blocks)

    assert stored == b"".join(blocks)
    assert sha256 == hashlib.sha256(stored).hexdigest()
    assert len(direct_opens) == (1 if hasattr(os, "O_DIRECT") else 0)


def test_a_direct_write_refused_midway_goes_on_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    refused: list[int] = []

    def refusing_once(fd: int, data: memoryview) -> int:
        direct = fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0)
        if direct and not refused:
            refused.append(fd)
            raise OSError(errno.EINVAL, "direct I/O refused")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", refusing_once)
    blocks = blocks_of(3 * BLOCK)

    stored, _ = store(tmp_path, blocks)

    # Where the test's folder takes no direct I/O at all (tmpfs) nothing is refused.
    assert stored == b"".join(blocks)
    assert len(refused) <= 1
