"""How full a disk may get before the platform refuses new work (pure, no I/O).

The platform writes to its disks as long as it runs: the state store, the event stream, job
logs, payload and model bytes. A disk that fills up halfway through a write leaves a request
hung or a file cut short, so new jobs and uploads are refused a little before that, at a
watermark (`AORTA_DISK_WATERMARK`, 90 % by default), while reads and the work already
running go on. The measurements come from `aorta.disk_watch`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aorta.errors import ErrorCode, Unavailable

WATERMARK_OFF = 1.0
"""A watermark of 100 % never refuses anything."""


@dataclass(frozen=True)
class DiskUsage:
    """One folder's disk at one moment: `total` bytes, of which `available` are free for the
    platform (what an unprivileged writer may still use, as `df` shows)."""

    path: str
    total: int
    available: int

    @property
    def used_ratio(self) -> float:
        """How full the disk is for the platform, 0 to 1 (a disk of no size counts as full)."""
        if self.total <= 0:
            return 1.0
        return min(1.0, max(0.0, 1 - self.available / self.total))


class DiskNearlyFull(Unavailable):
    """New work refused because a disk the platform writes to is fuller than the watermark;
    the message names the folder, how full its disk is and what to do."""


def over_watermark(usages: Iterable[DiskUsage], watermark: float) -> list[DiskUsage]:
    """The usages at or above `watermark` (a ratio); none when the watermark is off."""
    if watermark >= WATERMARK_OFF:
        return []
    return [usage for usage in usages if usage.used_ratio >= watermark]


def refusal(
    what: str, full: list[DiskUsage], watermark: float, code: int = ErrorCode.SERVICE_UNAVAILABLE
) -> DiskNearlyFull:
    """The error refusing `what` (e.g. "new jobs") for the disks in `full`."""
    disks = "; ".join(
        f"{usage.path} is on a disk {usage.used_ratio:.0%} full "
        f"({_size(usage.available)} free of {_size(usage.total)})"
        for usage in full
    )
    return DiskNearlyFull(
        f"disk nearly full: {disks}, above the watermark of {watermark:.0%}, so {what} are "
        "refused until there is room",
        "free space on that disk (remove stopped jobs with `aorta delete job`, unused payloads "
        "and models) or raise AORTA_DISK_WATERMARK; reads and running jobs go on",
        code=code,
    )


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


EVENT_STREAM_SHARE = 0.1
"""The share of its disk's room the event stream may take: events are small and replayed
rarely, payloads and the state store need the rest."""
EVENT_STREAM_FLOOR = 8 << 20
"""The least the event stream keeps (8 MiB, thousands of events), even on a full disk."""


def event_stream_bytes(cap: int, room: int) -> int:
    """How many bytes the event stream may keep, given the most it may (`cap`,
    `AORTA_EVENTS_MAX_BYTES`) and the `room` for it on its disk (free space plus what the
    stream already holds): a tenth of the room, within the floor and the cap."""
    return max(min(EVENT_STREAM_FLOOR, cap), min(cap, int(room * EVENT_STREAM_SHARE)))


RESERVE_FILE = "disk-reserve"
"""The file of the data dir that holds `reserve_bytes` for a platform started on a full disk."""


def reserve_bytes(total: int) -> int:
    """The room kept in reserve on a disk of `total` bytes: a hundredth of it, at least 4 MiB
    and at most 256 MiB, enough for a platform to start and refuse new work clearly."""
    return min(256 << 20, max(4 << 20, total // 100))


def reserve_step(usage: DiskUsage, watermark: float, reserve_held: bool) -> str | None:
    """What to do with the reserve at start: `"release"` it when the disk is at the watermark
    (so the platform has room to start on it), `"make"` it when it is absent and the disk
    stays below the watermark with it, None to leave things as they are."""
    if reserve_held:
        return "release" if usage.used_ratio >= min(watermark, WATERMARK_OFF) else None
    size = reserve_bytes(usage.total)
    after = DiskUsage(usage.path, usage.total, usage.available - size)
    return "make" if after.available > 0 and after.used_ratio < watermark else None
