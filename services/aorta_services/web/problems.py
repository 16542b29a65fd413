"""The console's errors, and the HTTP status each one gets.

Every failure reaches the browser as `{"error": {"code": ..., "message": ...}}` with an HTTP
status that says what kind of failure it is. The platform reports failures two ways, and both
are translated here once: a negative Clara `ResponseHeader.code` (by its kind: not found,
invalid, a state conflict) and a non-OK gRPC status (refusals by the door, an unreachable
platform).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from aorta.errors import ErrorCode


class ApiError(Exception):
    """A failure to answer with: HTTP `status`, a stable `code` and a readable `message`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, dict[str, str]]:
        """The JSON body of the error response."""
        return {"error": {"code": self.code, "message": self.message}}


def not_found(message: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


def unauthenticated(message: str) -> ApiError:
    return ApiError(401, "UNAUTHENTICATED", message)


_NOT_FOUND = frozenset(code for code in ErrorCode if code.name.endswith("_NOT_FOUND"))
_INVALID = frozenset(
    code
    for code in ErrorCode
    if code.name.endswith(("_INVALID", "_DEFINITION_ERROR", "_LOAD_ERROR"))
)
_CONFLICT = frozenset(
    {
        ErrorCode.JOB_STATE_CONFLICT,
        ErrorCode.PAYLOAD_READ_ONLY,
        ErrorCode.PAYLOAD_IN_USE,
        ErrorCode.MODEL_IN_USE,
    }
)


def from_header(code: int, messages: Sequence[str], action: str) -> ApiError:
    """The error a negative Clara response `code` with `messages` means, for `action`
    ("starting job 1f3e...")."""
    text = " ".join(messages) if messages else f"{action} failed (code {code})"
    if code in _NOT_FOUND:
        return ApiError(404, "NOT_FOUND", text)
    if code in _CONFLICT:
        return ApiError(409, "FAILED_PRECONDITION", text)
    if code in _INVALID:
        return ApiError(400, "INVALID_ARGUMENT", text)
    if code == ErrorCode.SERVICE_UNAVAILABLE:
        return ApiError(503, "UNAVAILABLE", text)
    return ApiError(500, "INTERNAL", text)


_STATUSES: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.NOT_FOUND: (404, "NOT_FOUND"),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "INVALID_ARGUMENT"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "INVALID_ARGUMENT"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "UNAUTHENTICATED"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "PERMISSION_DENIED"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "FAILED_PRECONDITION"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "FAILED_PRECONDITION"),
    grpc.StatusCode.ABORTED: (409, "FAILED_PRECONDITION"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (413, "PAYLOAD_TOO_LARGE"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "UNIMPLEMENTED"),
    grpc.StatusCode.UNAVAILABLE: (502, "UNAVAILABLE"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "UNAVAILABLE"),
}


def from_status(status: grpc.StatusCode, details: str, method: str) -> ApiError:
    """The error a gRPC `status` of `method` means (a refusal, an unreachable platform)."""
    http, code = _STATUSES.get(status, (500, "INTERNAL"))
    if code == "UNAVAILABLE":
        return ApiError(http, code, f"the platform did not answer {method}: {details}")
    return ApiError(http, code, details or f"{method} failed: {status.name}")
