"""The bodies the service's verbs accept, parsed and checked before any work is done.

Verbs that map one to one onto a Clara RPC (details, list, remove, add_metadata,
remove_metadata) receive the Clara request message itself, serialized. `Create` and `Update`
are client streams that the gateway reassembles first, so their verbs take one JSON document
holding the whole definition (UTF-8, one bus message):

- create: `{"files": [{"path": str, "content": str}, ...], "pipeline_id": str,
  "metadata": {str: str}}`. The first file is the root document; paths are distinct (compared
  case-insensitively); `pipeline_id` is "" unless the client chose one; `metadata` may be {}.
- update: `{"pipeline_id": str, "files": [...]}`, files as above.

PIPELINES_SNAPSHOT, internal to the platform, takes `{"pipeline_id": str}`.

A body that does not follow its schema is the gateway's bug, not the client's, but it is
refused with `Invalid` like any bad request, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message

from aorta.bus import bodies
from aorta.errors import ErrorCode, Invalid
from aorta_services.pipelines.domain import DefinitionFile

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class CreateCommand:
    files: tuple[DefinitionFile, ...]
    pipeline_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateCommand:
    pipeline_id: str
    files: tuple[DefinitionFile, ...]


def parse_create(body: bytes) -> CreateCommand:
    document = _document(body, "create")
    metadata = document.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
    ):
        raise _malformed("create", "metadata must map strings to strings")
    return CreateCommand(
        files=_parsed_files(document, "create"),
        pipeline_id=_text(document, "pipeline_id", "create"),
        metadata=metadata,
    )


def parse_update(body: bytes) -> UpdateCommand:
    document = _document(body, "update")
    return UpdateCommand(
        pipeline_id=_text(document, "pipeline_id", "update"),
        files=_parsed_files(document, "update"),
    )


def parse_snapshot(body: bytes) -> str:
    """The pipeline id a snapshot request names (not yet checked as an id)."""
    return _text(_document(body, "snapshot"), "pipeline_id", "snapshot")


def parse_message(body: bytes, message_class: type[M]) -> M:
    """A Clara request message; `Invalid` when the bytes are not one."""
    return bodies.parse_message(body, message_class, code=ErrorCode.PIPELINE_DEFINITION_ERROR)


def _document(body: bytes, verb: str) -> dict[str, Any]:
    return bodies.json_object(body, verb, _malformed)


def _text(document: dict[str, Any], key: str, verb: str) -> str:
    return bodies.text_field(document, key, verb, _malformed)


def _parsed_files(document: dict[str, Any], verb: str) -> tuple[DefinitionFile, ...]:
    files = document.get("files")
    if not isinstance(files, list) or not files:
        raise _malformed(verb, "files must be a non-empty list")
    parsed = []
    for item in files:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("path"), str)
            and isinstance(item.get("content"), str)
        ):
            raise _malformed(verb, "each file must be an object with string path and content")
        parsed.append(DefinitionFile(item["path"], item["content"]))
    return tuple(parsed)


def _malformed(verb: str, problem: str) -> Invalid:
    return Invalid(
        f"malformed pipelines {verb} request: {problem}", code=ErrorCode.PIPELINE_DEFINITION_ERROR
    )
