"""Pipelines RPCs at the gateway.

List, Remove, AddMetadata and RemoveMetadata forward the Clara messages as they are to the
pipelines service; Details too, its answers coming back with the pipeline's owner, which the
client gets as the initial metadata `aorta-owner` (`aorta.auth.ownership`). Details answers
are kept at the gateway until the pipeline changes (`kept_answers`); Update, Remove and the
metadata verbs drop them, before and after they are forwarded. Create and Update
are client streams of `PipelineDefinitionFile` chunks; the gateway reassembles them into whole
files and sends the pipelines service one request (`aorta.contracts.CreatePipeline`,
`UpdatePipeline`):

- chunks with the same `path` are joined in arrival order; paths that differ only in case (or
  in `\\` for `/`, or in `.` steps) name one file, which keeps its first spelling; a chunk with
  no path belongs to `pipeline.yaml`;
- the first file is the root document;
- `pipeline_id` and `metadata` may come in any message: the first non-empty one counts;
- paths and contents may hold at most what `aorta.pipeline_spec` accepts (1 MiB), and
  with the metadata at most `MAX_ASSEMBLED_BYTES` (that plus an object's 4 MiB of metadata);
  reading stops at the first chunk past either; the encoded request may hold at most
  `MAX_REQUEST_BYTES`, so it travels as one bus message. The pipelines service applies the
  definition's and the metadata's own limits;
- a stream without messages or a definition without content is refused.

These refusals are Clara errors (PIPELINE_DEFINITION_ERROR), reported in the response header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aorta import contracts, subjects
from aorta.api import pipelines_pb2
from aorta.bus.port import DEFAULT_MAX_PAYLOAD
from aorta.errors import ErrorCode, Invalid
from aorta.metadata import MAX_TOTAL_BYTES
from aorta.pipeline_spec.sources import MAX_DEFINITION_BYTES, normalize
from aorta_services.gateway.forward import GatewayContext
from aorta_services.gateway.kept_answers import canonical, changing, kept_details
from aorta_services.gateway.rpc import Context, Encoded, Handler

MAX_ASSEMBLED_BYTES = MAX_DEFINITION_BYTES + MAX_TOTAL_BYTES
"""Most bytes (UTF-8) of paths, contents and metadata one Create or Update may send: the most a
definition (1 MiB) and an object's metadata (4 MiB) may hold."""
MAX_REQUEST_BYTES = DEFAULT_MAX_PAYLOAD - 64 * 1024
"""Most bytes of the encoded request to the pipelines service: one bus message (8 MiB), less room
for the headers."""

UNNAMED_FILE = "pipeline.yaml"
"""The path of chunks sent without one (NVIDIA's client sends `PipelineDefinition.name`)."""

DefinitionRequest = pipelines_pb2.PipelinesCreateRequest | pipelines_pb2.PipelinesUpdateRequest


@dataclass
class _File:
    path: str
    chunks: list[str] = field(default_factory=list)


@dataclass
class AssembledDefinition:
    """What one Create or Update stream carried, files whole and in the order first sent."""

    files: list[tuple[str, str]]
    pipeline_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


async def assemble(
    requests: AsyncIterator[DefinitionRequest],
    *,
    limit: int = MAX_ASSEMBLED_BYTES,
    definition_limit: int = MAX_DEFINITION_BYTES,
) -> AssembledDefinition:
    """Reassembles a definition stream (see the module docstring); `Invalid` when it is empty,
    holds more than `limit` bytes, or more than `definition_limit` of paths and contents."""
    files: dict[str, _File] = {}
    pipeline_id = ""
    metadata: dict[str, str] = {}
    size = 0
    definition_size = 0
    received = False
    async for request in requests:
        received = True
        if not pipeline_id and request.pipeline_id.value:
            pipeline_id = request.pipeline_id.value
        if isinstance(request, pipelines_pb2.PipelinesCreateRequest) and not metadata:
            metadata = dict(request.metadata)
            size += sum(_size(key) + _size(value) for key, value in metadata.items())
        if request.HasField("definition"):
            path = request.definition.path or UNNAMED_FILE
            file = files.get(normalize(path))
            if file is None:
                file = files[normalize(path)] = _File(path)
                definition_size += _size(path)
            file.chunks.append(request.definition.content)
            definition_size += _size(request.definition.content)
        if definition_size > definition_limit:
            raise _too_large(f"the definition is larger than {definition_limit} bytes")
        if size + definition_size > limit:
            raise _too_large(f"the definition is larger than {limit} bytes")
    if not received:
        raise _invalid("the request stream held no message: send the definition's files")
    assembled = AssembledDefinition(
        [(file.path, "".join(file.chunks)) for file in files.values()], pipeline_id, metadata
    )
    if not any(content for _, content in assembled.files):
        raise _invalid("the definition is empty: no definition file with content was sent")
    return assembled


