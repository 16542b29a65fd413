"""What a stored payload is, and the rules that guard it: pure, no I/O.

A payload record says what the blob store cannot: the payload's kind (a job's PIPELINE payload
or a REUSABLE one), its job, its metadata, and its state. A PIPELINE payload becomes read-only
when its job starts (`locked`) and stays so for good; while the job runs it is also in use, and
an in-use payload cannot be deleted. `deleting` marks a payload whose deletion began: it is gone
for every caller from that moment, and a retried Delete finishes the work.

An upload marks the payload as receiving a file (`committing`) just before the blob store
commits the file, and the mark ends once the file is recorded (or the upload failed); a Remove
marks it while its file goes. While a
live mark is held, the payload is not locked (PAYLOAD_IN_USE: its job's Start is refused), and
once locked it takes no mark. So a job's input is, from its start on, exactly what it was when
it started: no upload's bytes land in it afterwards, and none is deleted because it landed
late. A mark lives `COMMIT_SECONDS` at most, so a gateway that died while committing blocks a
Start only that long.

A file record keeps what an upload (or a copy) learned about one file: size, sha256 and mode.
The blob store stays the source of truth of which files exist and how large they are; a record
whose size no longer matches its blob is stale and its checksum is not shown.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aorta.auth.ownership import check_owner
from aorta.errors import Conflict, ErrorCode, Invalid, NotFound
from aorta.ids import JobId, PayloadId


class PayloadKind(enum.Enum):
    """Clara's `PayloadType`, less UNKNOWN (no stored payload is of an unknown kind)."""

    PIPELINE = "PIPELINE"
    REUSABLE = "REUSABLE"


def owned(record: PayloadRecord) -> PayloadRecord:
    """`record`, once the current caller is found to own it (`aorta.auth.ownership`);
    `Forbidden` otherwise."""
    check_owner(record.owner, f"payload {record.id}")
    return record


COMMIT_SECONDS = 600.0
"""How long a commit mark holds a payload open at most (see the module docstring): far longer
than a commit takes (a local rename, the last parts of an S3 upload and its completion, one
bus round trip), short enough that a dead gateway's mark does not keep a job from starting
for long."""


@dataclass(frozen=True)
class CommitMark:
    """An upload is committing a file into the payload: `id` is the gateway's, `until` the
    time (seconds since the epoch) after which the mark no longer counts."""

    id: str
    until: float


def payload_not_found(id: str) -> NotFound:
    return NotFound(f"no payload has id {id}", code=ErrorCode.PAYLOAD_NOT_FOUND)


