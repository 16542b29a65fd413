"""How a job or pipeline is named on the command line: id, unique id prefix, or name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aorta.cli.failures import ExitCode, NotFoundFailure, UsageFailure
from aorta.cli.lookup import Candidate, choose

OLD = Candidate("ab12" + "0" * 28, "organ-segmentation", datetime(2026, 1, 1, tzinfo=UTC))
NEW = Candidate("ab13" + "1" * 28, "organ-segmentation", datetime(2026, 2, 1, tzinfo=UTC))
OTHER = Candidate("cd00" + "2" * 28, "lungs", datetime(2026, 3, 1, tzinfo=UTC))
JOBS = [OLD, NEW, OTHER]


def test_a_full_id_names_its_job() -> None:
    assert choose("job", OLD.id, JOBS) is OLD


def test_a_unique_prefix_names_its_job() -> None:
    assert choose("job", "ab12", JOBS) is OLD
    assert choose("job", "CD00", JOBS) is OTHER


def test_a_name_names_the_newest_job_of_that_name() -> None:
    assert choose("job", "organ-segmentation", JOBS) is NEW
    assert choose("job", "organ-segmentation", [NEW, OLD]) is NEW


def test_without_times_the_last_listed_is_the_newest() -> None:
    first, second = Candidate("1" * 32, "seg"), Candidate("2" * 32, "seg")
    assert choose("pipeline", "seg", [first, second]) is second


def test_a_shared_prefix_is_a_usage_error_listing_ids_names_and_times() -> None:
    with pytest.raises(UsageFailure) as raised:
        choose("job", "ab12", [OLD, Candidate("ab12" + "f" * 28, "other")])
    assert raised.value.exit_code == ExitCode.USAGE
    assert "'ab12' is the start of several job ids" in raised.value.message
    assert f"{OLD.id}  organ-segmentation  2026-01-01T00:00:00Z" in raised.value.message
    assert "ab12" + "f" * 28 + "  other  -" in raised.value.message


def test_prefixes_shorter_than_four_characters_are_only_names() -> None:
    with pytest.raises(NotFoundFailure) as raised:
        choose("job", "ab1", JOBS)
    assert raised.value.exit_code == ExitCode.NOT_FOUND
    assert raised.value.message == "no job has the id, id prefix or name 'ab1'"


def test_a_prefix_comes_before_a_name() -> None:
    named_like_a_prefix = Candidate("9" * 32, "cd00")
    assert choose("job", "cd00", [OTHER, named_like_a_prefix]) is OTHER


def test_nothing_matching_is_not_found() -> None:
    with pytest.raises(NotFoundFailure):
        choose("pipeline", "liver", JOBS)
