"""Local files on their way up: which files a path means, their payload names, 64 KiB chunks.

Payload file names are POSIX paths relative to the folder the user gave (a single file is sent
under its own name), as Clara sends them: relative to the payload's input folder, never the
local folders above. Chunks are read lazily, so a large upload never sits in memory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aorta.api import common_pb2, payloads_pb2
from aorta.cli.connection import request_header
from aorta.cli.failures import UsageFailure

CHUNK_SIZE = 64 * 1024
"""Bytes per streamed message, as Clara's clients send them."""


@dataclass(frozen=True)
class LocalFile:
    """A file to upload: where it is, the name it gets, its size and permission bits."""

    path: Path
    name: str
    size: int
    mode: int


def collect(source: Path, prefix: str = "") -> list[LocalFile]:
    """The files `source` names, sorted by payload name.

    A file is named after itself; a folder contributes every file below it (symlinked files
    followed, symlinked folders not, so a link loop cannot hang the walk), named relative to
    it. `prefix` (a folder inside the payload) is put before every name.
    """
    base = PurePosixPath(prefix.strip("/")) if prefix.strip("/") else PurePosixPath()
    if source.is_file():
        return [_local(source, base / source.name)]
    if not source.is_dir():
        raise UsageFailure(f"{source} is neither a file nor a folder")
    found: list[LocalFile] = []
    for folder, folders, names in os.walk(source):
        folders.sort()
        for name in names:
            path = Path(folder) / name
            if path.is_file():
                relative = PurePosixPath(*path.relative_to(source).parts)
                found.append(_local(path, base / relative))
    return sorted(found, key=lambda f: f.name)


def _local(path: Path, name: PurePosixPath) -> LocalFile:
    info = path.stat()
    return LocalFile(path, str(name), info.st_size, stat.S_IMODE(info.st_mode))


def read_chunks(path: Path, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The bytes of `path` in chunks of at most `chunk_size`; one empty chunk for an empty file,
    so that the file is still announced to the server."""
    with path.open("rb") as handle:
        first = True
        while True:
            block = handle.read(chunk_size)
            if block or first:
                yield block
            if len(block) < chunk_size:
                return
            first = False


def upload_requests(
    payload_id: str,
    files: Sequence[LocalFile],
    advance: Callable[[str, int], None] = lambda _name, _count: None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[payloads_pb2.PayloadsUploadRequest]:
    """One `Payloads.Upload` stream for all `files`: every message names its payload and file
    (`details.size` is the whole file's size; Clara servers join chunks by name); the header
    rides in the first message. `advance(name, bytes)` is told as each chunk is handed to gRPC.
    """
    first = True
    for local in files:
        for block in read_chunks(local.path, chunk_size):
            request = payloads_pb2.PayloadsUploadRequest(
                payload_id=common_pb2.Identifier(value=payload_id),
                details=payloads_pb2.PayloadFileDetails(
                    name=local.name, size=local.size, mode=local.mode
                ),
                data=block,
            )
            if first:
                request.header.CopyFrom(request_header())
                first = False
            yield request
            advance(local.name, len(block))


def text_chunks(text: str, chunk_size: int = CHUNK_SIZE) -> Iterator[str]:
    """`text` in pieces of at most `chunk_size` UTF-8 bytes, never splitting a character;
    one empty piece for an empty text."""
    data = text.encode("utf-8")
    if not data:
        yield ""
        return
    start = 0
    while start < len(data):
        end = min(start + chunk_size, len(data))
        # Back off to the start of a character: UTF-8 continuation bytes are 0b10xxxxxx.
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        yield data[start:end].decode("utf-8")
        start = end
