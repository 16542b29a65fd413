"""The internal verbs' requests and answers, declared once for both sides.

Every verb internal to the platform is a `Verb` (one answer) or a `StreamVerb` (a stream of
answers, `aorta.bus.verbs`) pairing its subject (`aorta.subjects`) with its request and answer
types; the caller and the serving service both encode and decode with it, through the one
codec of bus bodies (`aorta.bus.codec`: frozen dataclasses as JSON, Clara messages serialized).

The rules a type cannot say (non-empty, ranges, formats) are each dataclass's `__post_init__`,
which holds when a value is built as much as when it is decoded. Ids are canonical
(`aorta.ids`): a malformed one raises its own `Invalid` (PAYLOAD_ID_INVALID, JOB_ID_INVALID...).
A field carrying an id as a client spelled it, for the serving service to check, is a `str`.

A request that does not decode is refused with `Invalid` carrying the serving service's
request-error code; an answer that does not decode is `Internal`, naming the service. The
models service's types live in `aorta.model_contracts` and are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aorta import ids, subjects
from aorta.api import jobs_pb2, models_pb2, payloads_pb2, pipelines_pb2
from aorta.bus.verbs import StreamVerb, Verb
from aorta.ids import JobId, PayloadId, PipelineId
from aorta.model_contracts import AcquireTriton as AcquireTriton
from aorta.model_contracts import ModelLocation as ModelLocation
from aorta.model_contracts import ReleaseTriton as ReleaseTriton
from aorta.model_contracts import TritonServer as TritonServer
from aorta.model_contracts import UpdateModelList as UpdateModelList
from aorta.model_contracts import UploadModel as UploadModel


def _canonical(instance: object, **checks: Callable[[str], str]) -> None:
    """Sets each named field of a frozen dataclass to the canonical id `check` makes of it."""
    for name, check in checks.items():
        object.__setattr__(instance, name, check(getattr(instance, name)))


@dataclass(frozen=True)
class Done:
    """The answer of a verb that has nothing to say but that it succeeded: `{}`."""


@dataclass(frozen=True)
class PlatformStop:
    """Clara.Stop, as the monitor asks each service that runs things to stop them."""

    reason: str


@dataclass(frozen=True)
class PlatformStopped:
    """What a service stopped for Clara.Stop: a count per kind of thing (`{"jobs": 2}`)."""

    stopped: Mapping[str, int]

    def __post_init__(self) -> None:
        if any(count < 0 for count in self.stopped.values()):
            raise ValueError("stopped counts must be at least 0")


# The pipelines service (aorta_services.pipelines).


@dataclass(frozen=True)
class PipelineFile:
    """One definition file: its path as the client spelled it, and its whole text."""

    path: str
    content: str


def _check_files(files: tuple[PipelineFile, ...]) -> None:
    if not files:
        raise ValueError("files must be a non-empty list")


@dataclass(frozen=True)
class CreatePipeline:
    """Pipelines.Create, its stream joined by the gateway: the files, root first (the service
    refuses two paths that name one file); `pipeline_id` as the client spelled it, "" when it
    chose none; the metadata, which may be empty."""

    files: tuple[PipelineFile, ...]
    pipeline_id: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_files(self.files)


@dataclass(frozen=True)
class UpdatePipeline:
    """Pipelines.Update, its stream joined by the gateway (`pipeline_id` as the client spelled
    it; files as for `CreatePipeline`)."""

    pipeline_id: str
    files: tuple[PipelineFile, ...]

    def __post_init__(self) -> None:
        _check_files(self.files)


@dataclass(frozen=True)
class SnapshotRequest:
    pipeline_id: PipelineId

    def __post_init__(self) -> None:
        _canonical(self, pipeline_id=ids.pipeline_id)


@dataclass(frozen=True)
class PipelineDetailsItem:
    """One `Pipelines.Details` message, with the subject that created the pipeline ("" when
    none was recorded), which the gateway tells the client in gRPC metadata
    (`aorta.auth.ownership`), since Clara's message has no place for it. `settled`: any later
    change of the message comes with one of the pipeline's events
    (`aorta.events.pipeline.<id>.>`), so a gateway may keep it until the next."""

    details: pipelines_pb2.PipelinesDetailsResponse
    owner: str = ""
    settled: bool = False


@dataclass(frozen=True)
class PipelineSnapshot:
    """A pipeline's definition as it is now, root file first: what a job freezes."""

    pipeline_id: PipelineId
    name: str
    root: str
    files: tuple[PipelineFile, ...]

    def __post_init__(self) -> None:
        _canonical(self, pipeline_id=ids.pipeline_id)


# The payloads service (aorta_services.payloads).

_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_FILE_MODE = 0o7777
"""The permission bits a payload file's mode may have."""


_COMMIT_MARK = re.compile(r"[0-9a-f]{32}")


