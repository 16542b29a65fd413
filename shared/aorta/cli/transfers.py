"""Moving payload files: `Payloads.Upload` of local files, `Payloads.Details` listings and
`Payloads.Download` of selected files, with progress for people at a terminal.

Where the platform offers it, a file's bytes take the direct path to or from the blob store
instead (`aorta.cli.direct`, docs/payloads.md), file by file; `via_gateway` keeps them on gRPC.

A downloaded file is written to a hidden temporary name beside its target and renamed only
once all its bytes arrived, so an interrupted download never leaves a truncated file behind.
Its SHA-256 is computed as it arrives and compared with the one the platform recorded when the
file was stored (the `sha256 <hex> <name>` lines of the Upload and Details headers): a file
whose bytes differ is refused, never renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import grpc

from aorta.api import aorta_payloads_pb2, common_pb2, payloads_pb2
from aorta.auth.ownership import FORCE_METADATA, owner_from_metadata
from aorta.cli.connection import UNARY_TIMEOUT, check, checked_replies, request_header
from aorta.cli.direct import LARGEST_UPLOAD, DirectPath, StoreUnreachable
from aorta.cli.direct_receive import Received
from aorta.cli.failures import CliFailure, NotFoundFailure
from aorta.cli.files import LocalFile, upload_requests
from aorta.cli.progress import Transfer
from aorta.cli.selection import Selected, select
from aorta.cli.session import Session
from aorta.payload_layout import input_key, wire_name
from aorta.payload_names import checksums

_WILDCARD = re.compile(r"[*?\[]")


def upload(
    session: Session, payload_id: str, files: list[LocalFile], *, via_gateway: bool = False
) -> Transfer:
    """Uploads `files` into the payload, each on the direct path while the platform offers it
    (unless `via_gateway`), the others in one `Payloads.Upload` stream; returns the finished
    transfer."""
    total = sum(f.size for f in files)
    with Transfer(session.output, "uploading", total) as transfer:
        rest = files if via_gateway else _upload_direct(session, payload_id, files, transfer)
        if rest:
            response = session.platform.payloads.Upload(
                upload_requests(payload_id, rest, transfer.advance), timeout=None
            )
            check(response, f"uploading to payload {payload_id}")
            transfer.sha256.update(checksums(response.header.messages))
    return transfer


def _upload_direct(
    session: Session, payload_id: str, files: list[LocalFile], transfer: Transfer
) -> list[LocalFile]:
    """Uploads what it can of `files` on the direct path; the files left for gRPC. Once the
    platform refuses a link for a file small enough for one, it offers none at all."""
    direct = DirectPath(session)
    for index, local in enumerate(files):
        try:
            committed = direct.upload(payload_id, local, transfer.advance)
        except StoreUnreachable as unreachable:
            _falling_back(session, unreachable)
            return files[index:]
        if committed is None:
            if local.size <= LARGEST_UPLOAD:
                return files[index:]
            return [local, *_upload_direct(session, payload_id, files[index + 1 :], transfer)]
        transfer.sha256.update(checksums(committed.header.messages))
        transfer.direct.add(local.name)
    return []


def recorded_sha256(
    payload_id: str, files: list[LocalFile], transfer: Transfer
) -> list[str | None]:
    """The checksum the platform recorded for each of `files` uploaded by `transfer`, in order;
    None where it answered none."""
    return [
        transfer.sha256.get(wire_name(payload_id, input_key(payload_id, f.name))) for f in files
    ]


@dataclass(frozen=True)
class ListedFile:
    """One file as `Payloads.Details` lists it."""

    name: str
    size: int
    mode: int
    sha256: str | None
    """What the platform recorded when the file was stored; None where it recorded nothing
    (an operator's output)."""

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "mode": self.mode, "sha256": self.sha256}


@dataclass(frozen=True)
class PayloadListing:
    """What `Payloads.Details` says about a payload."""

    payload_id: str
    kind: str
    job_id: str
    metadata: dict[str, str]
    files: list[ListedFile]
    """In the order the server sent them."""
    owner: str = ""
    """The subject that created the payload, "" when the platform names none."""

    def document(self) -> dict[str, Any]:
        return {
            "payload_id": self.payload_id,
            "type": self.kind,
            "job_id": self.job_id or None,
            "created_by": self.owner or None,
            "metadata": self.metadata,
            "files": [file.document() for file in self.files],
        }


