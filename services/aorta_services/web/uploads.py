"""A job made from a browser's form: its fields, then its files streamed into the payload.

The form (multipart/form-data) is read as it arrives: the fields (`name`, `priority`,
`variables`, `start`) come first, then the `file` parts. At the first file (or the end of the
form) the job is created; each file is then passed on to `Payloads.Upload` chunk by chunk as
it is read, so nothing is held in memory or on disk whatever its size. The form's order is
part of the API (browsers keep the order in which a page appends to its FormData).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, MultipartReader

from aorta.api import common_pb2, jobs_pb2, payloads_pb2
from aorta_services.web.platform_client import request_header
from aorta_services.web.problems import ApiError, invalid
from aorta_services.web.wire import PRIORITIES

CHUNK_BYTES = 64 * 1024
"""Bytes per upload message (Clara clients' chunk size)."""
MAX_FIELD_BYTES = 64 * 1024
FILE_MODE = 0o644
FIELDS = ("name", "priority", "variables", "start")


@dataclass
class JobForm:
    """The form's fields, checked."""

    name: str
    priority: int
    variables: dict[str, str]
    start: bool

    @classmethod
    def parse(cls, fields: dict[str, str]) -> JobForm:
        name = fields.get("name", "").strip()
        if not name:
            raise invalid("the form needs a `name` field before its files")
        priority = fields.get("priority", "NORMAL").strip().upper() or "NORMAL"
        if priority not in PRIORITIES:
            raise invalid(f"priority {priority!r} is not one of {', '.join(PRIORITIES)}")
        try:
            variables = json.loads(fields.get("variables") or "{}")
        except json.JSONDecodeError:
            raise invalid(
                'variables must be a JSON object of strings, e.g. {"SIZE": "512"}'
            ) from None
        if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise invalid('variables must be a JSON object of strings, e.g. {"SIZE": "512"}')
        start = fields.get("start", "true").strip().lower()
        if start not in ("true", "false"):
            raise invalid(f"start {start!r} must be true or false")
        return cls(
            name, jobs_pb2.JobPriority.Value(f"JOB_PRIORITY_{priority}"), variables, start == "true"
        )


async def read_fields(reader: MultipartReader) -> tuple[dict[str, str], BodyPartReader | None]:
    """The fields before the first file, and that file's part (None: the form has none)."""
    fields: dict[str, str] = {}
    while True:
        part = await reader.next()
        if part is None:
            return fields, None
        if not isinstance(part, BodyPartReader):
            raise invalid("nested multipart forms are not accepted")
        if part.filename is not None:
            if part.name != "file":
                raise invalid(f"files go in `file` parts, not {part.name!r}")
            return fields, part
        if part.name not in FIELDS:
            raise invalid(
                f"unknown field {part.name!r}; the form takes {', '.join(FIELDS)} and files"
            )
        raw = bytearray()
        while chunk := await part.read_chunk(CHUNK_BYTES):
            raw += chunk
            if len(raw) > MAX_FIELD_BYTES:
                raise invalid(f"field {part.name!r} is longer than {MAX_FIELD_BYTES} bytes")
        try:
            fields[part.name] = raw.decode()
        except UnicodeDecodeError:
            raise invalid(f"field {part.name!r} is not UTF-8 text") from None


@dataclass
class FileStream:
    """The upload messages of every file part from `first` on, with what was sent."""

    payload_id: str
    reader: MultipartReader
    first: BodyPartReader
    max_bytes: int
    sent: list[tuple[str, int]] = field(default_factory=list)
    failure: ApiError | None = None
    """Why the form could not be read to its end (the upload then stops there)."""
    _total: int = 0

    async def requests(self) -> AsyncIterator[payloads_pb2.PayloadsUploadRequest]:
        part: BodyPartReader | None = self.first
        header_sent = False
        while part is not None and self.failure is None:
            name = part.filename or ""
            size = 0
            while True:
                chunk = await part.read_chunk(CHUNK_BYTES)
                self._total += len(chunk)
                if self._total > self.max_bytes:
                    self.failure = ApiError(
                        413, "PAYLOAD_TOO_LARGE", f"the files exceed {self.max_bytes >> 20} MiB"
                    )
                    return
                if chunk or size == 0:
                    request = payloads_pb2.PayloadsUploadRequest(
                        payload_id=common_pb2.Identifier(value=self.payload_id),
                        details=payloads_pb2.PayloadFileDetails(
                            name=name, size=len(chunk), mode=FILE_MODE
                        ),
                        data=chunk,
                    )
                    if not header_sent:
                        request.header.CopyFrom(request_header())
                        header_sent = True
                    yield request
                size += len(chunk)
                if not chunk:
                    break
            self.sent.append((name, size))
            part = await self._next_file()

    async def _next_file(self) -> BodyPartReader | None:
        following = await self.reader.next()
        if following is None:
            return None
        if not isinstance(following, BodyPartReader) or following.filename is None:
            self.failure = invalid("fields go before the files in the form")
            return None
        if following.name != "file":
            self.failure = invalid(f"files go in `file` parts, not {following.name!r}")
            return None
        return following
