"""Measures the disks the platform writes to, refuses new work above the watermark, and keeps
`aorta_disk_used_ratio{path}` up to date.

The folders watched are the data dir (the state store, the event stream and the log file of
`aorta up`) and the blob folder when the blob store is a local one; an S3 store's disks are
the store's own business. The rule itself is `aorta.disk_space`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aorta.disk_space import (
    RESERVE_FILE,
    WATERMARK_OFF,
    DiskUsage,
    over_watermark,
    refusal,
    reserve_bytes,
    reserve_step,
)
from aorta.errors import ErrorCode
from aorta.logger import get_logger
from aorta.observability import metrics
from aorta.settings import Settings

log = get_logger(__name__)

_FILE = "file:///"

ADMISSION_REUSE_SECONDS = 1.0
"""How long the gateway's admissions reuse one measurement of the disks: a disk fills over
seconds, and measuring for every Create and Start cost a worker thread's round trip each
(docs/decisions.md, "Full disks: a watermark at the gateway, a reserve, and a fixed JetStream
budget")."""
REUSE_HEADROOM = 4 << 30
"""The room below the watermark every disk must have for an admission's measurement to be
reused: more than a disk takes in a second, so a reused answer never admits work onto a disk
that crossed the watermark meanwhile. A disk nearer its watermark (any small one) is measured
for every admission."""


def watched_folders(settings: Settings) -> list[Path]:
    """The data dir, and the blob folder of a `file://` blob store (without repeats)."""
    folders = [settings.data_dir]
    # As the blob store reads it: PATH is what follows `file:///`.
    if settings.blob_store.startswith(_FILE) and len(settings.blob_store) > len(_FILE):
        folders.append(Path(settings.blob_store[len(_FILE) :]))
    unique: dict[str, Path] = {}
    for folder in folders:
        unique.setdefault(str(folder.absolute()), folder.absolute())
    return list(unique.values())


def measure(folder: Path) -> DiskUsage:
    """The disk `folder` is on (its nearest existing parent's, before it is made). Blocking:
    one `statvfs`."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    stats = os.statvfs(existing)
    return DiskUsage(
        path=str(folder),
        total=stats.f_blocks * stats.f_frsize,
        available=stats.f_bavail * stats.f_frsize,
    )


class DiskWatch:
    """The watermark over `folders`: `admit` refuses new work above it, `measure_all` reports.

    Every measure sets the gauge of its folder. A folder that cannot be measured (gone, a
    broken mount) is logged and left out rather than refusing everything. `admit` answers
    from a measurement at most `reuse_for` seconds old (0: always a new one) that refused, or
    found every disk at least `headroom` bytes below the watermark; calls that arrive while one
    is under way share it. `measurer` and `clock` are `measure` and `time.monotonic` but in
    tests.
    """

    def __init__(
        self,
        folders: Sequence[Path],
        watermark: float,
        measurer: Callable[[Path], DiskUsage] = measure,
        reuse_for: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        headroom: int = REUSE_HEADROOM,
    ) -> None:
        self.folders = list(folders)
        self.watermark = watermark
        self._measure = measurer
        self._reuse_for = reuse_for
        self._clock = clock
        self._headroom = headroom
        self._recent: tuple[float, list[DiskUsage]] | None = None
        self._measuring: asyncio.Future[list[DiskUsage]] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DiskWatch:
        """The folders of `settings`, admissions reusing a measurement for
        `ADMISSION_REUSE_SECONDS`."""
        return cls(
            watched_folders(settings),
            settings.disk_watermark,
            reuse_for=ADMISSION_REUSE_SECONDS,
        )

    async def measure_all(self) -> list[DiskUsage]:
        """Every folder's disk now (one `statvfs` each, in a worker thread)."""
        return await asyncio.to_thread(self._measure_all)

    def _measure_all(self) -> list[DiskUsage]:
        usages = []
        for folder in self.folders:
            try:
                usage = self._measure(folder)
            except OSError as exc:
                log.warning("disk.unmeasured", path=str(folder), error=str(exc))
                continue
            if metrics.recording():
                metrics.DISK_USED_RATIO.labels(usage.path).set(usage.used_ratio)
            usages.append(usage)
        return usages

    async def full(self) -> list[DiskUsage]:
        """The folders whose disk is at or above the watermark now."""
        return over_watermark(await self.measure_all(), self.watermark)

    async def admit(self, what: str, code: int = ErrorCode.SERVICE_UNAVAILABLE) -> None:
        """Returns when every disk was below the watermark at the last measurement (at most
        `reuse_for` seconds ago); else raises `DiskNearlyFull` refusing `what` (e.g. "new
        jobs") with `code`."""
        full = await self._recently_full()
        if full:
            log.warning(
                "disk.refused",
                what=what,
                paths=[usage.path for usage in full],
                used=[round(usage.used_ratio, 3) for usage in full],
                watermark=self.watermark,
            )
            raise refusal(what, full, self.watermark, code)

    async def _recently_full(self) -> list[DiskUsage]:
        if self._reuse_for <= 0:
            return await self.full()
        if self._recent is not None and self._clock() - self._recent[0] < self._reuse_for:
            return self._recent[1]
        if self._measuring is None:
            self._measuring = asyncio.ensure_future(self._measure_recent())
        # Shielded: one caller cancelled must not cancel the measurement the others await.
        return await asyncio.shield(self._measuring)

    async def _measure_recent(self) -> list[DiskUsage]:
        try:
            measured_at = self._clock()
            usages = await self.measure_all()
            full = over_watermark(usages, self.watermark)
            roomy = all(self._room_below_watermark(usage) >= self._headroom for usage in usages)
            self._recent = (measured_at, full) if full or roomy else None
            return full
        finally:
            self._measuring = None

    def _room_below_watermark(self, usage: DiskUsage) -> float:
        if self.watermark >= WATERMARK_OFF:
            return float("inf")
        return usage.available - (1 - self.watermark) * usage.total

    async def report_forever(self, every: float) -> None:
        """`report` every `every` seconds until cancelled."""
        above: set[str] = set()
        while True:
            above = await self.report(above)
            await asyncio.sleep(every)

    async def report(self, above: set[str]) -> set[str]:
        """Measures once, keeping the gauges current, and logs `disk.nearly_full` for a disk
        that crossed the watermark since the last report (`above` were over it then) and
        `disk.room_again` for one back below; returns the folders over it now."""
        full = {usage.path: usage for usage in await self.full()}
        for path in full.keys() - above:
            log.warning(
                "disk.nearly_full",
                path=path,
                used=round(full[path].used_ratio, 3),
                watermark=self.watermark,
                refusing="new jobs and uploads",
            )
        for path in above - full.keys():
            log.info("disk.room_again", path=path, watermark=self.watermark)
        return set(full)


def room_for(folder: Path, measurer: Callable[[Path], DiskUsage] = measure) -> int:
    """The bytes `folder` could hold: its disk's free space plus what it holds already (the
    event stream's own files count as room, since its limit may reuse them). Blocking."""
    held = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            try:
                held += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                continue  # removed while counted
    return measurer(folder).available + held


def settle_reserve(folder: Path, watermark: float) -> str | None:
    """Releases or makes the data dir's reserve as `aorta.disk_space.reserve_step` says, and
    returns what it did. A platform stopped on a full disk then finds the reserve's room to
    start in: to write its bus configuration, open its store and answer that the disk is
    nearly full. Blocking; a reserve that cannot be made is simply not there."""
    reserve = folder / RESERVE_FILE
    usage = measure(folder)
    step = reserve_step(usage, watermark, reserve.exists())
    if step == "release":
        reserve.unlink(missing_ok=True)
        log.warning("disk.reserve_released", path=str(folder), used=round(usage.used_ratio, 3))
    elif step == "make":
        try:
            descriptor = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.posix_fallocate(descriptor, 0, reserve_bytes(usage.total))
            finally:
                os.close(descriptor)
        except OSError as exc:
            reserve.unlink(missing_ok=True)
            log.info("disk.reserve_not_made", path=str(folder), error=str(exc))
            return None
    return step
