"""Request validation: each refusal carries the Clara code a client expects."""

from __future__ import annotations

import pytest

from aorta.api import common_pb2, jobs_pb2
from aorta.errors import ErrorCode, Invalid
from aorta.timestamps import UNIX_EPOCH_IN_CLARA_SECONDS
from aorta_services.scheduler.domain import JobPriority, requests

PIPELINE = "0123456789abcdef0123456789abcdef"
JOB = "fedcba9876543210fedcba9876543210"


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


def create_body(**fields: object) -> bytes:
    values: dict[str, object] = {"pipeline_id": ident(PIPELINE), "name": "spleen-job", **fields}
    return jobs_pb2.JobsCreateRequest(**values).SerializeToString()  # type: ignore[arg-type]


def code_of(call: object) -> int:
    with pytest.raises(Invalid) as caught:
        call()  # type: ignore[operator]
    return caught.value.code


def test_a_valid_create_is_read_whole() -> None:
    request = jobs_pb2.JobsCreateRequest(
        pipeline_id=ident(PIPELINE.upper()),
        name="spleen_job-1",
        priority=jobs_pb2.JOB_PRIORITY_HIGHER,
        input_payloads=[ident("11111111-2222-3333-4444-555555555555")],
    )
    request.metadata.update({"site": "a", "Owner": "b"})
    command = requests.parse_create(request.SerializeToString())
    assert command.pipeline_id == PIPELINE
    assert command.name == "spleen_job-1"
    assert command.priority is JobPriority.HIGHER
    assert command.input_payloads == ("11111111222233334444555555555555",)
    assert dict(command.metadata) == {"site": "a", "Owner": "b"}


def test_priority_unknown_means_normal() -> None:
    assert requests.parse_create(create_body()).priority is JobPriority.NORMAL


@pytest.mark.parametrize("value", [5, 99, -1])
def test_a_priority_beyond_clara_values_is_refused(value: int) -> None:
    assert code_of(lambda: requests.priority_of(value)) == ErrorCode.JOB_REQUEST_INVALID


@pytest.mark.parametrize("name", ["", "with space", "dot.ted", "x" * 256, "é"])
def test_a_missing_or_malformed_name_is_invalid_job_name(name: str) -> None:
    assert code_of(lambda: requests.parse_create(create_body(name=name))) == (
        ErrorCode.JOB_NAME_INVALID
    )


def test_malformed_ids_have_their_own_codes() -> None:
    bad_pipeline = create_body(pipeline_id=ident("nope"))
    assert code_of(lambda: requests.parse_create(bad_pipeline)) == ErrorCode.PIPELINE_ID_INVALID
    bad_payload = create_body(input_payloads=[ident("nope")])
    assert code_of(lambda: requests.parse_create(bad_payload)) == ErrorCode.PAYLOAD_ID_INVALID
    start = jobs_pb2.JobsStartRequest(job_id=ident("12")).SerializeToString()
    assert code_of(lambda: requests.parse_start(start)) == ErrorCode.JOB_ID_INVALID
    empty = jobs_pb2.JobsStartRequest().SerializeToString()
    assert code_of(lambda: requests.parse_start(empty)) == ErrorCode.JOB_ID_INVALID


def test_metadata_breaking_clara_rules_is_refused() -> None:
    body = create_body(metadata={"k" * 129: "v"})
    assert code_of(lambda: requests.parse_create(body)) == ErrorCode.METADATA_INVALID


def test_bytes_that_are_no_request_are_refused() -> None:
    assert code_of(lambda: requests.parse_create(b"\xff\xff")) == ErrorCode.JOB_REQUEST_INVALID


def test_start_reads_the_capital_v_variables() -> None:
    request = jobs_pb2.JobsStartRequest(
        job_id=ident(JOB),
        Variables=[jobs_pb2.JobsStartRequest.NamedValue(name="model", value="spleen")],
    )
    command = requests.parse_start(request.SerializeToString())
    assert (command.job_id, dict(command.variables)) == (JOB, {"model": "spleen"})


def test_a_variable_given_twice_is_refused() -> None:
    value = jobs_pb2.JobsStartRequest.NamedValue(name="a", value="1")
    body = jobs_pb2.JobsStartRequest(job_id=ident(JOB), Variables=[value, value])
    assert code_of(lambda: requests.parse_start(body.SerializeToString())) == (
        ErrorCode.JOB_VARIABLES_INVALID
    )


def test_a_cancel_reason_is_tidied_and_bounded() -> None:
    body = jobs_pb2.JobsCancelRequest(job_id=ident(JOB), reason="  too\n slow ")
    assert requests.parse_cancel(body.SerializeToString()).reason == "too slow"
    long = jobs_pb2.JobsCancelRequest(job_id=ident(JOB), reason="x" * 5000)
    reason = requests.parse_cancel(long.SerializeToString()).reason
    assert len(reason) == requests.MAX_REASON_CHARS and reason.endswith("...")


def clara(unix: int) -> common_pb2.Timestamp:
    return common_pb2.Timestamp(value=unix + UNIX_EPOCH_IN_CLARA_SECONDS)


def test_no_filter_selects_every_job() -> None:
    assert requests.list_filter(jobs_pb2.JobsListRequest()) == {}


def test_the_list_filter_becomes_a_store_filter() -> None:
    request = jobs_pb2.JobsListRequest(
        filter=jobs_pb2.JobsListRequest.JobFilter(
            has_state=[jobs_pb2.JOB_STATE_STOPPED],
            has_status=[jobs_pb2.JOB_STATUS_FAULTED, jobs_pb2.JOB_STATUS_CANCELED],
            pipeline_id=[ident(PIPELINE)],
            created_after=clara(1_700_000_000),
            completed_before=clara(1_800_000_000),
        )
    )
    assert requests.list_filter(request) == {
        "state": {"$in": [3]},
        "status": {"$in": [2, 3]},
        "pipeline_id": {"$in": [PIPELINE]},
        "created": {"$gt": 1_700_000_000.0},
        "stopped": {"$lt": 1_800_000_000.0},
    }


def test_unset_filter_times_are_ignored() -> None:
    request = jobs_pb2.JobsListRequest(
        filter=jobs_pb2.JobsListRequest.JobFilter(created_after=common_pb2.Timestamp(value=0))
    )
    assert requests.list_filter(request) == {}


def test_an_unknown_state_in_the_filter_is_refused() -> None:
    request = jobs_pb2.JobsListRequest(
        filter=jobs_pb2.JobsListRequest.JobFilter(has_state=[7])  # type: ignore[list-item]
    )
    assert code_of(lambda: requests.list_filter(request)) == ErrorCode.JOB_REQUEST_INVALID
