"""Time on the Clara wire: whole seconds since 0001-01-01T00:00:00Z.

Aorta keeps UTC `datetime`s inside; this module is the only place the year-1 epoch appears.
"""

from __future__ import annotations

from datetime import UTC, datetime

_YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC)
# Seconds from 0001-01-01 to 1970-01-01: what the Clara python client adds when it encodes.
UNIX_EPOCH_IN_CLARA_SECONDS = 62135596800


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_clara_seconds(moment: datetime | None) -> int:
    """`Timestamp.value` for `moment`; 0 (Clara's "not set") for None."""
    if moment is None:
        return 0
    return int((moment.astimezone(UTC) - _YEAR_ONE).total_seconds())


def from_clara_seconds(value: int) -> datetime | None:
    """The moment a `Timestamp.value` names; None for values <= 0 ("not set")."""
    if value <= 0:
        return None
    return datetime.fromtimestamp(value - UNIX_EPOCH_IN_CLARA_SECONDS, UTC)


def to_clara_string(moment: datetime | None) -> str:
    """The deprecated string timestamp fields: `YYYY-MM-DD HH:MM:SSZ` in UTC, whole seconds
    (microseconds dropped), empty when not set.

    The year always has four digits, zero-padded below 1000, as Clara's own format has them
    and as its Python client parses them (`%Y` in `strptime` takes exactly four); `strftime`'s
    `%Y` does not pad on every platform (glibc writes year 5 as `5`)."""
    if moment is None:
        return ""
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"
    )


def to_iso(moment: datetime) -> str:
    """The form stored in documents and events (RFC 3339, UTC, microseconds)."""
    # Fixed microsecond precision so that these strings sort as the moments they name.
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