def listing(session: Session, payload_id: str) -> PayloadListing:
    """`Payloads.Details` of `payload_id`: one message per file, gathered."""
    request = payloads_pb2.PayloadsDetailsRequest(
        header=request_header(), payload_id=common_pb2.Identifier(value=payload_id)
    )
    kind, job_id, metadata = "UNKNOWN", "", {}
    files: list[ListedFile] = []
    stream = session.platform.payloads.Details(request)
    for index, response in enumerate(stream):
        if index == 0:
            check(response, f"listing payload {payload_id}")
            kind = payloads_pb2.PayloadType.Name(response.type).removeprefix("PAYLOAD_TYPE_")
            job_id = response.job_id.value
            metadata = dict(response.metadata)
        if response.file.name:
            name = response.file.name
            digest = checksums(response.header.messages).get(name)
            files.append(ListedFile(name, response.file.size, response.file.mode, digest))
    owner = owner_from_metadata(stream.initial_metadata())
    return PayloadListing(payload_id, kind, job_id, metadata, files, owner)


@dataclass(frozen=True)
class Downloaded:
    """A file written by `download`: where it went and its SHA-256 as received; `verified`
    when the platform had recorded one to compare it with (they were equal)."""

    name: str
    size: int
    target: Path
    sha256: str
    verified: bool
    direct: bool = False
    """Whether the bytes came straight from the blob store (docs/payloads.md)."""

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "path": str(self.target),
            "sha256": self.sha256,
            "verified": self.verified,
        }


def download(
    session: Session, payload_id: str, pattern: str, dest: Path, *, via_gateway: bool = False
) -> list[Downloaded]:
    """Downloads every file of the payload that `pattern` selects into `dest`, checking each
    against the SHA-256 the platform recorded for it; on the direct path where the platform
    offers it, unless `via_gateway`. A pattern naming one file has its link asked for while
    the payload is listed, saving a round trip before the first byte; the link is used only
    when the listing selects that very file.

    Nothing selected is a `NotFoundFailure` listing what the payload holds.
    """
    direct = None if via_gateway else DirectPath(session)
    try:
        return _download(session, payload_id, pattern, dest, direct)
    finally:
        if direct is not None:
            direct.close()


def _download(
    session: Session, payload_id: str, pattern: str, dest: Path, direct: DirectPath | None
) -> list[Downloaded]:
    with ThreadPoolExecutor(1, "aorta-link") as asking:
        early = (
            asking.submit(_early_link, direct, payload_id, pattern)
            if direct is not None and not _WILDCARD.search(pattern)
            else None
        )
        found = listing(session, payload_id)
        early_link = early.result() if early is not None else None
    chosen = select(((file.name, file.size) for file in found.files), pattern, dest)
    if not chosen:
        names = ", ".join(file.name for file in found.files[:10]) or "no files"
        more = " ..." if len(found.files) > 10 else ""
        raise NotFoundFailure(
            f"no file of payload {payload_id} matches {pattern!r} (it holds: {names}{more})"
        )
    recorded = {file.name: file.sha256 for file in found.files}
    downloaded = []
    with Transfer(session.output, "downloading", sum(s.size for s in chosen)) as transfer:
        for selected in chosen:
            expected = recorded.get(selected.name)
            received: Received | None = None
            if direct is not None:
                asked: aorta_payloads_pb2.PayloadsDirectDownloadResponse | None
                try:
                    if early_link is not None and early_link.details.name == selected.name:
                        asked, early_link = early_link, None
                    else:
                        asked = direct.link(payload_id, selected.name)
                    received = None if asked is None else direct.fetch(asked, transfer.advance)
                except StoreUnreachable as unreachable:
                    _falling_back(session, unreachable)
                if received is None:
                    direct = None  # no links offered, or none this client can use: ask no more
            if received is None:
                chunks = _grpc_chunks(session, payload_id, selected.name, transfer)
                digest = _fetch(selected, chunks, expected)
            else:
                with received:
                    digest = _fetch(selected, received, expected, received.recycle)
            downloaded.append(
                Downloaded(
                    selected.name,
                    selected.size,
                    selected.target,
                    digest,
                    bool(expected),
                    direct=received is not None,
                )
            )
    return downloaded


def _early_link(
    direct: DirectPath, payload_id: str, name: str
) -> aorta_payloads_pb2.PayloadsDirectDownloadResponse | None:
    """`direct.link` of a name the listing may not select as such (a folder, say): None
    where the platform refuses it, the download then asks again for what was selected."""
    try:
        return direct.link(payload_id, name)
    except (CliFailure, grpc.RpcError):
        return None


