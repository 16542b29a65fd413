"""Measuring the platform's disks, refusing above the watermark, the gauge and the monitor's
report (`aorta.disk_watch`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog.testing
from prometheus_client import REGISTRY

from aorta.disk_space import RESERVE_FILE, DiskNearlyFull, DiskUsage, reserve_bytes
from aorta.disk_watch import (
    ADMISSION_REUSE_SECONDS,
    DiskWatch,
    measure,
    room_for,
    settle_reserve,
    watched_folders,
)
from aorta.errors import ErrorCode
from aorta.settings import Settings, SettingsError


class Disks:
    """Stand-in disks whose free space a test sets, by folder."""

    def __init__(self, available: dict[str, int]) -> None:
        self.available = available

    def __call__(self, folder: Path) -> DiskUsage:
        return DiskUsage(str(folder), total=1000, available=self.available[str(folder)])


def gauge(path: str) -> float | None:
    return REGISTRY.get_sample_value("aorta_disk_used_ratio", {"path": path})


def test_a_local_blob_store_is_watched_with_the_data_dir(tmp_path: Path) -> None:
    local = Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)})
    assert watched_folders(local) == [tmp_path, tmp_path / "blobs"]
    s3 = Settings.from_env({"AORTA_DATA_DIR": str(tmp_path), "AORTA_BLOB_STORE": "s3://b"})
    assert watched_folders(s3) == [tmp_path]


def test_the_watermark_setting_is_a_percentage() -> None:
    assert Settings.from_env({}).disk_watermark == 0.9
    assert Settings.from_env({"AORTA_DISK_WATERMARK": "75%"}).disk_watermark == 0.75
    with pytest.raises(SettingsError, match="AORTA_DISK_WATERMARK"):
        Settings.from_env({"AORTA_DISK_WATERMARK": "0"})


def test_a_real_folder_is_measured_on_its_disk(tmp_path: Path) -> None:
    usage = measure(tmp_path / "not" / "made" / "yet")
    assert usage.total > 0
    assert 0 <= usage.available <= usage.total


def test_room_counts_what_the_folder_holds(tmp_path: Path) -> None:
    (tmp_path / "msgs").mkdir()
    (tmp_path / "msgs" / "1.blk").write_bytes(b"x" * 4096)
    (tmp_path / "index.db").write_bytes(b"x" * 100)
    assert room_for(tmp_path, Disks({str(tmp_path): 1000})) == 1000 + 4096 + 100


async def test_admit_refuses_above_the_watermark_and_sets_the_gauge() -> None:
    disks = Disks({"/d/data": 500, "/d/blobs": 50})
    watch = DiskWatch([Path("/d/data"), Path("/d/blobs")], 0.9, disks)
    with pytest.raises(DiskNearlyFull) as refused:
        await watch.admit("new jobs", ErrorCode.JOB_STORE_ERROR)
    assert refused.value.code == ErrorCode.JOB_STORE_ERROR
    assert "/d/blobs is on a disk 95% full" in refused.value.messages[0]
    assert "/d/data" not in refused.value.messages[0]
    assert gauge("/d/blobs") == pytest.approx(0.95)
    assert gauge("/d/data") == pytest.approx(0.5)
    disks.available["/d/blobs"] = 500
    await watch.admit("new jobs")


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountedDisks(Disks):
    """`Disks` counting its measurements."""

    def __init__(self, available: dict[str, int]) -> None:
        super().__init__(available)
        self.measured = 0

    def __call__(self, folder: Path) -> DiskUsage:
        self.measured += 1
        return super().__call__(folder)


async def test_admissions_reuse_a_measurement_for_a_while_refusals_included() -> None:
    disks, clock = CountedDisks({"/d/r": 500}), Clock()
    watch = DiskWatch([Path("/d/r")], 0.9, disks, reuse_for=1.0, clock=clock, headroom=400)
    await watch.admit("new jobs")
    disks.available["/d/r"] = 50
    clock.now += 0.9
    await watch.admit("new jobs")  # still the measurement of 0.9 s ago
    assert disks.measured == 1
    clock.now += 0.1
    with pytest.raises(DiskNearlyFull):
        await watch.admit("new jobs")
    disks.available["/d/r"] = 500
    with pytest.raises(DiskNearlyFull):
        await watch.admit("new jobs")  # the refusal is reused as well
    clock.now += 1.0
    await watch.admit("new jobs")
    assert disks.measured == 3


async def test_a_disk_near_its_watermark_is_measured_for_every_admission() -> None:
    # 500 bytes free of 1000 is 400 below a 90 % watermark: less than the headroom asked.
    disks, clock = CountedDisks({"/d/r": 500}), Clock()
    watch = DiskWatch([Path("/d/r")], 0.9, disks, reuse_for=1.0, clock=clock, headroom=401)
    await watch.admit("new jobs")
    disks.available["/d/r"] = 50  # filled within the second
    with pytest.raises(DiskNearlyFull):
        await watch.admit("new jobs")
    assert disks.measured == 2


async def test_admissions_at_once_share_one_measurement() -> None:
    disks = CountedDisks({"/d/r": 50})
    watch = DiskWatch([Path("/d/r")], 0.9, disks, reuse_for=1.0, clock=Clock())
    refused = await asyncio.gather(
        *(watch.admit("new jobs") for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(answer, DiskNearlyFull) for answer in refused)
    assert disks.measured == 1


async def test_without_reuse_every_admission_measures() -> None:
    disks = CountedDisks({"/d/r": 500})
    watch = DiskWatch([Path("/d/r")], 0.9, disks)
    await watch.admit("new jobs")
    disks.available["/d/r"] = 50
    with pytest.raises(DiskNearlyFull):
        await watch.admit("new jobs")
    assert disks.measured == 2


def test_the_gateway_s_watch_reuses_for_a_second(tmp_path: Path) -> None:
    watch = DiskWatch.from_settings(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)}))
    assert watch._reuse_for == ADMISSION_REUSE_SECONDS == 1.0


async def test_a_folder_that_cannot_be_measured_refuses_nothing() -> None:
    def broken(folder: Path) -> DiskUsage:
        raise OSError("stale file handle")

    await DiskWatch([Path("/d/gone")], 0.9, broken).admit("new jobs")


async def test_the_report_says_once_when_a_disk_crosses_and_when_it_has_room() -> None:
    disks = Disks({"/d/r": 50})
    watch = DiskWatch([Path("/d/r")], 0.9, disks)
    with structlog.testing.capture_logs() as logs:
        above = await watch.report(set())
        above = await watch.report(above)
        disks.available["/d/r"] = 900
        above = await watch.report(above)
    assert above == set()
    assert [line["event"] for line in logs] == ["disk.nearly_full", "disk.room_again"]
    assert logs[0]["path"] == "/d/r"
    assert logs[0]["used"] == 0.95


def test_the_reserve_is_made_then_released_when_the_disk_fills(tmp_path: Path) -> None:
    reserve = tmp_path / RESERVE_FILE
    # Whatever this disk holds, a watermark of 100 % leaves room for the reserve...
    assert settle_reserve(tmp_path, 1.0) == "make"
    assert reserve.stat().st_size == reserve_bytes(measure(tmp_path).total)
    assert settle_reserve(tmp_path, 1.0) is None
    # ...and a watermark it is past releases it.
    assert settle_reserve(tmp_path, 0.000001) == "release"
    assert not reserve.exists()
