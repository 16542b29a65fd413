"""The watermark rule and the event stream's share of a disk (`aorta.disk_space`)."""

from __future__ import annotations

from aorta.disk_space import (
    EVENT_STREAM_FLOOR,
    DiskNearlyFull,
    DiskUsage,
    event_stream_bytes,
    over_watermark,
    refusal,
    reserve_bytes,
    reserve_step,
)
from aorta.errors import ErrorCode, Unavailable

GIB = 1 << 30


def test_used_ratio_is_what_an_unprivileged_writer_cannot_use() -> None:
    assert DiskUsage("/data", total=100, available=25).used_ratio == 0.75
    assert DiskUsage("/data", total=100, available=100).used_ratio == 0.0
    assert DiskUsage("/gone", total=0, available=0).used_ratio == 1.0


def test_disks_at_or_above_the_watermark_are_the_full_ones() -> None:
    data = DiskUsage("/data", total=100, available=10)
    blobs = DiskUsage("/blobs", total=100, available=11)
    assert over_watermark([data, blobs], 0.9) == [data]
    assert over_watermark([data, blobs], 0.95) == []


def test_a_watermark_of_100_percent_refuses_nothing() -> None:
    assert over_watermark([DiskUsage("/data", total=100, available=0)], 1.0) == []


def test_the_refusal_names_the_folder_how_full_and_what_to_do() -> None:
    full = [DiskUsage("/srv/aorta", total=10 * GIB, available=GIB // 2)]
    error = refusal("new jobs", full, 0.9, ErrorCode.JOB_STORE_ERROR)
    assert isinstance(error, DiskNearlyFull)
    assert isinstance(error, Unavailable)
    assert error.code == ErrorCode.JOB_STORE_ERROR
    first, advice = error.messages
    assert first.startswith("disk nearly full: /srv/aorta is on a disk 95% full")
    assert "512.0 MiB free of 10.0 GiB" in first
    assert "watermark of 90%" in first
    assert "new jobs are refused" in first
    assert "AORTA_DISK_WATERMARK" in advice
    assert "aorta delete job" in advice


def test_the_event_stream_takes_a_tenth_of_the_room_within_floor_and_cap() -> None:
    assert event_stream_bytes(GIB, 100 * GIB) == GIB
    assert event_stream_bytes(GIB, 2 * GIB) == 2 * GIB // 10
    assert event_stream_bytes(GIB, 0) == EVENT_STREAM_FLOOR
    assert event_stream_bytes(4 << 20, 0) == 4 << 20


def test_the_reserve_is_a_hundredth_of_the_disk_within_bounds() -> None:
    assert reserve_bytes(256 << 20) == 4 << 20
    assert reserve_bytes(10 * GIB) == 10 * GIB // 100
    assert reserve_bytes(1 << 40) == 256 << 20


def test_the_reserve_is_released_on_a_full_disk_and_made_where_there_is_room() -> None:
    full = DiskUsage("/data", total=GIB, available=GIB // 20)
    roomy = DiskUsage("/data", total=GIB, available=GIB // 2)
    tight = DiskUsage("/data", total=GIB, available=GIB // 10 + (5 << 20))
    assert reserve_step(full, 0.9, reserve_held=True) == "release"
    assert reserve_step(roomy, 0.9, reserve_held=True) is None
    assert reserve_step(roomy, 0.9, reserve_held=False) == "make"
    # Making it would take the disk past the watermark: not made.
    assert reserve_step(tight, 0.9, reserve_held=False) is None
    assert reserve_step(full, 0.9, reserve_held=False) is None