def _check_mark(mark: str | None) -> None:
    if mark is not None and not _COMMIT_MARK.fullmatch(mark):
        raise ValueError("a commit mark must be 32 lowercase hexadecimal characters or null")


@dataclass(frozen=True)
class CheckUpload:
    """Whether files may be uploaded into the payload now (before and during an upload).

    `commit` (a mark the gateway made, `ids.new_id()`) asks for more, just before the gateway
    lets the store commit a file: the payload is marked as receiving it, so its job cannot
    start (lock) until the `FileAdded` carrying the same mark, or the `release` of it, or its
    expiry. `release` ends such a mark without a file (the commit failed or was cancelled):
    nothing is checked then, and the answer describes the payload whatever its state.
    """

    payload_id: PayloadId
    commit: str | None = None
    release: str | None = None

    def __post_init__(self) -> None:
        _canonical(self, payload_id=ids.payload_id)
        _check_mark(self.commit)
        _check_mark(self.release)
        if self.commit is not None and self.release is not None:
            raise ValueError("give commit or release, not both")


@dataclass(frozen=True)
class UploadAllowed:
    """Files may be uploaded now. `type` is "PIPELINE" or "REUSABLE"; `job_id` is the job of
    a PIPELINE payload, None for a REUSABLE one."""

    payload_id: PayloadId
    type: str
    job_id: JobId | None

    def __post_init__(self) -> None:
        _canonical(self, payload_id=ids.payload_id)
        if self.job_id is not None:
            _canonical(self, job_id=ids.job_id)


@dataclass(frozen=True)
class FileAdded:
    """The gateway stored an uploaded file: `name` is the upload name, relative to the
    payload's `input/` folder (the service checks it); `sha256` is lowercase hex, None when
    the store computed none; `commit` is the mark `CheckUpload` took for it, which ends once
    the file is recorded."""

    payload_id: PayloadId
    name: str
    size: int
    sha256: str | None
    mode: int = 0
    commit: str | None = None

    def __post_init__(self) -> None:
        _canonical(self, payload_id=ids.payload_id)
        _check_mark(self.commit)
        if self.size < 0:
            raise ValueError("size must be a non-negative integer")
        if not 0 <= self.mode <= MAX_FILE_MODE:
            raise ValueError(f"mode must be an integer from 0 to {MAX_FILE_MODE:#o}")
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError("sha256 must be 64 lowercase hexadecimal characters or null")


@dataclass(frozen=True)
class Locate:
    """The file a Download names, `name` as the client gave it."""

    payload_id: PayloadId
    name: str

    def __post_init__(self) -> None:
        _canonical(self, payload_id=ids.payload_id)


@dataclass(frozen=True)
class Located:
    """The file found: its blob key, its rooted wire name (`/input/scan.dcm`), size, mode."""

    key: str
    name: str
    size: int
    mode: int


@dataclass(frozen=True)
class PayloadDetailsItem:
    """One `Payloads.Details` message, with the payload's owner (see `PipelineDetailsItem`).
    `settled`: the payload is in no job's use and the message's file (if any) is recorded as
    it is stored, so that any later change of the message comes with one of the payload's
    events (`aorta.events.payload.<id>.>`), and a gateway may keep it until the next."""

    details: payloads_pb2.PayloadsDetailsResponse
    owner: str = ""
    settled: bool = False


@dataclass(frozen=True)
class CreateForJob:
    """A PIPELINE payload for the job, the REUSABLE `input_payloads` copied in, in order;
    `owner` is the job's, which its payload shares. The request's caller (`aorta.auth.caller`)
    must own every input payload."""

    job_id: JobId
    input_payloads: tuple[PayloadId, ...] = ()
    owner: str = ""

    def __post_init__(self) -> None:
        _canonical(self, job_id=ids.job_id)
        object.__setattr__(self, "input_payloads", tuple(map(ids.payload_id, self.input_payloads)))


@dataclass(frozen=True)
class CreatedForJob:
    payload_id: PayloadId

    def __post_init__(self) -> None:
        _canonical(self, payload_id=ids.payload_id)


@dataclass(frozen=True)
class JobPayload:
    """A job's payload, which the job locks when it starts and releases when it stops."""

    payload_id: PayloadId
    job_id: JobId

    def __post_init__(self) -> None:
        _canonical(self, payload_id=ids.payload_id, job_id=ids.job_id)


@dataclass(frozen=True)
class DiscardForJob:
    """The job was never revealed: its PIPELINE payload goes."""

    job_id: JobId

    def __post_init__(self) -> None:
        _canonical(self, job_id=ids.job_id)


@dataclass(frozen=True)
class Discarded:
    """The payload discarded, None when the job had none (none was made, or it is gone)."""

    payload_id: PayloadId | None

    def __post_init__(self) -> None:
        if self.payload_id is not None:
            _canonical(self, payload_id=ids.payload_id)


