"""Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 unreachable."""

from __future__ import annotations

import grpc
import pytest

from aorta.cli.failures import ExitCode, PlatformFailure, exit_code_for, rpc_failure
from aorta.errors import ErrorCode


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.PIPELINE_NOT_FOUND,
        ErrorCode.JOB_NOT_FOUND,
        ErrorCode.JOB_OPERATOR_NOT_FOUND,
        ErrorCode.PAYLOAD_NOT_FOUND,
        ErrorCode.PAYLOAD_FILE_NOT_FOUND,
        ErrorCode.MODEL_NOT_FOUND,
        ErrorCode.CATALOG_NOT_FOUND,
        ErrorCode.INSTANCE_NOT_FOUND,
    ],
)
def test_every_not_found_code_exits_3(code: ErrorCode) -> None:
    assert exit_code_for(code) == ExitCode.NOT_FOUND == 3


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.PIPELINE_LOAD_ERROR,
        ErrorCode.JOB_STATE_CONFLICT,
        ErrorCode.PAYLOAD_READ_ONLY,
        ErrorCode.INTERNAL,
        -1,
    ],
)
def test_other_negative_codes_exit_1(code: int) -> None:
    assert exit_code_for(code) == ExitCode.FAILED == 1


@pytest.mark.parametrize("code", [0, 3])
def test_zero_and_positive_codes_are_success(code: int) -> None:
    assert exit_code_for(code) == ExitCode.OK


def test_a_platform_failure_carries_the_header_messages() -> None:
    failure = PlatformFailure(
        "creating a pipeline", ErrorCode.PIPELINE_LOAD_ERROR, ["def.yml:3: bad", "def.yml:9: worse"]
    )
    assert failure.exit_code == ExitCode.FAILED
    assert failure.message == (
        "creating a pipeline failed (PIPELINE_LOAD_ERROR -4353):\ndef.yml:3: bad\ndef.yml:9: worse"
    )


def test_a_platform_failure_without_messages_says_what_clara_said() -> None:
    failure = PlatformFailure("listing jobs", -77, [])
    assert failure.message.endswith("(code -77):\nInternal Server Error -77")


class _RpcError(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A stand-in for grpc's own error object (it is both an RpcError and a Call)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> None: ...
    def trailing_metadata(self) -> None: ...
    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None: ...
    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


@pytest.mark.parametrize("status", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_no_answer_exits_4_with_a_hint(status: grpc.StatusCode) -> None:
    failure = rpc_failure(_RpcError(status, "connection refused"), address="h:1", method="X.Y")
    assert failure.exit_code == ExitCode.UNREACHABLE == 4
    assert failure.message == (
        "cannot reach the Aorta platform at h:1: connection refused "
        "(is `aorta up` running? set --host or AORTA_HOST)"
    )


def test_an_unimplemented_call_names_the_method() -> None:
    error = _RpcError(grpc.StatusCode.UNIMPLEMENTED, "")
    failure = rpc_failure(error, address="h:1", method="Pipelines.Create")
    assert failure.exit_code == ExitCode.FAILED
    assert "does not implement Pipelines.Create" in failure.message


def test_other_grpc_errors_exit_1_with_the_status() -> None:
    error = _RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "message too large")
    failure = rpc_failure(error, address="h:1", method="Payloads.Upload")
    assert failure.exit_code == ExitCode.FAILED
    assert failure.message == "Payloads.Upload failed at h:1: RESOURCE_EXHAUSTED: message too large"
