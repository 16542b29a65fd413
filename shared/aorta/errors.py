"""The one error root of the platform, and the Clara response codes it maps to.

Every layer raises these (never a bare `Exception` across a boundary). They cross the bus as a
small JSON document (`to_wire`/`from_wire`) and are turned into a Clara `ResponseHeader` exactly
once, by the gateway, because Clara clients read the header's negative code, not the gRPC status.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar


class ErrorCode(IntEnum):
    """Clara `ResponseHeader.code` values.

    The pipeline (-0x1000…) and job (-0x2000…) codes are Clara's documented ones; the payload,
    model and clara ranges are Aorta's choice where Clara is silent (docs/clara-compatibility.md,
    "Choices where Clara is silent").
    """

    PIPELINE_ID_INVALID = -0x1000
    PIPELINE_NOT_FOUND = -0x1001
    PIPELINE_STORE_ERROR = -0x1002
    PIPELINE_LIST_ERROR = -0x1003
    PIPELINE_UPDATE_ERROR = -0x1004
    PIPELINE_DEFINITION_ERROR = -0x1100
    PIPELINE_LOAD_ERROR = -0x1101

    JOB_ID_INVALID = -0x2000
    JOB_NOT_FOUND = -0x2001
    JOB_STORE_ERROR = -0x2002
    JOB_LIST_ERROR = -0x2003
    JOB_NAME_INVALID = -0x2100
    JOB_STATE_CONFLICT = -0x2101
    JOB_VARIABLES_INVALID = -0x2102
    JOB_REQUEST_INVALID = -0x2103
    JOB_OPERATOR_NOT_FOUND = -0x2104

    PAYLOAD_ID_INVALID = -0x3000
    PAYLOAD_NOT_FOUND = -0x3001
    PAYLOAD_STORE_ERROR = -0x3002
    PAYLOAD_FILE_NAME_INVALID = -0x3100
    PAYLOAD_FILE_NOT_FOUND = -0x3101
    PAYLOAD_READ_ONLY = -0x3102
    PAYLOAD_IN_USE = -0x3103
    PAYLOAD_REQUEST_INVALID = -0x3104

    MODEL_ID_INVALID = -0x4000
    MODEL_NOT_FOUND = -0x4001
    MODEL_STORE_ERROR = -0x4002
    MODEL_ARCHIVE_INVALID = -0x4100
    MODEL_IN_USE = -0x4101
    MODEL_REQUEST_INVALID = -0x4102
    CATALOG_NOT_FOUND = -0x4201
    INSTANCE_NOT_FOUND = -0x4301

    METADATA_INVALID = -0x5100
    SERVICE_UNAVAILABLE = -0x5001
    INTERNAL = -0x5000


class AortaError(Exception):
    """Root of every error the platform reports to a caller.

    `messages` are sentences a person can act on; `code` is the Clara response code. Subclasses
    say what kind of failure it is, so the edge can choose an HTTP/NATS/gRPC treatment without
    parsing text.
    """

    default_code: ClassVar[int] = ErrorCode.INTERNAL

    def __init__(self, *messages: str, code: int | None = None) -> None:
        self.messages: tuple[str, ...] = messages or (type(self).__name__,)
        self.code: int = int(code if code is not None else self.default_code)
        super().__init__("; ".join(self.messages))

    def to_wire(self) -> dict[str, Any]:
        """The JSON-able form that crosses the bus."""
        return {"kind": type(self).__name__, "code": self.code, "messages": list(self.messages)}

    @staticmethod
    def from_wire(document: dict[str, Any]) -> AortaError:
        """Rebuilds the error a remote service raised; unknown kinds become `Internal`."""
        kind = _KINDS.get(str(document.get("kind")), Internal)
        messages = [str(m) for m in document.get("messages") or []]
        code = document.get("code")
        return kind(*messages, code=int(code) if isinstance(code, int) else None)


class Invalid(AortaError):
    """The request itself is wrong: a malformed id, a bad name, a broken definition."""

    default_code = ErrorCode.JOB_REQUEST_INVALID


class NotFound(AortaError):
    """The named entity does not exist (or no longer does)."""

    default_code = ErrorCode.INTERNAL


class Conflict(AortaError):
    """The request is valid but clashes with current state (version moved, already started)."""

    default_code = ErrorCode.INTERNAL


class Unavailable(AortaError):
    """A service or dependency could not be reached in time; retrying later may succeed."""

    default_code = ErrorCode.SERVICE_UNAVAILABLE


class Forbidden(AortaError):
    """The caller is known but may not do this (another subject's job or payload, a role
    below the one needed); the gateway answers gRPC PERMISSION_DENIED."""

    default_code = ErrorCode.INTERNAL


class Unauthenticated(AortaError):
    """The caller sent no credentials, or ones that do not check out; the gateway answers
    gRPC UNAUTHENTICATED. Its messages never repeat the credentials."""

    default_code = ErrorCode.INTERNAL


class Internal(AortaError):
    """A bug or an unexpected failure inside the platform."""

    default_code = ErrorCode.INTERNAL


_KINDS: dict[str, type[AortaError]] = {
    cls.__name__: cls
    for cls in (
        AortaError,
        Invalid,
        NotFound,
        Conflict,
        Unavailable,
        Forbidden,
        Unauthenticated,
        Internal,
    )
}