@dataclass(frozen=True)
class PayloadRecord:
    """One stored payload; `version` is the store's, for optimistic concurrency. `owner` is
    the subject that created it (for a PIPELINE payload, its job's); "" when authentication
    was off, or for a record stored before owners were."""

    id: PayloadId
    kind: PayloadKind
    job_id: JobId | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    read_only: bool = False
    in_use_by_job: JobId | None = None
    deleting: bool = False
    input_payloads: tuple[PayloadId, ...] = ()
    version: int = 0
    owner: str = ""
    committing: tuple[CommitMark, ...] = ()

    def check_present(self) -> None:
        """`NotFound` (PAYLOAD_NOT_FOUND) once its deletion began."""
        if self.deleting:
            raise payload_not_found(self.id)

    def check_writable(self) -> None:
        """`Conflict` (PAYLOAD_READ_ONLY) unless files may be added or removed now."""
        self.check_present()
        if self.read_only:
            raise Conflict(
                f"payload {self.id} cannot change: the payload of job {self.job_id} is "
                "read-only since the job started",
                code=ErrorCode.PAYLOAD_READ_ONLY,
            )

    def with_metadata(self, metadata: Mapping[str, str]) -> PayloadRecord:
        """The record with new metadata; `Invalid` for a PIPELINE payload (Clara 0.7.3+ allows
        metadata on reusable payloads only)."""
        self.check_present()
        if self.kind is not PayloadKind.REUSABLE:
            raise Invalid(
                f"payload {self.id} is the PIPELINE payload of job {self.job_id}; metadata is "
                "allowed only on REUSABLE payloads (made with Payloads.Create)",
                code=ErrorCode.PAYLOAD_REQUEST_INVALID,
            )
        return replace(self, metadata=dict(metadata))

    def with_commit(self, mark: str, now: float) -> PayloadRecord:
        """Marked as receiving a file (mark `mark`, live until `now` + `COMMIT_SECONDS`);
        `check_writable`'s errors when it takes no files. Marks that expired are dropped."""
        self.check_writable()
        live = self._live_marks(now)
        return replace(self, committing=(*live, CommitMark(mark, now + COMMIT_SECONDS)))

    def without_commit(self, mark: str, now: float) -> PayloadRecord:
        """No longer marked by `mark` (its file is recorded, or its upload failed); expired
        marks dropped too. Idempotent, and allowed in any state."""
        return replace(self, committing=tuple(m for m in self._live_marks(now) if m.id != mark))

    def _live_marks(self, now: float) -> tuple[CommitMark, ...]:
        return tuple(mark for mark in self.committing if mark.until > now)

    def locked(self, job_id: JobId, now: float) -> PayloadRecord:
        """Read-only and in use by its job, which started. Idempotent for that job.

        `Invalid` for a REUSABLE payload (jobs get copies of those, never the payload itself);
        `Conflict` (PAYLOAD_IN_USE) when the payload belongs to another job, or while an upload
        is committing a file into it (a live `CommitMark`): its job may start once it ended.
        """
        self.check_present()
        self._check_job_payload(job_id, "locked")
        if self.read_only and self.in_use_by_job == job_id:
            return self
        if self._live_marks(now):
            raise Conflict(
                f"payload {self.id} is still receiving files; start job {job_id} once its "
                "upload ends",
                code=ErrorCode.PAYLOAD_IN_USE,
            )
        return replace(self, read_only=True, in_use_by_job=job_id, committing=())

    def released(self, job_id: JobId) -> PayloadRecord:
        """No longer in use (its job stopped); still read-only. Idempotent.

        `Conflict` (PAYLOAD_IN_USE) when another job holds it.
        """
        self.check_present()
        if self.in_use_by_job not in (None, job_id):
            raise Conflict(
                f"payload {self.id} is in use by job {self.in_use_by_job}, not by job {job_id}",
                code=ErrorCode.PAYLOAD_IN_USE,
            )
        return replace(self, in_use_by_job=None)

    def _check_job_payload(self, job_id: JobId, verb: str) -> None:
        """`Invalid` for a REUSABLE payload, `Conflict` (PAYLOAD_IN_USE) for another job's:
        only a job's own PIPELINE payload is `verb` for it."""
        if self.kind is not PayloadKind.PIPELINE:
            raise Invalid(
                f"payload {self.id} is REUSABLE; only a job's own PIPELINE payload is {verb}",
                code=ErrorCode.PAYLOAD_REQUEST_INVALID,
            )
        if self.job_id != job_id:
            raise Conflict(
                f"payload {self.id} belongs to job {self.job_id}, not to job {job_id}",
                code=ErrorCode.PAYLOAD_IN_USE,
            )

    def marked_deleting(self, *, force: bool = False) -> PayloadRecord:
        """The first step of a client's Delete (`Payloads.Delete`), which never leaves a job
        without its payload.

        A REUSABLE payload may always go (jobs hold copies of it). A job's PIPELINE payload
        goes with its job (`marked_deleted_with_job`), not alone: while the job can still run
        (created, queued or running) the Delete is refused with `Conflict` (PAYLOAD_IN_USE)
        naming the job; once the job stopped, its read-only payload is refused with `Conflict`
        (PAYLOAD_READ_ONLY) unless `force` (an admin's explicit choice, checked by the caller),
        which never overrides PAYLOAD_IN_USE.
        """
        self._check_not_in_use()
        if self.kind is PayloadKind.PIPELINE:
            if not self.read_only:
                raise Conflict(
                    f"payload {self.id} is the input of job {self.job_id}, which has not run "
                    "(created, or canceled before it started); delete the job with "
                    f"`aorta delete job {self.job_id}` and its payload goes with it",
                    code=ErrorCode.PAYLOAD_IN_USE,
                )
            if not force:
                raise Conflict(
                    f"payload {self.id} is the read-only payload of job {self.job_id}, which "
                    f"stopped; delete the job with `aorta delete job {self.job_id}` and its "
                    "payload goes with it (an admin may delete the payload alone with "
                    "`aorta delete payload --force`)",
                    code=ErrorCode.PAYLOAD_READ_ONLY,
                )
        return replace(self, deleting=True)

    def _check_not_in_use(self) -> None:
        """`Conflict` (PAYLOAD_IN_USE) while a started job holds the payload (queued or
        running, or stopped and not released yet)."""
        if self.in_use_by_job is not None:
            raise Conflict(
                f"payload {self.id} is in use by job {self.in_use_by_job}, which is queued or "
                f"running; cancel it (`aorta cancel job {self.in_use_by_job}`) and delete the "
                "job once it stopped, which deletes its payload with it",
                code=ErrorCode.PAYLOAD_IN_USE,
            )

    def marked_discarded(self, job_id: JobId) -> PayloadRecord:
        """The first step of discarding the payload of job `job_id`, which was never revealed
        (its `Jobs.Create` failed, or its scheduler died midway): marked as a Delete marks it.
        Idempotent, so an interrupted discard is finished by the next.

        `Invalid` for a REUSABLE payload (no job's to discard); `Conflict` (PAYLOAD_IN_USE)
        for another job's payload, and (PAYLOAD_READ_ONLY) once locked: its job started, so it
        was revealed, and only a client's Delete removes its payload now.
        """
        self._check_job_payload(job_id, "discarded")
        if self.read_only:
            raise Conflict(
                f"payload {self.id} is not discarded: job {job_id} started, so it was created "
                "in full; delete the payload with Payloads.Delete",
                code=ErrorCode.PAYLOAD_READ_ONLY,
            )
        return replace(self, deleting=True)

    def marked_deleted_with_job(self, job_id: JobId) -> PayloadRecord:
        """The first step of deleting the payload of job `job_id` with the job itself (the
        job stopped; `aorta.v1.Jobs/Delete`): marked as a Delete marks it, read-only or not.
        Idempotent, so an interrupted deletion is finished by the next.

        `Invalid` for a REUSABLE payload; `Conflict` (PAYLOAD_IN_USE) for another job's
        payload, or while the job still holds it (its resources are not released yet).
        """
        self._check_job_payload(job_id, "deleted with it")
        self._check_not_in_use()
        return replace(self, deleting=True)

    def to_document(self) -> dict[str, Any]:
        """The stored form (without the store's own `version` and times).

        `job_id` is left out for a REUSABLE payload, so that the unique index on it constrains
        PIPELINE payloads only. Metadata is kept as [key, value] pairs: keys are free text,
        which not every store accepts as field names.
        """
        document: dict[str, Any] = {
            "id": self.id,
            "type": self.kind.value,
            "metadata": [[key, value] for key, value in self.metadata.items()],
            "read_only": self.read_only,
            "in_use_by_job": self.in_use_by_job,
            "deleting": self.deleting,
            "input_payloads": list(self.input_payloads),
            "owner": self.owner,
            "committing": [[mark.id, mark.until] for mark in self.committing],
        }
        if self.job_id is not None:
            document["job_id"] = self.job_id
        return document

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> PayloadRecord:
        job_id = document.get("job_id")
        in_use = document.get("in_use_by_job")
        return PayloadRecord(
            id=PayloadId(document["id"]),
            kind=PayloadKind(document["type"]),
            job_id=JobId(job_id) if job_id else None,
            metadata={key: value for key, value in document.get("metadata", [])},
            read_only=bool(document.get("read_only", False)),
            in_use_by_job=JobId(in_use) if in_use else None,
            deleting=bool(document.get("deleting", False)),
            input_payloads=tuple(PayloadId(i) for i in document.get("input_payloads", [])),
            version=int(document.get("version", 0)),
            owner=str(document.get("owner", "")),
            committing=tuple(
                CommitMark(str(id), float(until)) for id, until in document.get("committing", [])
            ),
        )


