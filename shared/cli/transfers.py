"""Moving payload files: `Payloads.Upload` of local files, `Payloads.Details` listings and
`Payloads.Download` of selected files, with progress for people at a terminal.

A downloaded file is written to a hidden temporary name beside its target and renamed only
once all its bytes arrived, so an interrupted download never leaves a truncated file behind.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aorta.api import common_pb2, payloads_pb2
from aorta.cli.connection import UNARY_TIMEOUT, check, request_header
from aorta.cli.failures import CliFailure, NotFoundFailure
from aorta.cli.files import LocalFile, upload_requests
from aorta.cli.progress import Transfer
from aorta.cli.selection import Selected, select
from aorta.cli.session import Session


def upload(session: Session, payload_id: str, files: list[LocalFile]) -> Transfer:
    """Uploads `files` into the payload in one stream; returns the finished transfer."""
    total = sum(f.size for f in files)
    with Transfer(session.output, "uploading", total) as transfer:
        response = session.platform.payloads.Upload(
            upload_requests(payload_id, files, transfer.advance), timeout=None
        )
    check(response, f"uploading to payload {payload_id}")
    return transfer


@dataclass(frozen=True)
class PayloadListing:
    """What `Payloads.Details` says about a payload."""

    payload_id: str
    kind: str
    job_id: str
    metadata: dict[str, str]
    files: list[tuple[str, int, int]]
    """(name, size, mode) of each file, in the order the server sent them."""

    def document(self) -> dict[str, Any]:
        return {
            "payload_id": self.payload_id,
            "type": self.kind,
            "job_id": self.job_id or None,
            "metadata": self.metadata,
            "files": [{"name": n, "size": s, "mode": m} for n, s, m in self.files],
        }


def listing(session: Session, payload_id: str) -> PayloadListing:
    """`Payloads.Details` of `payload_id`: one message per file, gathered."""
    request = payloads_pb2.PayloadsDetailsRequest(
        header=request_header(), payload_id=common_pb2.Identifier(value=payload_id)
    )
    kind, job_id, metadata = "UNKNOWN", "", {}
    files: list[tuple[str, int, int]] = []
    for index, response in enumerate(session.platform.payloads.Details(request)):
        if index == 0:
            check(response, f"listing payload {payload_id}")
            kind = payloads_pb2.PayloadType.Name(response.type).removeprefix("PAYLOAD_TYPE_")
            job_id = response.job_id.value
            metadata = dict(response.metadata)
        if response.file.name:
            files.append((response.file.name, response.file.size, response.file.mode))
    return PayloadListing(payload_id, kind, job_id, metadata, files)


def download(session: Session, payload_id: str, pattern: str, dest: Path) -> list[Selected]:
    """Downloads every file of the payload that `pattern` selects into `dest`.

    Nothing selected is a `NotFoundFailure` listing what the payload holds.
    """
    found = listing(session, payload_id)
    chosen = select(((name, size) for name, size, _ in found.files), pattern, dest)
    if not chosen:
        names = ", ".join(name for name, _, _ in found.files[:10]) or "no files"
        more = " ..." if len(found.files) > 10 else ""
        raise NotFoundFailure(
            f"no file of payload {payload_id} matches {pattern!r} (it holds: {names}{more})"
        )
    with Transfer(session.output, "downloading", sum(s.size for s in chosen)) as transfer:
        for selected in chosen:
            _fetch(session, payload_id, selected, transfer)
    return chosen


def _fetch(session: Session, payload_id: str, selected: Selected, transfer: Transfer) -> None:
    request = payloads_pb2.PayloadsDownloadRequest(
        header=request_header(),
        payload_id=common_pb2.Identifier(value=payload_id),
        name=selected.name,
    )
    selected.target.parent.mkdir(parents=True, exist_ok=True)
    partial = selected.target.with_name(f".{selected.target.name}.part")
    expected = selected.size
    written = 0
    try:
        with partial.open("wb") as handle:
            for index, response in enumerate(session.platform.payloads.Download(request)):
                if index == 0:
                    check(response, f"downloading {selected.name}")
                    expected = response.details.size or expected
                handle.write(response.data)
                written += len(response.data)
                transfer.advance(selected.name, len(response.data))
        if expected and written != expected:
            raise CliFailure(
                f"download of {selected.name} ended after {written} of {expected} bytes"
            )
        os.replace(partial, selected.target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def delete(session: Session, payload_id: str) -> None:
    request = payloads_pb2.PayloadsDeleteRequest(
        header=request_header(), payload_id=common_pb2.Identifier(value=payload_id)
    )
    response = session.platform.payloads.Delete(request, timeout=UNARY_TIMEOUT)
    check(response, f"deleting payload {payload_id}")
