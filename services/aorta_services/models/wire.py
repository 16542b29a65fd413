"""The bodies the service's verbs accept and send, parsed and checked before any work is done.

Verbs that map one to one onto a Clara RPC (delete, list, add_metadata, remove_metadata,
create/delete/list/read of catalogs and instances) receive the Clara request message itself,
serialized, and answer the Clara response message. The others take JSON (UTF-8):

- upload: `{"staging_key": str, "size": int, "sha256": str, "name": str, "type": int,
  "metadata": {str: str}}`: the archive the gateway streamed into the blob store, and the
  details of the upload's first message. Answer: `ModelsUploadModelResponse`.
- download: `ModelsDownloadModelRequest` -> `{"details": base64 of ModelDetails,
  "archive_key": str, "size": int}`; the gateway streams the archive from the blob store.
- update_catalog, update_instance: `{"id": str, "model_ids": [str]}` (the client stream,
  reassembled by the gateway). Answer: `ModelsUpdateCatalogResponse` / `...InstanceResponse`.
- MODELS_ACQUIRE_TRITON `{"job_id": str, "models": [str]}` -> `{"grpc_uri", "http_uri"}`;
  MODELS_RELEASE_TRITON `{"job_id"}` -> `{}`; MODELS_PLATFORM_STOP `{"reason"}` ->
  `{"stopped": {"servers": n}}`.

A body that does not follow its schema is refused with `Invalid` (MODEL_REQUEST_INVALID).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from aorta.api import models_pb2
from aorta.bus import bodies
from aorta.errors import ErrorCode, Invalid

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class UploadCommand:
    staging_key: str
    size: int
    sha256: str
    name: str = ""
    type: int = 0
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateListCommand:
    id: str
    model_ids: tuple[str, ...]


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def parse_upload(body: bytes) -> UploadCommand:
    document = _document(body, "upload")
    metadata = document.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
    ):
        raise _malformed("upload", "metadata must map strings to strings")
    return UploadCommand(
        staging_key=_text(document, "staging_key", "upload"),
        size=_integer(document, "size", "upload"),
        sha256=_text(document, "sha256", "upload"),
        name=_text(document, "name", "upload"),
        type=_integer(document, "type", "upload"),
        metadata=metadata,
    )


def upload_body(command: UploadCommand) -> bytes:
    return encode(
        {
            "staging_key": command.staging_key,
            "size": command.size,
            "sha256": command.sha256,
            "name": command.name,
            "type": command.type,
            "metadata": command.metadata,
        }
    )


def download_answer(details: models_pb2.ModelDetails, archive_key: str, size: int) -> bytes:
    raw = base64.b64encode(details.SerializeToString()).decode()
    return encode({"details": raw, "archive_key": archive_key, "size": size})


def parse_download_answer(body: bytes) -> tuple[models_pb2.ModelDetails, str, int]:
    document = _document(body, "download answer")
    try:
        details = models_pb2.ModelDetails.FromString(
            base64.b64decode(_text(document, "details", "download answer"), validate=True)
        )
    except (ValueError, DecodeError):
        raise _malformed("download answer", "details are not a ModelDetails message") from None
    key = _text(document, "archive_key", "download answer")
    return details, key, _integer(document, "size", "download answer")


def parse_update_list(body: bytes) -> UpdateListCommand:
    document = _document(body, "update")
    ids = document.get("model_ids")
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise _malformed("update", "model_ids must be a list of strings")
    return UpdateListCommand(_text(document, "id", "update"), tuple(ids))


def parse_acquire(body: bytes) -> tuple[str, list[str]]:
    document = _document(body, "acquire_triton")
    models = document.get("models")
    if not isinstance(models, list) or not all(isinstance(item, str) for item in models):
        raise _malformed("acquire_triton", "models must be a list of model names")
    return _text(document, "job_id", "acquire_triton"), models


def parse_release(body: bytes) -> str:
    return _text(_document(body, "release_triton"), "job_id", "release_triton")


def parse_message(body: bytes, message_class: type[M]) -> M:
    """A Clara request message; `Invalid` when the bytes are not one."""
    return bodies.parse_message(body, message_class, code=ErrorCode.MODEL_REQUEST_INVALID)


def _document(body: bytes, verb: str) -> dict[str, Any]:
    return bodies.json_object(body, verb, _malformed)


def _text(document: dict[str, Any], key: str, verb: str) -> str:
    return bodies.text_field(document, key, verb, _malformed)


def _integer(document: dict[str, Any], key: str, verb: str) -> int:
    value = document.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(verb, f"{key} must be an integer")
    return value


def _malformed(verb: str, problem: str) -> Invalid:
    return Invalid(f"malformed models {verb}: {problem}", code=ErrorCode.MODEL_REQUEST_INVALID)
