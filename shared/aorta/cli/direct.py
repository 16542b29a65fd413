"""The direct path of uploads and downloads: file bytes straight to and from the blob store,
through the pre-signed URLs the gateway hands out (`aorta.v1.Payloads`, docs/payloads.md).

An upload asks for one URL per part, PUTs the parts at once straight from the file (the kernel
copies the bytes to the socket; they never pass through this process), while one thread reads
the file once for the file's SHA-256 and each part's MD5, and commits with both: the store
checks each part's bytes against its MD5 before the file becomes part of the payload, so the
SHA-256 recorded is bound to the bytes stored. A download GETs the file into a few buffers it
reuses, hashed and written as they fill, and is checked as the gRPC path's are. Where the
platform offers no URL (its blob store is a local folder, or the file is too large) the
caller sends that file through the gateway instead. The HTTP requests carry no credential of
the user's: the URL's signature is the only one.
"""

from __future__ import annotations

import hashlib
import http.client
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import SplitResult, urlsplit

import grpc
from google.protobuf.message import Message

from aorta.api import aorta_payloads_pb2, aorta_payloads_pb2_grpc, common_pb2, payloads_pb2
from aorta.cli.connection import UNARY_TIMEOUT, check, request_header
from aorta.cli.direct_receive import BLOCK_SIZE, Received
from aorta.cli.failures import CliFailure
from aorta.cli.files import LocalFile
from aorta.cli.session import Session

LARGEST_UPLOAD = 5 << 40
"""The largest file the platform hands out upload URLs for (S3's largest object)."""
SEND_SLICE = 8 << 20
"""Bytes handed to the kernel per `sendfile` of a part, between progress updates."""
UPLOAD_STREAMS = 4
"""Parts of one file sent at once, each stream on a connection of its own that it keeps."""
_CONNECT_SECONDS = 10.0
_READ_SECONDS = 300.0
T = TypeVar("T")
_HINT = "use --via-gateway to send the bytes through the platform instead"


