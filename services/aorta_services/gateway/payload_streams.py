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

The messages come as wire bytes and are read with `encoded.ChunkDecoder`: a chunk is sliced
out of its message instead of being parsed into one, and the other fields, the same in every
message of a file from Clara's clients, are parsed and checked once while they repeat.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

from google.protobuf.message import DecodeError

from aorta import ids
from aorta.api import payloads_pb2
from aorta.errors import ErrorCode, Invalid
from aorta.ids import PayloadId
from aorta.payload_names import check_upload_name
from aorta_services.gateway.encoded import ChunkDecoder
from aorta_services.gateway.rpc import WireRequests

UploadRequest = payloads_pb2.PayloadsUploadRequest
BeforeCommit = Callable[[], Awaitable[None]]
Chunk = tuple[UploadRequest, memoryview]
"""A message as the stream reads it: its fields but `data` (shared by the messages that carry
the same ones), and its `data`."""

MODE_BITS = 0o7777


class IncomingFile:
    """One file of the stream: its checked name (relative to `input/`), its mode, and its
    bytes (`chunks`), which must be consumed (or closed) before the next file is asked for.

    `complete` turns True once `chunks` ended without an error: every byte arrived and every
    check held, so a consumer failing after that failed on its own account.
    """

    def __init__(
        self,
        name: str,
        mode: int,
        read: Callable[[IncomingFile], AsyncGenerator[memoryview, None]],
    ) -> None:
        self.name = name
        self.mode = mode
        self.complete = False
        self._source = read(self)

    def chunks(self) -> AsyncGenerator[memoryview, None]:
        """The file's bytes in arrival order, read-only views of the messages; to be iterated
        once."""
        return self._source


class UploadStream:
    """Reads an Upload stream file by file (see the module docstring for the rules).

    Usage: `await payload_id()` once, then `await next_file()` until it returns None, consuming
    each file's `chunks` in between. Errors are `aorta.errors` raised where the rule breaks:
    from `payload_id`, from `next_file`, or from a file's `chunks` (before its last chunk is
    given up, so a put consuming them never commits a file that broke a rule).
    """

    def __init__(self, requests: WireRequests) -> None:
        self._requests = requests
        self._decoder = ChunkDecoder(UploadRequest, "data")
        self._checked: UploadRequest | None = None  # the fields `_next` checked last
        self._payload = ""
        self._payload_spelling = ""
        self._pending: Chunk | None = None
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
        fields, _ = message
        raw = fields.details.name
        if raw in self._completed:
            raise Invalid(
                f"file {raw!r} comes back in the upload stream after another file started; "
                "send each file's chunks one after another, without interleaving files",
                code=ErrorCode.PAYLOAD_REQUEST_INVALID,
            )
        name = check_upload_name(raw)
        self._reading = raw
        return IncomingFile(
            name,
            fields.details.mode & MODE_BITS,
            lambda file: self._chunks(file, message, before_commit),
        )

    async def _chunks(
        self, file: IncomingFile, first: Chunk, before_commit: BeforeCommit | None
    ) -> AsyncGenerator[memoryview, None]:
        fields, data = first
        raw = fields.details.name
        size = fields.details.size
        announced: int | None = size if size > len(data) else None
        received = 0
        message: Chunk | None = first
        while message is not None:
            # Fields the decoder gave before are the same bytes: already compared.
            if message[0] is not fields:
                fields = message[0]
                if fields.details.name != raw:
                    break
                if announced is not None and fields.details.size != announced:
                    announced = None  # sizes that vary are not a total
            data = message[1]
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
        file.complete = True

    async def _next(self) -> Chunk | None:
        """The next message that names a file, None at the end of the stream."""
        while not self._ended:
            raw = await self._requests.next()
            if raw is None:
                self._ended = True
                break
            try:
                fields, data = self._decoder.decode(raw)
            except DecodeError:
                await self._requests.malformed()
            if fields is not self._checked:
                self._check_payload(fields.payload_id.value)
                self._checked = fields
            if fields.details.name:
                return fields, data
            if data:
                raise Invalid(
                    f"a chunk of {len(data)} bytes names no file: set details.name in "
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
