"""The other services' verbs the scheduler calls, with their JSON contracts (`aorta.subjects`).

Errors the other service raises reach the caller unchanged (a missing pipeline is still
PIPELINE_NOT_FOUND); a service that is not deployed at all becomes an `Unavailable` that says
which one, in words a person can act on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aorta import ids, subjects
from aorta.bus import Bus
from aorta.errors import Internal, Unavailable
from aorta.ids import JobId, PayloadId, PipelineId
from aorta_services.scheduler.domain.job_record import TritonUris


@dataclass(frozen=True)
class PipelineSnapshot:
    """A pipeline as `PIPELINES_SNAPSHOT` gives it: what a job freezes at creation."""

    pipeline_id: PipelineId
    name: str
    root: str
    files: tuple[tuple[str, str], ...]


def no_responders(error: Unavailable, subject: str) -> bool:
    """Whether `error` is the bus saying nobody serves `subject` (not a timeout)."""
    return error.messages == (f"no service answers {subject}",)


class Peers:
    """Calls to the pipelines, payloads and models services; `timeout` bounds each call."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    async def pipeline_snapshot(self, pipeline_id: PipelineId) -> PipelineSnapshot:
        """The pipeline's definition now; `NotFound` (PIPELINE_NOT_FOUND) when it has none."""
        answer = await self._call(
            "pipelines", subjects.PIPELINES_SNAPSHOT, {"pipeline_id": pipeline_id}
        )
        try:
            files = tuple((f["path"], f["content"]) for f in answer["files"])
            return PipelineSnapshot(
                pipeline_id=ids.pipeline_id(answer["pipeline_id"]),
                name=str(answer["name"]),
                root=str(answer["root"]),
                files=files,
            )
        except (KeyError, TypeError) as error:
            raise Internal(
                f"the pipelines service answered a malformed snapshot: {error!r}"
            ) from None

    async def create_payload(self, job_id: JobId, input_payloads: Sequence[PayloadId]) -> PayloadId:
        """A new PIPELINE payload for the job, the REUSABLE `input_payloads` copied in."""
        answer = await self._call(
            "payloads",
            subjects.PAYLOADS_CREATE_FOR_JOB,
            {"job_id": job_id, "input_payloads": list(input_payloads)},
        )
        payload_id = answer.get("payload_id")
        if not isinstance(payload_id, str):
            raise Internal("the payloads service answered create_for_job without a payload_id")
        return ids.payload_id(payload_id)

    async def discard_payload(self, job_id: JobId) -> PayloadId | None:
        """Removes the PIPELINE payload made for a job that was never revealed; returns its id,
        None when the job has none. Idempotent."""
        answer = await self._call("payloads", subjects.PAYLOADS_DISCARD_FOR_JOB, {"job_id": job_id})
        payload_id = answer.get("payload_id")
        if payload_id is None:
            return None
        if not isinstance(payload_id, str):
            raise Internal("the payloads service answered discard_for_job with a malformed id")
        return ids.payload_id(payload_id)

    async def lock_payload(self, payload_id: PayloadId, job_id: JobId) -> None:
        """The job started: its payload becomes read-only and in use."""
        await self._call(
            "payloads", subjects.PAYLOADS_LOCK, {"payload_id": payload_id, "job_id": job_id}
        )

    async def release_payload(self, payload_id: PayloadId, job_id: JobId) -> None:
        """The job stopped: its payload may be deleted again."""
        await self._call(
            "payloads", subjects.PAYLOADS_RELEASE, {"payload_id": payload_id, "job_id": job_id}
        )

    async def acquire_triton(self, job_id: JobId, models: Sequence[str]) -> TritonUris:
        """A Triton server holding `models` for this job; `Unavailable` when no models service
        is deployed."""
        answer = await self._call(
            "models", subjects.MODELS_ACQUIRE_TRITON, {"job_id": job_id, "models": list(models)}
        )
        grpc_uri, http_uri = answer.get("grpc_uri"), answer.get("http_uri")
        if not isinstance(grpc_uri, str) or not isinstance(http_uri, str):
            raise Internal("the models service answered acquire_triton without both URIs")
        return TritonUris(grpc_uri=grpc_uri, http_uri=http_uri)

    async def release_triton(self, job_id: JobId) -> None:
        """The job stopped: its Triton servers return to the pool. A models service that is not
        deployed holds nothing, so its absence is not an error."""
        await self._call(
            "models", subjects.MODELS_RELEASE_TRITON, {"job_id": job_id}, optional=True
        )

    async def _call(
        self, service: str, subject: str, body: dict[str, Any], *, optional: bool = False
    ) -> dict[str, Any]:
        """The JSON answer; with `optional`, `{}` when no service serves `subject`."""
        data = json.dumps(body).encode()
        try:
            answer = await self._bus.request(subject, data, timeout=self._timeout)
        except Unavailable as error:
            if no_responders(error, subject):
                if optional:
                    return {}
                raise Unavailable(
                    f"no {service} service answers {subject}: is the {service} service running?",
                    code=error.code,
                ) from error
            raise
        try:
            document = json.loads(answer)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise Internal(f"the {service} service answered {subject} with something not JSON")
        return document
