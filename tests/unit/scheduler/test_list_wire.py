"""The hand-written `Jobs.List` item and `Jobs/Page` answer parse to exactly the messages
`answers.list_item` builds, for any job a listing can hold."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aorta.api import aorta_jobs_pb2, common_pb2, jobs_pb2
from aorta.errors import ErrorCode, Invalid
from aorta.ids import JobId, PayloadId, PipelineId
from aorta_services.scheduler.domain import JobPhase, JobPriority, answers, list_wire
from aorta_services.scheduler.domain.listing import JobListing

_FIRST, _LAST = -62_135_596_800, 253_402_300_799
"""0001-01-01 00:00:00 and 9999-12-31 23:59:59 UTC, the range `datetime` holds, in Unix time."""
# Every time a document may hold: fractions included (whole seconds on the wire), or an int.
_TIMES = st.floats(min_value=_FIRST, max_value=_LAST, allow_nan=False) | st.integers(_FIRST, _LAST)
_TEXT = st.text(max_size=300)

listings = st.builds(
    JobListing,
    id=st.text(alphabet="0123456789abcdef", max_size=32).map(JobId),
    name=_TEXT,
    pipeline_id=st.text(alphabet="0123456789abcdef", max_size=32).map(PipelineId),
    payload_id=st.text(alphabet="0123456789abcdef", max_size=32).map(PayloadId),
    priority=st.sampled_from(JobPriority),
    phase=st.sampled_from(JobPhase),
    created=_TIMES,
    started=st.none() | _TIMES,
    stopped=st.none() | _TIMES,
    metadata=st.dictionaries(_TEXT, _TEXT, max_size=5),
)


@given(listings)
def test_the_encoded_item_is_the_message_list_item_builds(job: JobListing) -> None:
    encoded = jobs_pb2.JobsListResponse.FromString(list_wire.list_item(job))

    expected = answers.list_item(job)
    assert encoded == expected
    assert encoded.job_details.HasField("payload_id") and encoded.HasField("header")


@given(st.lists(listings, max_size=4), st.text(max_size=40))
def test_a_page_is_the_message_of_its_jobs_and_cursor(jobs: list[JobListing], cursor: str) -> None:
    encoded = list_wire.page([list_wire.job_details(job) for job in jobs], cursor)

    expected = aorta_jobs_pb2.JobsPageResponse(header=answers.header(), next_cursor=cursor)
    expected.jobs.extend(answers.list_item(job).job_details for job in jobs)
    assert aorta_jobs_pb2.JobsPageResponse.FromString(encoded) == expected


def test_a_large_metadata_value_gets_a_multi_byte_length() -> None:
    job = JobListing(
        id=JobId("a" * 32),
        name="big",
        pipeline_id=PipelineId("b" * 32),
        payload_id=PayloadId(""),
        priority=JobPriority.HIGHER,
        phase=JobPhase.RUNNING,
        created=1.5,
        metadata={"blob": "x" * 3_000_000},
    )

    encoded = list_wire.list_item(job)

    assert encoded == answers.list_item(job).SerializeToString(deterministic=True)


@given(st.dictionaries(_TEXT, _TEXT, min_size=17, max_size=60))
def test_many_metadata_entries_encode_as_the_message_does(metadata: dict[str, str]) -> None:
    job = JobListing(
        id=JobId("a" * 32),
        name="many",
        pipeline_id=PipelineId("b" * 32),
        payload_id=PayloadId("c" * 32),
        priority=JobPriority.NORMAL,
        phase=JobPhase.SUCCEEDED,
        created=1.5,
        metadata=metadata,
    )
    encoded = jobs_pb2.JobsListResponse.FromString(list_wire.list_item(job))
    assert encoded == answers.list_item(job)


def _document(job: JobListing) -> dict[str, object]:
    """The projected document a store page holds for `job` (`LISTED_FIELDS` and its id)."""
    document: dict[str, object] = {
        "id": job.id,
        "name": job.name,
        "pipeline_id": job.pipeline_id,
        "payload_id": job.payload_id,
        "priority": int(job.priority),
        "phase": job.phase.value,
        "created": job.created,
        "metadata": [[key, value] for key, value in job.metadata.items()],
    }
    if job.started is not None:
        document["started"] = job.started
    if job.stopped is not None:
        document["stopped"] = job.stopped
    return document


@given(listings)
def test_a_stored_document_encodes_as_its_listing(job: JobListing) -> None:
    document = _document(job)

    assert list_wire.stored_item(document) == list_wire.list_item(
        JobListing.from_document(document)
    )
    assert list_wire.stored_metadata_size(document) == job.metadata_size()


@pytest.mark.parametrize(
    "seconds",
    [
        0.0,
        -0.0000005,  # half a microsecond before the epoch: rounds to it, half to even
        0.0000005,
        1.9999995,  # rounds up to the next second
        -1.5,
        -1e9,  # 1938
        253402300799.9999,  # the last second of year 9999
        1765000000.123456,
        1765000000,  # an int, as a document may hold
        951782400.0,  # 2000-02-29
    ],
)
def test_times_are_the_text_and_timestamp_of_datetime(seconds: float) -> None:
    text, stamp = list_wire._times(seconds)

    assert text.decode() == answers.clara_string(seconds)
    expected = answers.timestamp(seconds)
    assert common_pb2.Timestamp.FromString(stamp) == expected


@given(st.none() | _TIMES)
@example(-62_135_596_800.0)  # 0001-01-01 00:00:00
@example(-59_042_995_199.5)  # 0099-01-01 00:00:00.5: two digits of year
@example(-30_610_224_001.0)  # 0999-12-31 23:59:59, the last second of a three-digit year
@example(-30_610_224_000.0)  # 1000-01-01 00:00:00
@example(1_709_294_400.999999)  # microseconds: the text keeps the whole second
@example(0)  # Unix zero is a time, not "not set"
def test_both_time_formats_agree_in_clara_s_format_across_the_whole_range(
    seconds: float | None,
) -> None:
    """Jobs.List's times written from stored documents are those Jobs.Status builds with
    `answers`, in Clara's `YYYY-MM-DD HH:MM:SSZ`: four digits of year (zero-padded, as
    Clara's Python client parses with `strptime`), the UTC moment's whole second."""
    text, stamp = list_wire._times(seconds)

    assert text.decode() == answers.clara_string(seconds)
    assert common_pb2.Timestamp.FromString(stamp) == answers.timestamp(seconds)
    if seconds is None:
        assert text == b""
        return
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", text.decode())
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=0, tzinfo=None)
    assert datetime.strptime(text.decode(), "%Y-%m-%d %H:%M:%SZ") == moment


@pytest.mark.parametrize("seconds", [-62135596801.0, 253402300800.0, float("nan")])
def test_times_datetime_cannot_hold_are_refused(seconds: float) -> None:
    with pytest.raises((ValueError, OverflowError)):
        list_wire._times(seconds)


@pytest.mark.parametrize(
    "change",
    [
        {"phase": "paused"},
        {"priority": 9},
        {"created": "yesterday"},
        {"metadata": [["only-a-key"]]},
        {"name": 3},
    ],
)
def test_a_malformed_document_is_a_store_error(change: dict[str, object]) -> None:
    job = JobListing(
        id=JobId("a" * 32),
        name="job",
        pipeline_id=PipelineId("b" * 32),
        payload_id=PayloadId("c" * 32),
        priority=JobPriority.NORMAL,
        phase=JobPhase.SUCCEEDED,
        created=1.5,
    )

    with pytest.raises(Invalid) as raised:
        list_wire.stored_item(_document(job) | change)

    assert raised.value.code == ErrorCode.JOB_STORE_ERROR