def _falling_back(session: Session, unreachable: StoreUnreachable) -> None:
    session.output.note(
        f"{unreachable.message}; the rest goes through the platform (--via-gateway does so at once)"
    )


def _grpc_chunks(
    session: Session, payload_id: str, name: str, transfer: Transfer
) -> Iterator[bytes]:
    """The bytes of one file through `Payloads.Download`."""
    request = payloads_pb2.PayloadsDownloadRequest(
        header=request_header(),
        payload_id=common_pb2.Identifier(value=payload_id),
        name=name,
    )
    for response in checked_replies(
        session.platform.payloads.Download(request), f"downloading {name}"
    ):
        transfer.advance(name, len(response.data))
        yield response.data


def _fetch(
    selected: Selected,
    chunks: Iterable[bytes | memoryview],
    expected_sha256: str | None,
    done: Callable[[bytes | memoryview], None] | None = None,
) -> str:
    """Writes one file into place from `chunks`; its SHA-256. `CliFailure` when it ends short
    or its bytes are not the ones the platform recorded (nothing is then left at the target).
    Each chunk is hashed, then written behind the hashing of the next, then given to `done`
    (its buffer may then be reused: it is never written to while hashed or written)."""
    selected.target.parent.mkdir(parents=True, exist_ok=True)
    partial = selected.target.with_name(f".{selected.target.name}.part")
    expected = selected.size
    written = 0
    digest = hashlib.sha256()
    try:
        with partial.open("wb", buffering=0) as handle, WriteBehind(handle, done=done) as writer:
            for data in chunks:
                digest.update(data)
                writer.write(data)
                written += len(data)
        if expected and written != expected:
            raise CliFailure(
                f"download of {selected.name} ended after {written} of {expected} bytes"
            )
        received = digest.hexdigest()
        if expected_sha256 is not None and received != expected_sha256:
            raise CliFailure(
                f"download of {selected.name} is damaged: its bytes have sha256 {received}, "
                f"the platform recorded {expected_sha256} when it was stored; nothing was "
                f"written to {selected.target}"
            )
        os.replace(partial, selected.target)
        return received
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


class WriteBehind:
    """Writes chunks to a file in a thread of its own, in order, while the caller hashes the
    next ones (both let other threads run): the check of a download costs no time beside the
    write. At most `depth` chunks wait. Each chunk written (or skipped after a failed write)
    is given to `done`. Leaving the block waits for every chunk to be written and raises the
    first error of the writes (a failed write stops the rest)."""

    def __init__(
        self,
        handle: BinaryIO,
        depth: int = 8,
        *,
        done: Callable[[bytes | memoryview], None] | None = None,
    ) -> None:
        self._handle = handle
        self._done = done
        self._waiting: queue.Queue[bytes | memoryview | None] = queue.Queue(depth)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._write_all, name="aorta-write", daemon=True)

    def __enter__(self) -> WriteBehind:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._waiting.put(None)
        self._thread.join()
        if self._error is not None and exc_info[0] is None:
            raise self._error

    def write(self, data: bytes | memoryview) -> None:
        """Queues `data`; the error of an earlier write, if one failed."""
        if self._error is not None:
            raise self._error
        self._waiting.put(data)

    def _write_all(self) -> None:
        while (data := self._waiting.get()) is not None:
            if self._error is None:
                try:
                    _write_whole(self._handle, data)
                except OSError as error:  # raised in the caller's thread
                    self._error = error
            if self._done is not None:
                self._done(data)


def _write_whole(handle: BinaryIO, data: bytes | memoryview) -> None:
    """All of `data` (an unbuffered file may take part of it per call)."""
    view = memoryview(data)
    while view:
        written = handle.write(view)
        view = view[written if written is not None else len(view) :]


def delete(session: Session, payload_id: str, *, force: bool = False) -> None:
    """Payloads.Delete; `force` asks an admin's deletion of a stopped job's payload alone."""
    request = payloads_pb2.PayloadsDeleteRequest(
        header=request_header(), payload_id=common_pb2.Identifier(value=payload_id)
    )
    metadata = ((FORCE_METADATA, "true"),) if force else ()
    response = session.platform.payloads.Delete(request, timeout=UNARY_TIMEOUT, metadata=metadata)
    check(response, f"deleting payload {payload_id}")
