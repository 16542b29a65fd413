"""What one `Jobs.List` item needs of a job, and nothing more: the fields read from the store.

A job's document also holds its operators, DAG bookkeeping, messages, variables, outbox and
timeline, none of which a List item carries; reading only `LISTED_FIELDS` keeps a listing of
a long history light. Metadata is among them because Clara's `JobDetails` carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aorta.errors import ErrorCode, Invalid
from aorta.ids import JobId, PayloadId, PipelineId
from aorta_services.scheduler.domain import JobPhase, JobPriority

LISTED_FIELDS = (
    "name",
    "pipeline_id",
    "payload_id",
    "priority",
    "phase",
    "created",
    "started",
    "stopped",
    "metadata",
)
"""The top-level fields of a job document a List item is built from."""

LIST_KEY = ("created",)
"""Jobs are listed newest first: by creation time, then by id (both descending)."""


@dataclass(frozen=True)
class JobListing:
    """One listed job: the fields `Jobs.List` sends (see `LISTED_FIELDS`)."""

    id: JobId
    name: str
    pipeline_id: PipelineId
    payload_id: PayloadId
    priority: JobPriority
    phase: JobPhase
    created: float
    started: float | None = None
    stopped: float | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def metadata_size(self) -> int:
        """About how many bytes the metadata takes on the wire (characters of its keys and
        values)."""
        return sum(len(key) + len(value) for key, value in self.metadata.items())

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> JobListing:
        """The listing a projected job document holds; `Invalid` (JOB_STORE_ERROR) when it
        is malformed."""
        try:
            return JobListing(
                id=JobId(document["id"]),
                name=document["name"],
                pipeline_id=PipelineId(document["pipeline_id"]),
                payload_id=PayloadId(document["payload_id"]),
                priority=JobPriority(document["priority"]),
                phase=JobPhase(document["phase"]),
                created=float(document["created"]),
                started=document.get("started"),
                stopped=document.get("stopped"),
                metadata={key: value for key, value in document.get("metadata", ())},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise Invalid(
                f"stored job {document.get('id')!r} is malformed: {error!r}",
                code=ErrorCode.JOB_STORE_ERROR,
            ) from error
