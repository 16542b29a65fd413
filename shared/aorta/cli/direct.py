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
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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

LARGEST_UPLOAD = 5 << 30
"""The largest file the platform hands out an upload URL for (S3's largest single PUT)."""
BLOCK_SIZE = 1 << 20
"""Bytes per read and socket write: large blocks keep a fast store's rate."""
READ_AHEAD = 8
"""Blocks a download reads ahead of the hashing and writing."""
HASH_AHEAD = 8
"""Blocks an upload sends ahead of its hashing."""
_TIMEOUT = urllib3.Timeout(connect=10.0, read=300.0)
T = TypeVar("T")
_HINT = "use --via-gateway to send the bytes through the platform instead"


class DirectPath:
    """The direct-path calls of one session, with one HTTP connection pool."""

    def __init__(self, session: Session) -> None:
        self._stub = aorta_payloads_pb2_grpc.PayloadsStub(session.platform.channel)
        self._http = urllib3.PoolManager(timeout=_TIMEOUT, retries=False, blocksize=BLOCK_SIZE)

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
        digests = _Digests()
        with local.path.open("rb") as handle, digests:
            body = _blocks(handle, digests, lambda count: advance(local.name, count))
            headers = {**asked.link.headers, "Content-Length": str(local.size)}
            response = self._send(asked.link, f"uploading {local.name}", body=body, headers=headers)
        response.release_conn()
        committed = self._stub.CommitDirectUpload(
            aorta_payloads_pb2.PayloadsCommitDirectUploadRequest(
                header=request_header(),
                payload_id=common_pb2.Identifier(value=payload_id),
                upload_id=asked.upload_id,
                details=payloads_pb2.PayloadFileDetails(
                    name=local.name, size=local.size, mode=local.mode
                ),
                sha256=digests.sha256.hexdigest(),
                md5=digests.md5.hexdigest(),
            ),
            timeout=None,  # completing the upload may take a while on some stores
        )
        check(committed, f"uploading {local.name}")
        return committed

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


def _blocks(handle: BinaryIO, digests: _Digests, advance: Callable[[int], None]) -> Iterator[bytes]:
    """A file as an HTTP body, hashed into `digests` as it is read (the file is read once),
    telling `advance` of every block sent."""
    while block := handle.read(BLOCK_SIZE):
        digests.update(block)
        yield block
        advance(len(block))


class _Digests:
    """The SHA-256 and MD5 of an upload, each computed in a thread of its own while the blocks
    are sent (hashlib lets other threads run), at most `HASH_AHEAD` blocks behind; final once
    the context exits."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self._workers = [ThreadPoolExecutor(1, "aorta-hash") for _ in range(2)]
        self._pending: deque[Future[None]] = deque()

    def update(self, block: bytes) -> None:
        for digest, worker in zip((self.sha256, self.md5), self._workers, strict=True):
            self._pending.append(worker.submit(digest.update, block))
        while len(self._pending) > 2 * HASH_AHEAD:
            self._pending.popleft().result()

    def __enter__(self) -> _Digests:
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self._workers:
            worker.shutdown(wait=True)
        while self._pending:
            self._pending.popleft().result()


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