class DirectPath:
    """The direct-path calls of one session; `close` closes the connection it keeps between
    downloads."""

    def __init__(self, session: Session) -> None:
        self._stub = aorta_payloads_pb2_grpc.PayloadsStub(session.platform.channel)
        self._kept: tuple[tuple[str, str], http.client.HTTPConnection] | None = None
        """The connection of the last download, whole and reusable, by scheme and host."""

    def close(self) -> None:
        """Closes the connection kept from the last download."""
        kept, self._kept = self._kept, None
        if kept is not None:
            kept[1].close()

    def upload(
        self, payload_id: str, local: LocalFile, advance: Callable[[str, int], None]
    ) -> aorta_payloads_pb2.PayloadsCommitDirectUploadResponse | None:
        """Uploads one file and commits it (the answer's header has its `sha256` line); None,
        with nothing sent, when the platform offers no URL for it. `StoreUnreachable`, with
        nothing sent, when the URL's host cannot be reached."""
        asked = _offered(
            self._stub.DirectUpload,
            aorta_payloads_pb2.PayloadsDirectUploadRequest(
                header=request_header(),
                payload_id=common_pb2.Identifier(value=payload_id),
                name=local.name,
                size=local.size,
            ),
        )
        if asked is None:
            return None
        check(asked, f"uploading {local.name}")
        if not asked.supported:
            return None
        size = asked.part_size
        parts = list(zip(asked.parts, range(0, max(local.size, 1), size), strict=True))
        with ThreadPoolExecutor(UPLOAD_STREAMS + 1, "aorta-upload") as pool:
            # One read for both hashes, beside the sends, which never read the file here.
            hashed = pool.submit(file_digests, local.path, local.size, size)
            lanes = [
                pool.submit(_put_parts, parts[lane::UPLOAD_STREAMS], local, size, advance)
                for lane in range(min(UPLOAD_STREAMS, len(parts)))
            ]
            for lane in lanes:
                lane.result()
            sha256, part_md5s = hashed.result()
        committed = self._stub.CommitDirectUpload(
            aorta_payloads_pb2.PayloadsCommitDirectUploadRequest(
                header=request_header(),
                payload_id=common_pb2.Identifier(value=payload_id),
                upload_id=asked.upload_id,
                details=payloads_pb2.PayloadFileDetails(
                    name=local.name, size=local.size, mode=local.mode
                ),
                sha256=sha256,
                part_md5s=part_md5s,
            ),
            timeout=None,  # completing the upload may take a while on some stores
        )
        check(committed, f"uploading {local.name}")
        return committed

    def link(
        self, payload_id: str, name: str
    ) -> aorta_payloads_pb2.PayloadsDirectDownloadResponse | None:
        """The platform's GET link for one file (with its details), checked; None when it
        offers none."""
        asked = _offered(
            self._stub.DirectDownload,
            aorta_payloads_pb2.PayloadsDirectDownloadRequest(
                header=request_header(),
                payload_id=common_pb2.Identifier(value=payload_id),
                name=name,
            ),
        )
        if asked is None:
            return None
        check(asked, f"downloading {name}")
        return asked if asked.supported else None

    def fetch(
        self,
        asked: aorta_payloads_pb2.PayloadsDirectDownloadResponse,
        advance: Callable[[str, int], None],
    ) -> Received:
        """The body of the file `asked` links to, received as the caller reads it.
        `StoreUnreachable` when the URL's host cannot be reached."""
        name = asked.details.name
        address = urlsplit(asked.link.url)
        connection, response = self._get(asked.link, address, f"downloading {name}")

        def ended(whole: bool) -> None:
            if whole and not response.will_close and self._kept is None:
                self._kept = (address.scheme, address.netloc), connection
            else:
                connection.close()

        return Received(response, connection.sock, name, advance, ended)

    def _get(
        self, link: aorta_payloads_pb2.DirectLink, address: SplitResult, action: str
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """The store's answer to `link`'s request (2xx), on the kept connection to its host
        or a new one; a kept connection the store closed meanwhile is replaced once."""
        kept, self._kept = self._kept, None
        if kept is not None and kept[0] != (address.scheme, address.netloc):
            kept[1].close()
            kept = None
        while True:
            connection = (
                kept[1] if kept is not None else _connected(address.scheme, address.netloc, action)
            )
            try:
                connection.request(link.method, _target(address), headers=dict(link.headers))
                response = connection.getresponse()
                break
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                if kept is None:
                    raise _failed(action, address.netloc, error) from None
                kept = None  # idle too long for the store: a GET is safe to send again
        if response.status >= 300:
            said = response.read(2000).decode("utf-8", "replace")
            connection.close()
            raise CliFailure(
                f"{action}: the blob store at {address.netloc} answered HTTP {response.status}: "
                f"{said.strip() or response.reason}; {_HINT}"
            )
        return connection, response


class StoreUnreachable(CliFailure):
    """The URL's host cannot be reached from here (nothing was sent): the platform's S3
    endpoint as clients see it is not this client's, and the bytes must go through the
    gateway."""


def _put_parts(
    parts: list[tuple[aorta_payloads_pb2.DirectLink, int]],
    local: LocalFile,
    part_size: int,
    advance: Callable[[str, int], None],
) -> None:
    """PUTs the parts of `local` at the offsets `parts` names (up to `part_size` bytes each),
    one after the other on one connection, straight from the file.

    http.client rather than urllib3, whose bodies are copied through Python a block at a
    time: after the headers, `sendfile` hands the file's pages to the socket (TLS sockets
    fall back to sending blocks themselves)."""
    action = f"uploading {local.name}"
    connection: http.client.HTTPConnection | None = None
    try:
        with local.path.open("rb") as handle:
            for link, offset in parts:
                address = urlsplit(link.url)
                if connection is None:
                    connection = _connected(address.scheme, address.netloc, action)
                length = max(0, min(local.size - offset, part_size))
                try:
                    response = _put(connection, link, handle, offset, length, local.name, advance)
                    said = response.read().decode("utf-8", "replace").strip() or response.reason
                except (OSError, http.client.HTTPException) as error:
                    raise _failed(action, address.netloc, error) from None
                if response.status >= 300:
                    raise CliFailure(
                        f"{action}: the blob store at {address.netloc} answered HTTP "
                        f"{response.status}: {said[:2000]}; {_HINT}"
                    )
                if response.will_close:
                    connection.close()
                    connection = None
    finally:
        if connection is not None:
            connection.close()


def _put(
    connection: http.client.HTTPConnection,
    link: aorta_payloads_pb2.DirectLink,
    handle: BinaryIO,
    offset: int,
    length: int,
    name: str,
    advance: Callable[[str, int], None],
) -> http.client.HTTPResponse:
    """One PUT of `length` bytes of the file from `offset`; the store's answer."""
    connection.putrequest(link.method, _target(urlsplit(link.url)))
    for header, value in {**link.headers, "Content-Length": str(length)}.items():
        connection.putheader(header, value)
    connection.endheaders()
    _send_range(connection, handle, offset, length, lambda count: advance(name, count))
    return connection.getresponse()


def _connected(scheme: str, host: str, action: str) -> http.client.HTTPConnection:
    """A connection to `host`, open; `StoreUnreachable` when it cannot be (nothing was sent)."""
    connection = (
        http.client.HTTPSConnection(
            host, timeout=_CONNECT_SECONDS, context=ssl.create_default_context()
        )
        if scheme == "https"
        else http.client.HTTPConnection(host, timeout=_CONNECT_SECONDS)
    )
    try:
        connection.connect()
    except ssl.SSLError as error:  # reached, but not trusted: not a matter of addresses
        connection.close()
        raise _failed(action, host, error) from None
    except OSError as error:  # refused, unknown, silent
        connection.close()
        raise StoreUnreachable(
            f"{action}: the blob store at {host} cannot be reached ({error})"
        ) from None
    if connection.sock is not None:
        connection.sock.settimeout(_READ_SECONDS)
    return connection


def _target(address: SplitResult) -> str:
    """The request target of a URL: its path and query."""
    return f"{address.path}?{address.query}".rstrip("?")


def _failed(action: str, host: str, error: Exception) -> CliFailure:
    return CliFailure(f"{action}: the blob store at {host} failed ({error}); {_HINT}")


def _send_range(
    connection: http.client.HTTPConnection,
    handle: BinaryIO,
    offset: int,
    length: int,
    advance: Callable[[int], None],
) -> None:
    """Sends `length` bytes of the file from `offset` on the connection's socket, in slices
    of `SEND_SLICE`, telling `advance` of each."""
    sock = connection.sock
    if sock is None:
        raise OSError("the connection closed before the body was sent")
    end = offset + length
    while offset < end:
        sent = sock.sendfile(handle, offset, min(SEND_SLICE, end - offset))
        if sent == 0:
            raise OSError(f"the file ended {end - offset} bytes early")
        offset += sent
        advance(sent)


def _offered(method: Callable[..., T], request: Message) -> T | None:
    """`method`'s answer to `request`; None from a platform that has no direct path at all
    (one older than it, or another Clara server: UNIMPLEMENTED)."""
    try:
        return method(request, timeout=UNARY_TIMEOUT)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise


def file_digests(path: Path, size: int, part_size: int) -> tuple[str, list[str]]:
    """The SHA-256 of the first `size` bytes of a local file and the MD5 of each of its parts
    of `part_size` bytes (one part for an empty file), from one read in large blocks (hashlib
    lets other threads run while it hashes them). `CliFailure` when the file is shorter."""
    whole = hashlib.sha256()
    md5s = []
    with path.open("rb") as handle:
        for start in range(0, max(size, 1), part_size):
            part = hashlib.md5(usedforsecurity=False)
            left = min(part_size, size - start)
            while left > 0:
                block = handle.read(min(4 * BLOCK_SIZE, left))
                if not block:
                    raise CliFailure(f"{path} is shorter than the {size} bytes it had")
                left -= len(block)
                whole.update(block)
                part.update(block)
            md5s.append(part.hexdigest())
    return whole.hexdigest(), md5s
