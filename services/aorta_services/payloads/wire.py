"""The bodies the service's verbs accept, parsed and checked before any work is done.

Verbs that map one to one onto a Clara RPC (create, delete, details, remove, add_metadata,
remove_metadata) receive the Clara request message itself, serialized. The verbs internal to
the platform take one JSON object (UTF-8) and answer one:

- `create_for_job` (`aorta.subjects.PAYLOADS_CREATE_FOR_JOB`): `{"job_id": str,
  "input_payloads": [str, ...]}` -> `{"payload_id": str}`.
- `lock` and `release` (`PAYLOADS_LOCK`, `PAYLOADS_RELEASE`): `{"payload_id": str,
  "job_id": str}` -> `{}`.
- `discard_for_job` (`PAYLOADS_DISCARD_FOR_JOB`): `{"job_id": str}` -> `{"payload_id":
  str | null}`, the payload discarded, null when the job had none.
- `check_upload`: `{"payload_id": str}` -> `{"payload_id": str, "type": "PIPELINE" |
  "REUSABLE", "job_id": str | null}` when files may be uploaded now.
- `file_added`: `{"payload_id": str, "name": str, "size": int, "sha256": str | null,
  "mode": int}` -> `{}`; `name` is the upload name, relative to the `input/` folder.
- `locate`: `{"payload_id": str, "name": str}` -> `{"key": str, "name": str, "size": int,
  "mode": int}`; `name` is a lookup name as a client gave it, the answer's `name` the file's
  rooted wire name and `key` its blob key.

Ids are checked here (PAYLOAD_ID_INVALID, JOB_ID_INVALID). A body that does not follow its
schema is the caller's bug, refused with `Invalid` (PAYLOAD_REQUEST_INVALID) like any bad
request, never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message

from aorta import ids
from aorta.bus import bodies
from aorta.errors import ErrorCode, Invalid
from aorta.ids import JobId, PayloadId
from aorta.payload_names import check_upload_name

M = TypeVar("M", bound=Message)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_MODE = 0o7777


@dataclass(frozen=True)
class CreateForJob:
    job_id: JobId
    input_payloads: tuple[PayloadId, ...]


@dataclass(frozen=True)
class JobPayload:
    """The payload of a job, for `lock` and `release`."""

    payload_id: PayloadId
    job_id: JobId


@dataclass(frozen=True)
class FileAdded:
    payload_id: PayloadId
    name: str
    size: int
    sha256: str | None
    mode: int


@dataclass(frozen=True)
class Locate:
    payload_id: PayloadId
    name: str


def parse_message(body: bytes, message_class: type[M]) -> M:
    """A Clara request message; `Invalid` when the bytes are not one."""
    return bodies.parse_message(body, message_class, code=ErrorCode.PAYLOAD_REQUEST_INVALID)


def parse_create_for_job(body: bytes) -> CreateForJob:
    document = _document(body, "create_for_job")
    inputs = document.get("input_payloads", [])
    if not isinstance(inputs, list) or not all(isinstance(item, str) for item in inputs):
        raise _malformed("create_for_job", "input_payloads must be a list of payload ids")
    return CreateForJob(
        job_id=ids.job_id(_text(document, "job_id", "create_for_job")),
        input_payloads=tuple(ids.payload_id(item) for item in inputs),
    )


def parse_job_payload(body: bytes, verb: str) -> JobPayload:
    document = _document(body, verb)
    return JobPayload(
        payload_id=ids.payload_id(_text(document, "payload_id", verb)),
        job_id=ids.job_id(_text(document, "job_id", verb)),
    )


def parse_discard_for_job(body: bytes) -> JobId:
    verb = "discard_for_job"
    return ids.job_id(_text(_document(body, verb), "job_id", verb))


def parse_check_upload(body: bytes) -> PayloadId:
    return ids.payload_id(_text(_document(body, "check_upload"), "payload_id", "check_upload"))


def parse_file_added(body: bytes) -> FileAdded:
    verb = "file_added"
    document = _document(body, verb)
    size, mode, sha256 = document.get("size"), document.get("mode", 0), document.get("sha256")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _malformed(verb, "size must be a non-negative integer")
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= _MAX_MODE:
        raise _malformed(verb, f"mode must be an integer from 0 to {_MAX_MODE:#o}")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise _malformed(verb, "sha256 must be 64 lowercase hexadecimal characters or null")
    return FileAdded(
        payload_id=ids.payload_id(_text(document, "payload_id", verb)),
        name=check_upload_name(_text(document, "name", verb)),
        size=size,
        sha256=sha256,
        mode=mode,
    )


def parse_locate(body: bytes) -> Locate:
    document = _document(body, "locate")
    return Locate(
        payload_id=ids.payload_id(_text(document, "payload_id", "locate")),
        name=_text(document, "name", "locate"),
    )


def encode(document: dict[str, Any]) -> bytes:
    """A JSON answer (non-ASCII text as UTF-8, not escaped)."""
    return bodies.encode_json(document)


def _document(body: bytes, verb: str) -> dict[str, Any]:
    return bodies.json_object(body, verb, _malformed)


def _text(document: dict[str, Any], key: str, verb: str) -> str:
    return bodies.text_field(document, key, verb, _malformed)


def _malformed(verb: str, problem: str) -> Invalid:
    return Invalid(
        f"malformed payloads {verb} request: {problem}", code=ErrorCode.PAYLOAD_REQUEST_INVALID
    )
