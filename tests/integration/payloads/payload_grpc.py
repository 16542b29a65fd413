"""Payloads RPCs as a plain `aorta.api` gRPC client makes them, for the integration tests."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aorta import subjects
from aorta.api import common_pb2, payloads_pb2, payloads_pb2_grpc
from aorta.auth.ownership import FORCE_METADATA
from aorta.blobs import BlobStore
from aorta.bus import Bus

if TYPE_CHECKING:
    from aorta.api.payloads_pb2_grpc import PayloadsAsyncStub as Stub
else:
    Stub = payloads_pb2_grpc.PayloadsStub
CHUNK = 64 * 1024
JOB = "c" * 32


@dataclass(frozen=True)
class Platform:
    """A running gateway + payloads service, the bus beside it and the blob store they share."""

    port: int
    bus: Bus
    blobs: BlobStore
    kind: str
    data_dir: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pattern(size: int, seed: int = 0) -> bytes:
    """`size` pseudo-random bytes, so a misplaced or repeated chunk shows."""
    return random.Random(seed).randbytes(size)


def chunk_messages(
    payload_id: str, name: str, data: bytes, *, chunk: int = CHUNK
) -> list[payloads_pb2.PayloadsUploadRequest]:
    """One file's messages as NVIDIA's client makes them (details.size = chunk length); a
    zero-byte file is one message with empty data."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    return [
        payloads_pb2.PayloadsUploadRequest(
            payload_id=ident(payload_id),
            details=payloads_pb2.PayloadFileDetails(name=name, size=len(piece)),
            data=piece,
        )
        for piece in pieces
    ]


async def stream(
    messages: Iterable[payloads_pb2.PayloadsUploadRequest],
) -> AsyncIterator[payloads_pb2.PayloadsUploadRequest]:
    for message in messages:
        yield message


async def create(stub: Stub, metadata: Mapping[str, str] | None = None) -> str:
    reply = await stub.Create(payloads_pb2.PayloadsCreateRequest(metadata=dict(metadata or {})))
    assert reply.header.code == 0, list(reply.header.messages)
    return reply.payload_id.value


async def upload(
    stub: Stub, payload_id: str, files: Iterable[tuple[str, bytes]]
) -> payloads_pb2.PayloadsUploadResponse:
    messages = [m for name, data in files for m in chunk_messages(payload_id, name, data)]
    return await stub.Upload(stream(messages))


async def details(stub: Stub, payload_id: str) -> list[payloads_pb2.PayloadsDetailsResponse]:
    request = payloads_pb2.PayloadsDetailsRequest(payload_id=ident(payload_id))
    return [item async for item in stub.Details(request)]


async def listing(stub: Stub, payload_id: str) -> dict[str, int]:
    """name -> size of every file Details lists (checking each header)."""
    found = await details(stub, payload_id)
    assert all(item.header.code == 0 for item in found), [list(i.header.messages) for i in found]
    return {item.file.name: item.file.size for item in found if item.file.name}


async def download(
    stub: Stub, payload_id: str, name: str
) -> tuple[payloads_pb2.PayloadsDownloadResponse, bytes]:
    """The first message (header and details) and the bytes of all of them."""
    request = payloads_pb2.PayloadsDownloadRequest(payload_id=ident(payload_id), name=name)
    messages = [item async for item in stub.Download(request)]
    return messages[0], b"".join(item.data for item in messages)


async def remove(stub: Stub, payload_id: str, name: str) -> common_pb2.ResponseHeader:
    request = payloads_pb2.PayloadsRemoveRequest(payload_id=ident(payload_id), name=name)
    return (await stub.Remove(request)).header


async def delete(stub: Stub, payload_id: str, *, force: bool = False) -> common_pb2.ResponseHeader:
    """Payloads.Delete; `force` sends the metadata of `aorta delete payload --force`."""
    request = payloads_pb2.PayloadsDeleteRequest(payload_id=ident(payload_id))
    metadata = ((FORCE_METADATA, "true"),) if force else ()
    return (await stub.Delete(request, metadata=metadata)).header


async def internal(bus: Bus, subject: str, document: Mapping[str, Any]) -> Any:
    return json.loads(await bus.request(subject, json.dumps(document).encode()))


async def job_payload(bus: Bus, inputs: list[str], job_id: str = JOB) -> str:
    """A job's PIPELINE payload, made as the scheduler makes it."""
    answer = await internal(
        bus, subjects.PAYLOADS_CREATE_FOR_JOB, {"job_id": job_id, "input_payloads": inputs}
    )
    payload_id: str = answer["payload_id"]
    return payload_id
