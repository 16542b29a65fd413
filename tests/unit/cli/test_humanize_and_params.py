"""Readable sizes, durations and ages; the option values people type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
import pytest

from aorta.cli.humanize import ago, duration, iso, size, stamp
from aorta.cli.params import JOB_ID, KEY_VALUE, PRIORITY, parse_moment

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.4, "0s"), (12.7, "12s"), (65, "1m 05s"), (3 * 3600 + 180, "3h 03m"), (90000, "1d 1h")],
)
def test_durations(seconds: float, expected: str) -> None:
    assert duration(seconds) == expected


def test_precise_durations_show_fractions_below_a_minute() -> None:
    assert (duration(0.25, precise=True), duration(4.26, precise=True)) == ("250ms", "4.3s")


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=2), "just now"),
        (timedelta(seconds=42), "42s ago"),
        (timedelta(minutes=5, seconds=3), "5m ago"),
        (timedelta(days=2, hours=1), "2d ago"),
        (timedelta(minutes=-5), "in 5m"),
    ],
)
def test_ages(delta: timedelta, expected: str) -> None:
    assert ago(NOW - delta, NOW) == expected


def test_unset_moments() -> None:
    assert (ago(None, NOW), stamp(None), iso(None)) == ("-", "-", None)
    assert (stamp(NOW), iso(NOW)) == ("2024-05-01 12:00:00Z", "2024-05-01T12:00:00Z")
    early = datetime(999, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    assert (stamp(early), iso(early)) == ("0999-01-02 03:04:05Z", "0999-01-02T03:04:05Z")


def test_sizes_use_decimal_units() -> None:
    assert (size(999), size(1_500_000)) == ("999 bytes", "1.5 MB")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("90m", NOW - timedelta(minutes=90)),
        ("1.5d", NOW - timedelta(hours=36)),
        ("2024-04-30T10:00:00Z", datetime(2024, 4, 30, 10, tzinfo=UTC)),
        ("2024-04-30T12:00:00+02:00", datetime(2024, 4, 30, 10, tzinfo=UTC)),
    ],
)
def test_moments(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


def test_a_moment_without_a_zone_is_local_time() -> None:
    local = datetime(2024, 4, 30, 10, 0).astimezone()
    assert parse_moment("2024-04-30T10:00", NOW) == local.astimezone(UTC)


def test_key_values_split_at_the_first_equals_sign() -> None:
    assert KEY_VALUE.convert("expr=a=b", None, None) == ("expr", "a=b")
    with pytest.raises(click.BadParameter):
        KEY_VALUE.convert("novalue", None, None)


def test_ids_are_canonical_and_bad_ids_are_usage_errors() -> None:
    assert JOB_ID.convert("3FD032FC-3FD0-32FC-3FD0-32FC3FD032FC", None, None) == "3fd032fc" * 4
    with pytest.raises(click.BadParameter, match="not valid"):
        JOB_ID.convert("42", None, None)


def test_clara_s_priority_spellings_are_accepted() -> None:
    assert [PRIORITY.convert(v, None, None) for v in ("low", "HIGH", "immediate")] == [
        "lower",
        "higher",
        "immediate",
    ]
