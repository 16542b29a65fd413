"""The direct path's local work: one read of a file for its SHA-256 and each part's MD5, and
downloads written behind the hashing, in order, their write errors reaching the caller."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from aorta.cli.direct import file_digests
from aorta.cli.direct_receive import BLOCK_SIZE
from aorta.cli.failures import CliFailure
from aorta.cli.transfers import WriteBehind

PART = 3 * BLOCK_SIZE + 7  # not a multiple of the read size: parts end mid-block


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_one_read_gives_the_file_s_sha256_and_each_part_s_md5(tmp_path: Path) -> None:
    data = bytes(range(256)) * ((2 * PART + 11) // 256 + 1)
    data = data[: 2 * PART + 11]
    path = tmp_path / "study.raw"
    path.write_bytes(data)

    sha256, md5s = file_digests(path, len(data), PART)

    assert sha256 == hashlib.sha256(data).hexdigest()
    assert md5s == [_md5(data[:PART]), _md5(data[PART : 2 * PART]), _md5(data[2 * PART :])]


def test_an_empty_file_is_one_empty_part(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")

    assert file_digests(path, 0, PART) == (hashlib.sha256().hexdigest(), [_md5(b"")])


def test_a_file_that_shrank_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(b"x" * 10)

    with pytest.raises(CliFailure, match="shorter than the 11 bytes"):
        file_digests(path, 11, PART)


def test_chunks_are_written_in_order_before_the_block_ends() -> None:
    target = io.BytesIO()
    chunks = [bytes([n]) * (n + 1) for n in range(50)]

    with WriteBehind(target, depth=2) as writer:
        for chunk in chunks:
            writer.write(chunk)

    assert target.getvalue() == b"".join(chunks)


class _FullDisk(io.BytesIO):
    def write(self, data: object) -> int:
        raise OSError(28, "No space left on device")


def test_a_failed_write_reaches_the_caller() -> None:
    with pytest.raises(OSError, match="No space left"), WriteBehind(_FullDisk()) as writer:
        writer.write(b"x")
