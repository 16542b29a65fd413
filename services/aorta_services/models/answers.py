"""The Clara response messages the service sends, packed to fit the bus.

Streamed answers (`ListModels`, `ListCatalogs`, `ReadCatalog`, and the instance twins) carry
the header in every message and pack their repeated field up to `BATCH_BYTES` per message
(at least one entry each), so a repository of any size streams in bounded messages and a
small one arrives in one. A list with nothing in it is one message with the header (and, for a
read, the id). One catalog larger than a message continues in the next one under the same id:
a client that joins the entries of one id sees the whole catalog.

One model's details must fit in one message: `check_details_fit` refuses, before anything is
stored, a name and metadata larger than `MAX_DETAILS_BYTES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from google.protobuf.message import Message

from aorta.api import common_pb2, models_pb2
from aorta.bus.port import DEFAULT_MAX_PAYLOAD
from aorta.errors import ErrorCode, Invalid

BATCH_BYTES = 256 * 1024
"""Most bytes of repeated entries one streamed message carries (when there are several)."""
MAX_DETAILS_BYTES = DEFAULT_MAX_PAYLOAD - 512 * 1024
"""Most bytes one model's details (id, name, type, metadata) may take on the wire: every answer
about a model travels as one bus message (8 MiB; less room for the header, the ids and the
envelope), which holds Clara's 4 MB of metadata with room to spare."""
_ENTRY_OVERHEAD = 8
"""Bytes a repeated message entry adds besides itself (tag and length)."""
_EMPTY_LIST_BYTES = 40
"""What a catalog without models takes: its id (32 characters) and the framing."""

T = TypeVar("T")
M = TypeVar("M", bound=Message)


def header() -> common_pb2.ResponseHeader:
    return common_pb2.ResponseHeader(code=0)


def identifier(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


def check_details_fit(details: models_pb2.ModelDetails) -> None:
    """`Invalid` (METADATA_INVALID) when the details would not fit one answer."""
    size = details.ByteSize()
    if size > MAX_DETAILS_BYTES:
        raise Invalid(
            f"the model's name and metadata take {size} bytes; a model's details may take at "
            f"most {MAX_DETAILS_BYTES} bytes",
            code=ErrorCode.METADATA_INVALID,
        )


def batches(items: Sequence[T], size: Callable[[T], int]) -> Iterator[list[T]]:
    """`items` in consecutive groups of at most `BATCH_BYTES` (by `size`), at least one each;
    nothing for no items."""
    batch: list[T] = []
    used = 0
    for item in items:
        cost = size(item) + _ENTRY_OVERHEAD
        if batch and used + cost > BATCH_BYTES:
            yield batch
            batch, used = [], 0
        batch.append(item)
        used += cost
    if batch:
        yield batch


def list_models(details: Sequence[models_pb2.ModelDetails]) -> list[bytes]:
    """The `ListModels` stream."""
    groups = list(batches(details, lambda d: d.ByteSize())) or [[]]
    return [
        models_pb2.ModelsListModelsResponse(header=header(), models=group).SerializeToString()
        for group in groups
    ]


def read_list(
    response_class: type[M],
    id_field: str,
    list_id: str,
    details: Sequence[models_pb2.ModelDetails],
) -> list[bytes]:
    """The `ReadCatalog`/`ReadInstance` stream: the id in every message, models in batches."""
    answers = []
    for group in list(batches(details, lambda d: d.ByteSize())) or [[]]:
        message = response_class(header=header(), models=group)
        getattr(message, id_field).value = list_id
        answers.append(message.SerializeToString())
    return answers


def list_lists(
    response_class: type[M],
    repeated_field: str,
    lists: Sequence[tuple[str, Sequence[models_pb2.ModelDetails]]],
) -> list[bytes]:
    """The `ListCatalogs`/`ListInstances` stream of (id, models) pairs; a catalog too large for
    one message continues in the next under the same id."""
    pieces: list[tuple[str, models_pb2.ModelDetails | None]] = []
    for list_id, details in lists:
        pieces += [(list_id, d) for d in details] or [(list_id, None)]
    answers = []
    groups = list(batches(pieces, lambda p: p[1].ByteSize() if p[1] else _EMPTY_LIST_BYTES))
    for group in groups or [[]]:
        message = response_class(header=header())
        entries = getattr(message, repeated_field)
        for list_id, model in group:
            if not len(entries) or entries[-1].catalog_id.value != list_id:
                entries.add().catalog_id.value = list_id
            if model is not None:
                entries[-1].models.append(model)
        answers.append(message.SerializeToString())
    return answers
