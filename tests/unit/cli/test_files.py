"""What an upload sends: payload names relative to the folder given, 64 KiB chunks, one stream."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aorta.cli.failures import UsageFailure
from aorta.cli.files import CHUNK_SIZE, collect, read_chunks, text_chunks, upload_requests


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "study"
    (root / "series" / "deep").mkdir(parents=True)
    (root / "a.dcm").write_bytes(b"x" * (CHUNK_SIZE * 2 + 5))
    (root / "series" / "b.dcm").write_bytes(b"y" * CHUNK_SIZE)
    (root / "series" / "deep" / "c.txt").write_bytes(b"")
    return root


def test_a_folder_s_files_are_named_relative_to_it(folder: Path) -> None:
    names = [f.name for f in collect(folder)]
    assert names == ["a.dcm", "series/b.dcm", "series/deep/c.txt"]


def test_a_single_file_is_named_after_itself(folder: Path) -> None:
    [found] = collect(folder / "series" / "b.dcm")
    assert (found.name, found.size) == ("b.dcm", CHUNK_SIZE)


def test_a_prefix_puts_the_files_in_a_folder_of_the_payload(folder: Path) -> None:
    names = [f.name for f in collect(folder / "series", prefix="/day1/")]
    assert names == ["day1/b.dcm", "day1/deep/c.txt"]


def test_a_linked_folder_is_not_followed_so_a_loop_cannot_hang(folder: Path) -> None:
    os.symlink(folder, folder / "series" / "loop")
    assert [f.name for f in collect(folder)] == ["a.dcm", "series/b.dcm", "series/deep/c.txt"]


def test_something_that_is_neither_file_nor_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageFailure):
        collect(tmp_path / "missing")


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, [0]), (1, [1]), (CHUNK_SIZE, [CHUNK_SIZE]), (CHUNK_SIZE + 1, [CHUNK_SIZE, 1])],
)
def test_chunks_are_at_most_64_kib(tmp_path: Path, size: int, expected: list[int]) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"z" * size)
    assert [len(c) for c in read_chunks(path)] == expected


def test_one_stream_carries_every_file_each_message_naming_its_payload_and_file(
    folder: Path,
) -> None:
    advanced: list[tuple[str, int]] = []
    requests = list(
        upload_requests("ab" * 16, collect(folder), lambda name, n: advanced.append((name, n)))
    )
    sent = [(r.details.name, len(r.data)) for r in requests]
    assert sent == [
        ("a.dcm", CHUNK_SIZE),
        ("a.dcm", CHUNK_SIZE),
        ("a.dcm", 5),
        ("series/b.dcm", CHUNK_SIZE),
        ("series/deep/c.txt", 0),
    ]
    assert advanced == sent
    assert {r.payload_id.value for r in requests} == {"ab" * 16}
    assert [r.details.size for r in requests[:3]] == [CHUNK_SIZE * 2 + 5] * 3
    assert requests[0].HasField("header") and not requests[1].HasField("header")
    joined = b"".join(r.data for r in requests if r.details.name == "a.dcm")
    assert joined == (folder / "a.dcm").read_bytes()


def test_text_chunks_never_split_a_character() -> None:
    text = "é" * 10  # two bytes each
    pieces = list(text_chunks(text, chunk_size=5))
    assert all(len(p.encode()) <= 5 for p in pieces)
    assert "".join(pieces) == text
    assert list(text_chunks("")) == [""]
