"""The answers the service sends: Clara response messages, and the scheduler's snapshot.

`created`, `updated` and `snapshot` are answers of contracts (`aorta.contracts`), encoded by
the verb; the others are sent serialized here.

`Details` streams one message per definition file, root first; each carries the header, the
pipeline id and name (NVIDIA's client reads the name from the first and turns every message
into one `PipelineDefinition`), and only the first carries the DAG and the metadata, so the
stream grows with the definition, not with files x metadata.

Every answer must fit in one bus message, so `check_fits` measures the largest one a record
would produce before the record is stored: a definition or metadata that would make a later
`Details` or snapshot fail is refused when it is sent, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aorta import contracts
from aorta.api import common_pb2, pipelines_pb2
from aorta.errors import Invalid
from aorta.pipeline_spec import DagNode
from aorta_services.pipelines.domain import MAX_DAG_DEPTH, PipelineRecord

DagMessage = pipelines_pb2.PipelinesDetailsResponse.PipelineDagNode


def header(warnings: tuple[str, ...] | list[str] = ()) -> common_pb2.ResponseHeader:
    """A success header (code 0); warnings, if any, become its messages."""
    return common_pb2.ResponseHeader(code=0, messages=list(warnings))


def created(
    record: PipelineRecord, warnings: tuple[str, ...]
) -> pipelines_pb2.PipelinesCreateResponse:
    return pipelines_pb2.PipelinesCreateResponse(
        header=header(warnings), pipeline_id=common_pb2.Identifier(value=record.id)
    )


def updated(warnings: tuple[str, ...]) -> pipelines_pb2.PipelinesUpdateResponse:
    return pipelines_pb2.PipelinesUpdateResponse(header=header(warnings))


def removed() -> bytes:
    return pipelines_pb2.PipelinesRemoveResponse(header=header()).SerializeToString()


def metadata_added(record: PipelineRecord) -> bytes:
    return pipelines_pb2.PipelinesAddMetadataResponse(
        header=header(),
        pipeline_id=common_pb2.Identifier(value=record.id),
        metadata=dict(record.metadata),
    ).SerializeToString()


def metadata_removed(record: PipelineRecord) -> bytes:
    return pipelines_pb2.PipelinesRemoveMetadataResponse(
        header=header(),
        pipeline_id=common_pb2.Identifier(value=record.id),
        metadata=dict(record.metadata),
    ).SerializeToString()


def details(record: PipelineRecord) -> list[pipelines_pb2.PipelinesDetailsResponse]:
    """The `Details` stream of `record`: one message per file, root first."""
    messages = []
    for index, file in enumerate(record.files):
        message = pipelines_pb2.PipelinesDetailsResponse(
            header=header(),
            pipeline_id=common_pb2.Identifier(value=record.id),
            name=record.name,
            definition=pipelines_pb2.PipelineDefinitionFile(path=file.path, content=file.content),
        )
        if index == 0:
            message.dag.extend(dag_messages(record.dag()))
            message.metadata.update(record.metadata)
        messages.append(message)
    return messages


def details_items(record: PipelineRecord) -> list[bytes]:
    """The `Details` stream of `record` as the bus carries it: each message with the owner,
    settled, since every change of a pipeline (definition, metadata, removal) is stored with
    its event (`handlers`)."""
    verb = contracts.PIPELINES_DETAILS
    return [
        verb.encode_answer(contracts.PipelineDetailsItem(message, record.owner, settled=True))
        for message in details(record)
    ]


def list_item(listed: Mapping[str, Any]) -> pipelines_pb2.PipelinesListResponse:
    """One List message from a pipeline document holding the repository's `LISTED_FIELDS`."""
    details = pipelines_pb2.PipelinesListResponse.PipelineDetails(
        pipeline_id=common_pb2.Identifier(value=listed["id"]),
        name=listed["name"],
        metadata={key: value for key, value in listed["metadata"]},
    )
    return pipelines_pb2.PipelinesListResponse(header=header(), details=details)


def empty_list() -> pipelines_pb2.PipelinesListResponse:
    """The one message `List` sends when there is no pipeline: a header and no details.

    Clients that read the header from the first message find one; NVIDIA's client skips an
    item without a pipeline id, so it sees an empty list.
    """
    return pipelines_pb2.PipelinesListResponse(header=header())


def dag_messages(nodes: tuple[DagNode, ...], depth: int = 1) -> list[DagMessage]:
    """`PipelineDagNode`s for `nodes`, cut below `MAX_DAG_DEPTH` levels."""
    if depth > MAX_DAG_DEPTH:
        return []
    return [DagMessage(name=n.name, next=dag_messages(n.next, depth + 1)) for n in nodes]


def snapshot(record: PipelineRecord) -> contracts.PipelineSnapshot:
    """PIPELINES_SNAPSHOT's answer: the definition as `record` holds it, root file first."""
    return contracts.PipelineSnapshot(
        pipeline_id=record.id,
        name=record.name,
        root=record.root,
        files=tuple(contracts.PipelineFile(f.path, f.content) for f in record.files),
    )


def check_fits(record: PipelineRecord, limit: int, *, code: int, what: str) -> None:
    """Raises `Invalid` with `code` when an answer about `record` would exceed `limit` bytes.

    The largest answers are the first `Details` message (root file, DAG, metadata), each other
    file's message, and the snapshot; `List` and the metadata answers are parts of the first.
    """
    sizes = [len(encoded) for encoded in details_items(record)]
    sizes.append(len(contracts.PIPELINES_SNAPSHOT.encode_answer(snapshot(record))))
    largest = max(sizes)
    if largest > limit:
        raise Invalid(
            f"{what} would make an answer about pipeline {record.id} {largest} bytes long, "
            f"more than the {limit} bytes the platform carries in one message",
            code=code,
        )