# The scheduler (aorta_services.scheduler).


@dataclass(frozen=True)
class JobStatus:
    """`Jobs.Status`'s answer, with the job's owner (see `PipelineDetailsItem`), its trace
    id ("" when tracing was off when it started) and its wait reasons in their typed form (the
    JSON document `aorta.wait_reasons` describes; "" when nothing waits). `settled`: the job
    is created or stopped, so that any later change of the answer comes with one of the job's
    events (`aorta.events.job.<id>.>`), and a gateway may keep it until the next."""

    status: jobs_pb2.JobsStatusResponse
    owner: str = ""
    trace_id: str = ""
    waiting: str = ""
    settled: bool = False


@dataclass(frozen=True)
class JobIds:
    """Some jobs by id, each once, in order."""

    job_ids: tuple[JobId, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "job_ids", tuple(dict.fromkeys(map(ids.job_id, self.job_ids))))


@dataclass(frozen=True)
class LeaderLogs:
    """The lines of a live operator run, asked of the leading scheduler replica."""

    run_id: str


@dataclass(frozen=True)
class LogLines:
    """Some of a run's lines, in order, without line endings."""

    lines: tuple[str, ...]


PIPELINES_CREATE = Verb(
    subjects.PIPELINES_CREATE, CreatePipeline, pipelines_pb2.PipelinesCreateResponse
)
PIPELINES_UPDATE = Verb(
    subjects.PIPELINES_UPDATE, UpdatePipeline, pipelines_pb2.PipelinesUpdateResponse
)
PIPELINES_SNAPSHOT = Verb(subjects.PIPELINES_SNAPSHOT, SnapshotRequest, PipelineSnapshot)
PIPELINES_DETAILS = StreamVerb(
    subjects.PIPELINES_DETAILS, pipelines_pb2.PipelinesDetailsRequest, PipelineDetailsItem
)

PAYLOADS_CHECK_UPLOAD = Verb(subjects.PAYLOADS_CHECK_UPLOAD, CheckUpload, UploadAllowed)
PAYLOADS_FILE_ADDED = Verb(subjects.PAYLOADS_FILE_ADDED, FileAdded, Done)
PAYLOADS_LOCATE = Verb(subjects.PAYLOADS_LOCATE, Locate, Located)
PAYLOADS_CREATE_FOR_JOB = Verb(subjects.PAYLOADS_CREATE_FOR_JOB, CreateForJob, CreatedForJob)
PAYLOADS_LOCK = Verb(subjects.PAYLOADS_LOCK, JobPayload, Done)
PAYLOADS_RELEASE = Verb(subjects.PAYLOADS_RELEASE, JobPayload, Done)
PAYLOADS_DISCARD_FOR_JOB = Verb(subjects.PAYLOADS_DISCARD_FOR_JOB, DiscardForJob, Discarded)
PAYLOADS_DELETE_FOR_JOB = Verb(subjects.PAYLOADS_DELETE_FOR_JOB, DiscardForJob, Discarded)
PAYLOADS_DETAILS = StreamVerb(
    subjects.PAYLOADS_DETAILS, payloads_pb2.PayloadsDetailsRequest, PayloadDetailsItem
)

SCHEDULER_STATUS = Verb(subjects.SCHEDULER_STATUS, jobs_pb2.JobsStatusRequest, JobStatus)
SCHEDULER_PLATFORM_STOP = Verb(subjects.SCHEDULER_PLATFORM_STOP, PlatformStop, PlatformStopped)
SCHEDULER_LEADER_LOGS = StreamVerb(subjects.SCHEDULER_LEADER_LOGS, LeaderLogs, LogLines)
SCHEDULER_READABLE_JOBS = Verb(subjects.SCHEDULER_READABLE_JOBS, JobIds, JobIds)

MODELS_UPLOAD = Verb(subjects.MODELS_UPLOAD, UploadModel, models_pb2.ModelsUploadModelResponse)
MODELS_DOWNLOAD = Verb(
    subjects.MODELS_DOWNLOAD, models_pb2.ModelsDownloadModelRequest, ModelLocation
)
MODELS_UPDATE_CATALOG = Verb(
    subjects.MODELS_UPDATE_CATALOG, UpdateModelList, models_pb2.ModelsUpdateCatalogResponse
)
MODELS_UPDATE_INSTANCE = Verb(
    subjects.MODELS_UPDATE_INSTANCE, UpdateModelList, models_pb2.ModelsUpdateInstanceResponse
)
MODELS_ACQUIRE_TRITON = Verb(subjects.MODELS_ACQUIRE_TRITON, AcquireTriton, TritonServer)
MODELS_RELEASE_TRITON = Verb(subjects.MODELS_RELEASE_TRITON, ReleaseTriton, Done)
MODELS_PLATFORM_STOP = Verb(subjects.MODELS_PLATFORM_STOP, PlatformStop, PlatformStopped)
