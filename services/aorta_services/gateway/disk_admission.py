"""New jobs and uploads refused while a disk is nearly full, every other call served.

The gateway is the one door of new work, so the watermark (`aorta.disk_watch`) is applied
here, by method: creating or starting a job, creating a payload, uploading payload files or a
model. An upload already under way is checked again as its messages arrive (at most once a
second), so one that would carry the disk past the watermark stops there, and the store
drops what it had of the file, as it does for any broken upload.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NoReturn

from google.protobuf.message import Message

from aorta.disk_watch import DiskWatch
from aorta.errors import ErrorCode
from aorta_services.gateway.rpc import Context, Handler, WireRequests, WireStreamHandler

RECHECK_SECONDS = 1.0
"""How often a running upload looks at the disks again."""

GUARDED: Mapping[tuple[str, str], tuple[str, ErrorCode]] = {
    ("Jobs", "Create"): ("new jobs", ErrorCode.JOB_STORE_ERROR),
    ("Jobs", "Start"): ("new jobs", ErrorCode.JOB_STORE_ERROR),
    ("Payloads", "Create"): ("new payloads and uploads", ErrorCode.PAYLOAD_STORE_ERROR),
    ("Payloads", "Upload"): ("new payloads and uploads", ErrorCode.PAYLOAD_STORE_ERROR),
    ("Payloads", "DirectUpload"): ("new payloads and uploads", ErrorCode.PAYLOAD_STORE_ERROR),
    ("Models", "UploadModel"): ("model uploads", ErrorCode.MODEL_STORE_ERROR),
}
"""The (service, method) pairs refused above the watermark: what they are and their code."""

_Unary = Callable[[Message, Context], Awaitable[Message]]
_ClientStreaming = Callable[[AsyncIterator[Message], Context], Awaitable[Message]]


def guarded(
    service: str, handlers: Mapping[str, Handler], disks: DiskWatch
) -> Mapping[str, Handler]:
    """`handlers` of `service`, those in `GUARDED` refusing while a disk is nearly full."""
    wrapped: dict[str, Handler] = dict(handlers)
    for method, handler in handlers.items():
        refused = GUARDED.get((service, method))
        if refused is None:
            continue
        what, code = refused
        if isinstance(handler, WireStreamHandler):
            wrapped[method] = _wire_streaming(handler, disks, what, code)
        elif method in {"Upload", "UploadModel"}:
            wrapped[method] = _streaming(handler, disks, what, code)  # type: ignore[arg-type]
        else:
            wrapped[method] = _unary(handler, disks, what, code)  # type: ignore[arg-type]
    return wrapped


def _unary(handler: _Unary, disks: DiskWatch, what: str, code: ErrorCode) -> _Unary:
    async def admitted(request: Message, context: Context) -> Message:
        await disks.admit(what, code)
        return await handler(request, context)

    return admitted


def _streaming(
    handler: _ClientStreaming, disks: DiskWatch, what: str, code: ErrorCode
) -> _ClientStreaming:
    async def admitted(requests: AsyncIterator[Message], context: Context) -> Message:
        await disks.admit(what, code)
        return await handler(_rechecked(requests, disks, what, code), context)

    return admitted


def _wire_streaming(
    handler: WireStreamHandler, disks: DiskWatch, what: str, code: ErrorCode
) -> WireStreamHandler:
    async def admitted(requests: WireRequests, context: Context) -> Message:
        await disks.admit(what, code)
        return await handler.serve(_RecheckedWire(requests, disks, what, code), context)

    return WireStreamHandler(admitted)


class _RecheckedWire:
    """`requests`, the disks looked at again before a message when a second has passed."""

    def __init__(self, requests: WireRequests, disks: DiskWatch, what: str, code: ErrorCode):
        self._requests = requests
        self._disks = disks
        self._what = what
        self._code = code
        self._checked = time.monotonic()

    async def next(self) -> bytes | None:
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            await self._disks.admit(self._what, self._code)
            self._checked = now
        return await self._requests.next()

    async def malformed(self) -> NoReturn:
        await self._requests.malformed()


async def _rechecked(
    requests: AsyncIterator[Any], disks: DiskWatch, what: str, code: ErrorCode
) -> AsyncIterator[Any]:
    checked = time.monotonic()
    async for request in requests:
        now = time.monotonic()
        if now - checked >= RECHECK_SECONDS:
            await disks.admit(what, code)
            checked = now
        yield request
