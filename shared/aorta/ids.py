"""Typed identifiers: 32 lowercase hex characters, dashed UUIDs accepted on input."""

from __future__ import annotations

import re
import uuid
from typing import NewType

from aorta.errors import ErrorCode, Invalid

PipelineId = NewType("PipelineId", str)
JobId = NewType("JobId", str)
PayloadId = NewType("PayloadId", str)
ModelId = NewType("ModelId", str)
CatalogId = NewType("CatalogId", str)
InstanceId = NewType("InstanceId", str)

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    """A fresh id in the canonical form (uuid4 hex)."""
    return uuid.uuid4().hex


def canonical_id(value: str, *, what: str, code: int = ErrorCode.JOB_REQUEST_INVALID) -> str:
    """Returns `value` as 32 lowercase hex characters, or raises `Invalid` with `code`.

    Accepts the canonical form and any spelling `uuid.UUID` accepts (dashes, braces, upper case).
    """
    text = (value or "").strip()
    if _HEX32.match(text):
        return text
    try:
        return uuid.UUID(text).hex
    except ValueError:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise Invalid(
            f"{what} id {shown!r} is not valid: expected 32 hexadecimal characters "
            "(a UUID, dashes allowed)",
            code=code,
        ) from None


def pipeline_id(value: str) -> PipelineId:
    return PipelineId(canonical_id(value, what="pipeline", code=ErrorCode.PIPELINE_ID_INVALID))


def job_id(value: str) -> JobId:
    return JobId(canonical_id(value, what="job", code=ErrorCode.JOB_ID_INVALID))


def payload_id(value: str) -> PayloadId:
    return PayloadId(canonical_id(value, what="payload", code=ErrorCode.PAYLOAD_ID_INVALID))


def model_id(value: str) -> ModelId:
    return ModelId(canonical_id(value, what="model", code=ErrorCode.MODEL_ID_INVALID))


def catalog_id(value: str) -> CatalogId:
    return CatalogId(canonical_id(value, what="catalog", code=ErrorCode.MODEL_ID_INVALID))


def instance_id(value: str) -> InstanceId:
    return InstanceId(canonical_id(value, what="instance", code=ErrorCode.MODEL_ID_INVALID))