@dataclass(frozen=True)
class FileRecord:
    """What the platform learned about one file when it was written.

    `name` is relative to the payload root (`input/scan.dcm`); `sha256` is lowercase hex, or
    None when the writer could not tell; `mode` holds permission bits as the client sent them
    (Clara's python client sends 0).
    """

    payload_id: PayloadId
    name: str
    size: int
    sha256: str | None
    mode: int = 0

    @property
    def document_id(self) -> str:
        return file_document_id(self.payload_id, self.name)

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.document_id,
            "payload_id": self.payload_id,
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "mode": self.mode,
        }

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> FileRecord:
        return FileRecord(
            payload_id=PayloadId(document["payload_id"]),
            name=document["name"],
            size=int(document["size"]),
            sha256=document.get("sha256"),
            mode=int(document.get("mode", 0)),
        )


def file_document_id(payload_id: str, name: str) -> str:
    """One document per payload and file name."""
    return f"{payload_id}:{name}"


@dataclass(frozen=True)
class CopyStep:
    """One file of a REUSABLE input payload to copy into a job's payload (names relative to
    the `input/` folders)."""

    source: PayloadId
    name: str


def plan_input_copies(inputs: Sequence[tuple[PayloadId, Iterable[str]]]) -> list[CopyStep]:
    """The copies that put every input payload's files into one `input/` folder, in list order.

    `inputs` pairs each input payload with the names of its `input/` files. `Invalid`
    (PAYLOAD_REQUEST_INVALID) when a payload is listed twice, when two payloads hold the same
    name, or when one holds a file where another has a folder (`a` and `a/b`): a job's input
    must not depend on which payload was copied last.
    """
    files: dict[str, PayloadId] = {}
    folders: dict[str, PayloadId] = {}
    steps: list[CopyStep] = []
    seen: set[PayloadId] = set()
    for source, names in inputs:
        if source in seen:
            raise _invalid_inputs(f"payload {source} is listed twice")
        seen.add(source)
        for name in names:
            clash = files.get(name)
            if clash is not None:
                raise _invalid_inputs(f"payloads {clash} and {source} both hold {name!r}")
            clash = folders.get(name)
            if clash is not None:
                raise _invalid_inputs(
                    f"payload {source} holds a file {name!r} where payload {clash} has a folder"
                )
            parts = name.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                clash = files.get(folder)
                if clash is not None:
                    raise _invalid_inputs(
                        f"payload {source} has a folder {folder!r} where payload {clash} holds "
                        "a file"
                    )
                folders.setdefault(folder, source)
            files[name] = source
            steps.append(CopyStep(source, name))
    return steps


def _invalid_inputs(problem: str) -> Invalid:
    return Invalid(
        f"the job's input payloads cannot be combined: {problem}; the files of all input "
        "payloads land in one input folder, so their names must not collide",
        code=ErrorCode.PAYLOAD_REQUEST_INVALID,
    )
