"""A direct download's body received into a few reused buffers: every byte written and hashed
in order however many times each buffer is reused, and a body cut short, broken off or left
early neither kept as whole nor left with a thread running."""

from __future__ import annotations

import hashlib
import http.client
import threading
from pathlib import Path
from typing import cast

import pytest

from aorta.cli import direct_receive
from aorta.cli.direct_receive import Received
from aorta.cli.failures import CliFailure
from aorta.cli.selection import Selected
from aorta.cli.transfers import _fetch

BODY = bytes(range(251)) * 400  # 100,400 bytes: many more blocks than buffers


class _Body:
    """What `Received` reads of an `http.client.HTTPResponse`: `readinto` and `length`, here
    `BODY` in reads of at most `step` bytes, the last `missing` bytes never sent."""

    def __init__(self, step: int = 3000, missing: int = 0, fail_at: int | None = None) -> None:
        self.length: int | None = len(BODY)
        self._sent = 0
        self._step = step
        self._end = len(BODY) - missing
        self._fail_at = fail_at
        self.reads = 0

    def readinto(self, buffer: memoryview) -> int:
        self.reads += 1
        if self._fail_at is not None and self._sent >= self._fail_at:
            raise http.client.IncompleteRead(b"", 10)
        count = min(len(buffer), self._step, self._end - self._sent)
        buffer[:count] = BODY[self._sent : self._sent + count]
        self._sent += count
        assert self.length is not None
        self.length -= count
        return count


@pytest.fixture(autouse=True)
def _small_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(direct_receive, "READ_AHEAD", 2)
    monkeypatch.setattr(direct_receive, "BLOCK_SIZE", 4096)


def _received(body: _Body, ended: list[bool]) -> Received:
    response = cast(http.client.HTTPResponse, body)
    return Received(response, None, "/input/scan.dcm", lambda name, count: None, ended.append)


def test_every_byte_is_written_and_checked_through_two_reused_buffers(tmp_path: Path) -> None:
    ended: list[bool] = []
    target = tmp_path / "scan.dcm"
    with _received(_Body(), ended) as received:
        digest = _fetch(
            Selected("/input/scan.dcm", len(BODY), target),
            received,
            hashlib.sha256(BODY).hexdigest(),
            received.recycle,
        )

    assert digest == hashlib.sha256(BODY).hexdigest()
    assert target.read_bytes() == BODY
    assert ended == [True]


def test_a_body_cut_short_is_refused_and_not_whole(tmp_path: Path) -> None:
    ended: list[bool] = []
    target = tmp_path / "scan.dcm"
    with (
        pytest.raises(CliFailure, match=f"ended after {len(BODY) - 5} of {len(BODY)} bytes"),
        _received(_Body(missing=5), ended) as received,
    ):
        _fetch(Selected("/input/scan.dcm", len(BODY), target), received, None, received.recycle)

    assert ended == [False]
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_body_broken_off_is_a_failure_naming_the_file() -> None:
    ended: list[bool] = []
    with (
        pytest.raises(CliFailure, match=r"downloading /input/scan\.dcm from the blob store broke"),
        _received(_Body(fail_at=20_000), ended) as received,
    ):
        for chunk in received:
            received.recycle(chunk)

    assert ended == [False]


def test_leaving_early_stops_the_thread_and_keeps_nothing() -> None:
    ended: list[bool] = []
    body = _Body()
    with pytest.raises(RuntimeError), _received(body, ended) as received:
        for _chunk in received:
            raise RuntimeError("the disk is full")

    assert ended == [False]
    assert not [t for t in threading.enumerate() if t.name == "aorta-download"]
    assert body.reads <= 2  # two buffers, then it waited for one back


def test_a_chunk_is_handed_back_only_once_hashed_and_written(tmp_path: Path) -> None:
    blocks = [bytes([n]) * 65536 for n in range(200)]
    views = [memoryview(bytearray(block)) for block in blocks]

    def reuse_at_once(chunk: bytes | memoryview) -> None:
        assert isinstance(chunk, memoryview)
        chunk[:] = b"\xff" * len(chunk)  # what the next bytes received into it would do

    whole = b"".join(blocks)
    target = tmp_path / "scan.dcm"
    digest = _fetch(
        Selected("/input/scan.dcm", len(whole), target),
        views,
        hashlib.sha256(whole).hexdigest(),
        reuse_at_once,
    )

    assert digest == hashlib.sha256(whole).hexdigest()
    assert target.read_bytes() == whole
