"""Numbers and moments as people read them: sizes, durations, "3m ago", Clara enum names."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.filesize import decimal

from aorta.api import common_pb2
from aorta.timestamps import from_clara_seconds, to_clara_string

NOT_SET = "-"


def size(count: int) -> str:
    """`1.2 MB`: decimal units, as the progress bars show them."""
    return str(decimal(count))


def duration(seconds: float, *, precise: bool = False) -> str:
    """`12s`, `1m 05s`, `2h 03m`, `3d 4h`; `precise` shows `850ms` and `4.2s` below a minute
    (for transfers timed here; Clara timestamps are whole seconds)."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 60:
        if not precise:
            return f"{int(seconds)}s"
        return f"{int(seconds * 1000)}ms" if seconds < 1 else f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def ago(moment: datetime | None, now: datetime) -> str:
    """`just now`, `12s ago`, `5m ago`, `3h ago`, `2d ago`; `in 5m` for the future."""
    if moment is None:
        return NOT_SET
    delta = (now - moment).total_seconds()
    future = delta < 0
    seconds = int(abs(delta))
    if seconds < 5:
        return "just now"
    for unit, width in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= width:
            amount = f"{seconds // width}{unit}"
            return f"in {amount}" if future else f"{amount} ago"
    raise AssertionError("unreachable: seconds >= 5")


def moment(timestamp: common_pb2.Timestamp) -> datetime | None:
    """The moment a Clara `Timestamp` names; None when not set (value <= 0)."""
    return from_clara_seconds(timestamp.value)


def stamp(when: datetime | None) -> str:
    """Clara's `YYYY-MM-DD HH:MM:SSZ` (UTC), or `-` when not set."""
    return to_clara_string(when) if when is not None else NOT_SET


def iso(when: datetime | None) -> str | None:
    """RFC 3339 UTC for JSON output, in whole seconds as Clara keeps them; None when not set."""
    if when is None:
        return None
    # isoformat, not strftime: glibc's %Y writes a year below 1000 without its zeros.
    return when.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def short_name(full: str, prefix: str) -> str:
    """`JOB_STATE_RUNNING` -> `RUNNING`, the form the CLI prints and accepts."""
    return full.removeprefix(prefix)
