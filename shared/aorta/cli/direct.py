"""The direct path of uploads and downloads: file bytes straight to and from the blob store,
through the pre-signed URLs the gateway hands out (`aorta.v1.Payloads`, docs/payloads.md).

An upload asks for a URL, PUTs the file in one request, hashing it as it goes, and commits it
with that SHA-256 (the platform checks the bytes it received against it before the file becomes
part of the payload); a download GETs the file and checks it as the gRPC path does. Where the
platform offers no URL (its blob store is a local folder, or the file is too large for one PUT)
the caller sends that file through the gateway instead. The HTTP requests carry no credential
of the user's: the URL's signature is the only one.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import urlsplit

import grpc
import urllib3
from google.protobuf.message import Message

from aorta.api import aorta_payloads_pb2, aorta_payloads_pb2_grpc, common_pb2, payloads_pb2
from aorta.cli.connection import UNARY_TIMEOUT, check, request_header
from aorta.cli.failures import CliFailure
from aorta.cli.files import LocalFile
from aorta.cli.session import Session

LARGEST_UPLOAD = 5 << 40
"""The largest file the platform hands out upload URLs for (S3's largest object)."""
BLOCK_SIZE = 1 << 20
"""Bytes per read and socket write: large blocks keep a fast store's rate."""
READ_AHEAD = 8
"""Blocks a download reads ahead of the hashing and writing."""
UPLOAD_STREAMS = 4
"""Parts of one file sent at once (files over 64 MiB are several parts)."""
_TIMEOUT = urllib3.Timeout(connect=10.0, read=300.0)
T = TypeVar("T")
_HINT = "use --via-gateway to send the bytes through the platform instead"


class DirectPath:
    """The direct-path calls of one session, with one HTTP connection pool."""

    def __init__(self, session: Session) -> None:
        self._stub = aorta_payloads_pb2_grpc.PayloadsStub(session.platform.channel)
        self._http = urllib3.PoolManager(
            timeout=_TIMEOUT, retries=False, blocksize=BLOCK_SIZE, maxsize=UPLOAD_STREAMS
        )

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
        with ThreadPoolExecutor(UPLOAD_STREAMS + 1, "aorta-upload") as pool:
            whole = pool.submit(file_sha256, local.path)
            sending = [
                pool.submit(self._put_part, link, local, offset, asked.part_size, advance)
                for link, offset in zip(
                    asked.parts, range(0, max(local.size, 1), asked.part_size), strict=True
                )
            ]
            part_md5s = [part.result() for part in sending]
            sha256 = whole.result()
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

    def _put_part(
        self,
        link: aorta_payloads_pb2.DirectLink,
        local: LocalFile,
        offset: int,
        part_size: int,
        advance: Callable[[str, int], None],
    ) -> str:
        """PUTs the part of `local` at `offset` (up to `part_size` bytes); its MD5."""
        length = max(0, min(local.size - offset, part_size))
        digest = hashlib.md5(usedforsecurity=False)
        with local.path.open("rb") as handle:
            handle.seek(offset)
            body = _range(handle, length, digest, lambda count: advance(local.name, count))
            headers = {**link.headers, "Content-Length": str(length)}
            self._send(link, f"uploading {local.name}", body=body, headers=headers).release_conn()
        return digest.hexdigest()

    def download(
        self, payload_id: str, name: str, advance: Callable[[str, int], None]
    ) -> Iterator[bytes] | None:
        """The bytes of one file as the store sends them; None when the platform offers no
        URL for it. `StoreUnreachable` when the URL's host cannot be reached."""
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
        if not asked.supported:
            return None
        link = asked.link
        response = self._send(link, f"downloading {name}", headers=dict(link.headers))
        return _read_ahead(_received(response, name, advance))

    def _send(
        self,
        link: aorta_payloads_pb2.DirectLink,
        action: str,
        *,
        headers: dict[str, str],
        body: Iterator[bytes] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        host = urlsplit(link.url).netloc
        try:
            response = self._http.request(
                link.method,
                link.url,
                body=body,
                headers=headers,
                preload_content=False,
                decode_content=False,
            )
        except urllib3.exceptions.ConnectTimeoutError as error:  # refused, unknown, silent
            raise StoreUnreachable(
                f"{action}: the blob store at {host} cannot be reached ({error})"
            ) from None
        except urllib3.exceptions.HTTPError as error:
            raise CliFailure(
                f"{action}: the blob store at {host} failed ({error}); {_HINT}"
            ) from None
        if response.status >= 300:
            said = response.read(2000).decode("utf-8", "replace")
            response.release_conn()
            raise CliFailure(
                f"{action}: the blob store at {host} answered HTTP {response.status}: "
                f"{said.strip() or response.reason}; {_HINT}"
            )
        return response


class StoreUnreachable(CliFailure):
    """The URL's host cannot be reached from here (nothing was sent): the platform's S3
    endpoint as clients see it is not this client's, and the bytes must go through the
    gateway."""


def _received(
    response: urllib3.BaseHTTPResponse, name: str, advance: Callable[[str, int], None]
) -> Iterator[bytes]:
    try:
        while data := response.read(BLOCK_SIZE):
            advance(name, len(data))
            yield data
    except urllib3.exceptions.HTTPError as error:
        raise CliFailure(f"downloading {name} from the blob store broke off: {error}") from None
    finally:
        response.release_conn()


def _offered(method: Callable[..., T], request: Message) -> T | None:
    """`method`'s answer to `request`; None from a platform that has no direct path at all
    (one older than it, or another Clara server: UNIMPLEMENTED)."""
    try:
        return method(request, timeout=UNARY_TIMEOUT)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise


def _range(
    handle: BinaryIO, length: int, digest: hashlib._Hash, advance: Callable[[int], None]
) -> Iterator[bytes]:
    """`length` bytes of a file from where `handle` stands, as an HTTP body, hashed into
    `digest` as they are read, telling `advance` of every block sent."""
    while length > 0 and (block := handle.read(min(BLOCK_SIZE, length))):
        length -= len(block)
        digest.update(block)
        yield block
        advance(len(block))


def _read_ahead(chunks: Iterator[bytes], depth: int = READ_AHEAD) -> Iterator[bytes]:
    """`chunks`, read by a thread of its own up to `depth` chunks ahead, so the network keeps
    sending while the caller hashes and writes (both let other threads run meanwhile)."""
    ready: queue.Queue[bytes | BaseException | None] = queue.Queue(depth)
    stop = threading.Event()

    def hand(item: bytes | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not hand(chunk):
                    break
            else:
                hand(None)
        except BaseException as error:  # handed to the caller, raised there
            hand(error)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="aorta-download", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def file_sha256(path: Path) -> str:
    """The SHA-256 of a local file, read in large blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(4 * BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()
