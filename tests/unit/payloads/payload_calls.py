"""Calls of the payloads service's verbs, as the gateway and the scheduler make them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aorta import contracts, subjects
from aorta.api import common_pb2, payloads_pb2
from aorta.auth.caller import caller_headers
from aorta.auth.ownership import FORCE_HEADER
from aorta.auth.principal import Principal
from aorta.blobs import BlobStore
from aorta.bus import CloudEvent
from aorta.bus.memory import MemoryBus
from aorta.bus.verbs import call_stream
from aorta.payload_layout import (
    StoredChecksum,
    checksum_manifest,
    input_key,
    output_checksums_key,
    payload_prefix,
)
from aorta.store import StateStore

RPC_TIMEOUT = 60.0
"""Seconds a call on the in-memory bus may take before it is named unanswered: a bound for
failing only, so a busy machine never makes an answered call time out."""
UNUSED_ID = "0123456789abcdef0123456789abcdef"
JOB = "a" * 32
OTHER_JOB = "b" * 32
PAYLOAD_EVENTS = "aorta.events.payload."
"""The subjects of the payload events the `calls` fixture collects."""


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass
class Calls:
    bus: MemoryBus
    blobs: BlobStore
    store: StateStore
    events: list[CloudEvent]
    headers: dict[str, str] = field(default_factory=dict)
    job_owner: str = ""

    def acting_as(self, caller: Principal, *, owner: str | None = None) -> Calls:
        """These calls made for `caller`, as the gateway makes them for a client's call;
        `for_job` then records `owner` (default: the caller's subject) as the job's."""
        return replace(self, headers=caller_headers(caller), job_owner=owner or caller.subject)

    async def create(self, metadata: Mapping[str, str] | None = None) -> str:
        request = payloads_pb2.PayloadsCreateRequest(metadata=dict(metadata or {}))
        reply = payloads_pb2.PayloadsCreateResponse.FromString(
            await self.bus.request(
                subjects.PAYLOADS_CREATE, request.SerializeToString(), headers=self.headers
            )
        )
        assert reply.header.code == 0
        assert reply.type == payloads_pb2.PAYLOAD_TYPE_REUSABLE
        return reply.payload_id.value

    async def details(self, payload_id: str) -> list[payloads_pb2.PayloadsDetailsResponse]:
        return [item.details for item in await self.details_items(payload_id)]

    async def details_items(self, payload_id: str) -> list[contracts.PayloadDetailsItem]:
        """Details as the gateway receives it, each message with the payload's owner."""
        request = payloads_pb2.PayloadsDetailsRequest(payload_id=ident(payload_id))
        verb = contracts.PAYLOADS_DETAILS
        return [item async for item in call_stream(self.bus, verb, request, headers=self.headers)]

    async def files(self, payload_id: str) -> dict[str, int]:
        """name -> size, as Details lists them."""
        return {d.file.name: d.file.size for d in await self.details(payload_id) if d.file.name}

    async def remove(self, payload_id: str, name: str) -> None:
        request = payloads_pb2.PayloadsRemoveRequest(payload_id=ident(payload_id), name=name)
        reply = payloads_pb2.PayloadsRemoveResponse.FromString(
            await self.bus.request(
                subjects.PAYLOADS_REMOVE, request.SerializeToString(), headers=self.headers
            )
        )
        assert reply.header.code == 0

    async def delete(self, payload_id: str, *, force: bool = False) -> None:
        """Payloads.Delete; `force` as the gateway passes an admin's forced Delete on."""
        request = payloads_pb2.PayloadsDeleteRequest(payload_id=ident(payload_id))
        headers = {**self.headers, FORCE_HEADER: "true"} if force else self.headers
        reply = payloads_pb2.PayloadsDeleteResponse.FromString(
            await self.bus.request(
                subjects.PAYLOADS_DELETE, request.SerializeToString(), headers=headers
            )
        )
        assert reply.header.code == 0

    async def upload(self, payload_id: str, name: str, data: bytes, mode: int = 0) -> None:
        """What the gateway does for one file: check, put, record."""
        await self.json(subjects.PAYLOADS_CHECK_UPLOAD, {"payload_id": payload_id})
        info = await self.blobs.put(input_key(payload_id, name), chunks(data))
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        await self.file_added(payload_id, name, len(data), info.sha256, mode)

    async def file_added(
        self, payload_id: str, name: str, size: int, sha256: str | None, mode: int = 0
    ) -> None:
        document = {
            "payload_id": payload_id,
            "name": name,
            "size": size,
            "sha256": sha256,
            "mode": mode,
        }
        assert await self.json(subjects.PAYLOADS_FILE_ADDED, document) == {}

    async def put_output(self, payload_id: str, name: str, data: bytes) -> None:
        """An operator output, as the executor pushes it (no file record)."""
        await self.blobs.put(payload_prefix(payload_id) + name, chunks(data))

    async def push_output(self, payload_id: str, operator: str, files: dict[str, bytes]) -> None:
        """An operator output with its checksum manifest, as an executor pushes it."""
        prefix = payload_prefix(payload_id) + f"operators/{operator}/"
        stored = []
        for name, data in files.items():
            info = await self.blobs.put(prefix + name, chunks(data))
            assert info.sha256 is not None
            stored.append(StoredChecksum(info.key, info.size, info.sha256))
        manifest = checksum_manifest(prefix, stored)
        await self.blobs.put(output_checksums_key(prefix), chunks(manifest))

    async def for_job(self, job_id: str, inputs: list[str]) -> str:
        document = {"job_id": job_id, "input_payloads": inputs, "owner": self.job_owner}
        answer = await self.json(subjects.PAYLOADS_CREATE_FOR_JOB, document)
        payload_id: str = answer["payload_id"]
        return payload_id

    async def lock(self, payload_id: str, job_id: str = JOB) -> None:
        assert (
            await self.json(subjects.PAYLOADS_LOCK, {"payload_id": payload_id, "job_id": job_id})
            == {}
        )

    async def release(self, payload_id: str, job_id: str = JOB) -> None:
        document = {"payload_id": payload_id, "job_id": job_id}
        assert await self.json(subjects.PAYLOADS_RELEASE, document) == {}

    async def discard(self, job_id: str) -> Any:
        """What the scheduler asks for a job it never revealed."""
        return await self.json(subjects.PAYLOADS_DISCARD_FOR_JOB, {"job_id": job_id})

    async def delete_for_job(self, job_id: str) -> Any:
        """What the scheduler asks when a stopped job is deleted."""
        return await self.json(subjects.PAYLOADS_DELETE_FOR_JOB, {"job_id": job_id})

    async def json(self, subject: str, document: Mapping[str, Any]) -> Any:
        body = json.dumps(document).encode()
        return json.loads(await self.bus.request(subject, body, headers=self.headers))

    async def blob_keys(self, payload_id: str) -> list[str]:
        prefix = payload_prefix(payload_id)
        return [info.key[len(prefix) :] async for info in self.blobs.list(prefix)]

    async def settle(self) -> None:
        """Waits until the event consumer has received every payload event the bus stored so
        far (30 s at most): the service publishes a change's event before it answers."""
        stored = self.bus.network.stored_events()
        deadline = time.monotonic() + 30
        while len(self.events) < sum(s.startswith(PAYLOAD_EVENTS) for s, _ in stored):
            assert time.monotonic() < deadline, [event.event for event in self.events]
            await asyncio.sleep(0.01)

    async def event_types(self) -> list[tuple[str, str]]:
        await self.settle()
        return [(event.event, event.subject) for event in self.events]