def create_body(assembled: AssembledDefinition) -> bytes:
    """The pipelines service's create request, encoded."""
    request = contracts.CreatePipeline(
        files=_files(assembled), pipeline_id=assembled.pipeline_id, metadata=assembled.metadata
    )
    return _fitting(contracts.PIPELINES_CREATE.encode_request(request))


def update_body(assembled: AssembledDefinition) -> bytes:
    """The pipelines service's update request, encoded."""
    request = contracts.UpdatePipeline(pipeline_id=assembled.pipeline_id, files=_files(assembled))
    return _fitting(contracts.PIPELINES_UPDATE.encode_request(request))


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    """Every Pipelines RPC."""
    forward = gateway.forward
    kept = gateway.kept.pipelines

    async def create(
        requests: AsyncIterator[pipelines_pb2.PipelinesCreateRequest], context: Context
    ) -> pipelines_pb2.PipelinesCreateResponse:
        body = create_body(await assemble(requests))
        return await forward.call_encoded(contracts.PIPELINES_CREATE, body)

    async def update(
        requests: AsyncIterator[pipelines_pb2.PipelinesUpdateRequest], context: Context
    ) -> pipelines_pb2.PipelinesUpdateResponse:
        assembled = await assemble(requests)
        body = update_body(assembled)
        pipeline_id = canonical(assembled.pipeline_id)
        kept.drop(pipeline_id)
        try:
            return await forward.call_encoded(contracts.PIPELINES_UPDATE, body)
        finally:
            kept.drop(pipeline_id)

    def details(
        request: pipelines_pb2.PipelinesDetailsRequest, context: Context
    ) -> AsyncIterator[Encoded]:
        return kept_details(
            kept,
            request.pipeline_id.value,
            request,
            context,
            lambda: forward.call_stream(contracts.PIPELINES_DETAILS, request, reads=True),
            _named,
        )

    return {
        "Create": create,
        "Update": update,
        "Details": details,
        "List": forward.passed_on(subjects.PIPELINES_LIST, reads=True),
        "Remove": changing(
            forward.unary(subjects.PIPELINES_REMOVE, pipelines_pb2.PipelinesRemoveResponse),
            kept,
            _named,
        ),
        "AddMetadata": changing(
            forward.unary(
                subjects.PIPELINES_ADD_METADATA, pipelines_pb2.PipelinesAddMetadataResponse
            ),
            kept,
            _named,
        ),
        "RemoveMetadata": changing(
            forward.unary(
                subjects.PIPELINES_REMOVE_METADATA, pipelines_pb2.PipelinesRemoveMetadataResponse
            ),
            kept,
            _named,
        ),
    }


def _named(message: Any) -> str:
    """The pipeline a request or a Details message names."""
    return str(message.pipeline_id.value)


def _files(assembled: AssembledDefinition) -> tuple[contracts.PipelineFile, ...]:
    return tuple(contracts.PipelineFile(path, content) for path, content in assembled.files)


def _fitting(body: bytes) -> bytes:
    """`body`, refused when it would not travel as one bus message."""
    if len(body) > MAX_REQUEST_BYTES:
        # Escaping (quotes, backslashes, control characters) can grow a definition that was
        # within the limit; it must still travel as one message.
        raise _too_large(
            f"the definition takes {len(body)} bytes once encoded, more than the "
            f"{MAX_REQUEST_BYTES} bytes the platform carries in one message"
        )
    return body


def _too_large(what: str) -> Invalid:
    return _invalid(
        f"{what}; a pipeline definition (all files and paths) may hold at most "
        f"{MAX_DEFINITION_BYTES} bytes, and its metadata at most {MAX_TOTAL_BYTES} bytes"
    )


def _invalid(message: str) -> Invalid:
    return Invalid(message, code=ErrorCode.PIPELINE_DEFINITION_ERROR)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
