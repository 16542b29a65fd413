"""How the gateway reads one `Payloads.Upload` stream: files reassembled by name, in arrival
order, handed on chunk by chunk, never held whole.

The rules (docs/clara-compatibility.md, "Payload names and upload chunks", and Aorta's choices
where Clara is silent):

- Every message may carry `payload_id`; the first non-empty one names the payload, an empty one
  means "the same", and a message naming another payload is refused (PAYLOAD_REQUEST_INVALID).
- A message with neither a file name nor data (a header-only first message) is skipped; data
  without a file name is refused (PAYLOAD_FILE_NAME_INVALID).
- Consecutive messages with the same `details.name` are one file, its chunks in arrival order.
  A file ends when a message names another file or the stream ends. Files come one after
  another, as Clara's clients send them: a name that comes back after another file started is
  refused (PAYLOAD_REQUEST_INVALID); files completed before that stay stored.
- A message with a name and no data makes a zero-byte file if no data follows for that name.
- `details.size`: NVIDIA's python client sets it to each chunk's length, so it is never refused
  as such. When a file's first message announces more bytes than it carries, and every message
  of the file announces that same number, it is the file's total (Aorta's CLI sends it so); a
  file that then ends with any other number of bytes is refused before it is stored, so a
  sender that stopped early never leaves a short file.
- `details.mode` of a file's first message is kept, masked to permission bits (0o7777).
- Names are checked by `aorta.payload_names.check_upload_name` when a file starts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing

from aorta import ids
from aorta.api import payloads_pb2
from aorta.errors import ErrorCode, Invalid
from aorta.ids import PayloadId
from aorta.payload_names import check_upload_name

UploadRequest = payloads_pb2.PayloadsUploadRequest
BeforeCommit = Callable[[], Awaitable[None]]

MODE_BITS = 0o7777


class IncomingFile:
    """One file of the stream: its checked name (relative to `input/`), its mode, and its
    bytes (`chunks`), which must be consumed (or closed) before the next file is asked for.

    `complete` turns True once `chunks` ended without an error: every byte arrived and every
    check held, so a consumer failing after that failed on its own account.
    """

    def __init__(self, name: str, mode: int, source: AsyncGenerator[bytes, None]) -> None:
        self.name = name
        self.mode = mode
        self.complete = False
        self._source = source

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The file's bytes in arrival order; to be iterated once."""
        async with aclosing(self._source) as source:
            async for chunk in source:
                yield chunk
        self.complete = True


class UploadStream:
    """Reads an Upload stream file by file (see the module docstring for the rules).

    Usage: `await payload_id()` once, then `await next_file()` until it returns None, consuming
    each file's `chunks` in between. Errors are `aorta.errors` raised where the rule breaks:
    from `payload_id`, from `next_file`, or from a file's `chunks` (before its last chunk is
    given up, so a put consuming them never commits a file that broke a rule).
    """

    def __init__(self, requests: AsyncIterator[UploadRequest]) -> None:
        self._requests = requests
        self._payload = ""
        self._payload_spelling = ""
        self._pending: UploadRequest | None = None
        self._ended = False
        self._reading: str | None = None
        self._completed: set[str] = set()

    async def payload_id(self) -> PayloadId:
        """The payload the stream uploads to, read from its first message that names a file.

        `Invalid` (PAYLOAD_REQUEST_INVALID) when the stream carries no file at all (NVIDIA's
        client sends no message for an empty file), PAYLOAD_ID_INVALID when no payload or a
        malformed one is named.
        """
        self._pending = await self._next()
        if self._pending is None:
            raise Invalid(
                "the upload stream carried no file: a file is sent as messages naming it in "
                "details.name (a zero-byte file as one message with empty data)",
                code=ErrorCode.PAYLOAD_REQUEST_INVALID,
            )
        if not self._payload:
            raise Invalid(
                "the upload stream names no payload: set payload_id in its messages",
                code=ErrorCode.PAYLOAD_ID_INVALID,
            )
        return PayloadId(self._payload)

    async def next_file(self, before_commit: BeforeCommit | None = None) -> IncomingFile | None:
        """The next file of the stream, or None at its end.

        `before_commit`, when given, is awaited after the file's last chunk and before its
        `chunks` end, so it may still refuse the file by raising.
        """
        if self._reading is not None:
            raise RuntimeError(f"the chunks of {self._reading!r} were not consumed")
        message = self._pending if self._pending is not None else await self._next()
        self._pending = None
        if message is None:
            return None
        raw = message.details.name
        if raw in self._completed:
            raise Invalid(
                f"file {raw!r} comes back in the upload stream after another file started; "
                "send each file's chunks one after another, without interleaving files",
                code=ErrorCode.PAYLOAD_REQUEST_INVALID,
            )
        name = check_upload_name(raw)
        self._reading = raw
        return IncomingFile(
            name, message.details.mode & MODE_BITS, self._chunks(message, before_commit)
        )

    async def _chunks(
        self, first: UploadRequest, before_commit: BeforeCommit | None
    ) -> AsyncGenerator[bytes, None]:
        raw = first.details.name
        announced: int | None = first.details.size if first.details.size > len(first.data) else None
        received = 0
        message: UploadRequest | None = first
        while message is not None and message.details.name == raw:
            if announced is not None and message.details.size != announced:
                announced = None  # sizes that vary are not a total
            # Read once: each read of a bytes field copies it out of the message.
            data = message.data
            if data:
                received += len(data)
                yield data
            message = await self._next()
        self._pending = message
        self._reading = None
        self._completed.add(raw)
        if announced is not None and received != announced:
            raise Invalid(
                f"file {raw!r} ended after {received} bytes, but its messages announced "
                f"{announced} in details.size; it was not stored",
                code=ErrorCode.PAYLOAD_REQUEST_INVALID,
            )
        if before_commit is not None:
            await before_commit()

    async def _next(self) -> UploadRequest | None:
        """The next message that names a file, None at the end of the stream."""
        while not self._ended:
            try:
                message = await anext(self._requests)
            except StopAsyncIteration:
                self._ended = True
                break
            self._check_payload(message.payload_id.value)
            if message.details.name:
                return message
            if message.data:
                raise Invalid(
                    f"a chunk of {len(message.data)} bytes names no file: set details.name in "
                    "every message of an upload",
                    code=ErrorCode.PAYLOAD_FILE_NAME_INVALID,
                )
        return None

    def _check_payload(self, value: str) -> None:
        if not value or value == self._payload_spelling:
            return
        canonical = ids.payload_id(value)
        if not self._payload:
            self._payload, self._payload_spelling = canonical, value
            return
        if canonical == self._payload:
            return
        raise Invalid(
            f"the upload stream names payload {value!r} after payload {self._payload!r}; "
            "upload to one payload per stream",
            code=ErrorCode.PAYLOAD_REQUEST_INVALID,
        )
