"""The clients `bench_payloads` times against the gateway and the floor: NVIDIA's client in its
own virtualenv and process (`UPLOAD`, `DOWNLOAD`, run by `clara`), a plain `aorta.api` gRPC
client in this process (64 KiB messages up, as Clara clients send them), and the checks and
clean-up of what they uploaded."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from aorta.api import common_pb2, payloads_pb2, payloads_pb2_grpc
from aorta.payload_names import checksums
from aorta.testing.clara_client import run_clara_python

CHUNK = 64 * 1024

UPLOAD = """
import json, sys, time
from nvidia_clara.payloads_client import PayloadsClient
target, path = sys.argv[1], sys.argv[2]
with PayloadsClient(target) as client:
    payload_id = client.create_payload().payload_id
    started = time.perf_counter()
    with open(path, "rb") as source:
        details = client.upload(payload_id, "big.raw", file_object=source)
    seconds = time.perf_counter() - started
print(json.dumps({"payload_id": payload_id.value, "seconds": seconds, "size": details.size}))
"""

DOWNLOAD = """
import json, sys, time
import nvidia_clara.payload_types as types
from nvidia_clara.payloads_client import PayloadsClient

class Discard:
    size = 0
    def write(self, data):
        self.size += len(data)

target, payload_id = sys.argv[1], sys.argv[2]
sink = Discard()
with PayloadsClient(target) as client:
    started = time.perf_counter()
    client.download_from(types.PayloadId(payload_id), "/input/big.raw", sink)
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "size": sink.size}))
"""


def clara(code: str, *args: str) -> dict[str, Any]:
    """Runs a snippet under NVIDIA's client; its JSON output."""
    result = run_clara_python(code, args=args, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"NVIDIA's client failed:\n{result.stderr}")
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def nvidia_download(target: str, payload_id: str, size: int) -> float:
    """Seconds NVIDIA's client took to download the benchmark's file (bytes discarded)."""
    downloaded = clara(DOWNLOAD, target, payload_id)
    if downloaded["size"] != size:
        raise RuntimeError(f"NVIDIA's client downloaded {downloaded['size']} of {size} bytes")
    seconds: float = downloaded["seconds"]
    return seconds


def plain_upload(target: str, source: Path) -> tuple[float, str]:
    """Seconds to upload `source` with `aorta.api` stubs in 64 KiB messages, and the payload."""
    with grpc.insecure_channel(target) as channel:
        stub = payloads_pb2_grpc.PayloadsStub(channel)
        payload_id = stub.Create(payloads_pb2.PayloadsCreateRequest()).payload_id.value

        def requests() -> Iterator[payloads_pb2.PayloadsUploadRequest]:
            ident = common_pb2.Identifier(value=payload_id)
            with source.open("rb") as handle:
                while data := handle.read(CHUNK):
                    details = payloads_pb2.PayloadFileDetails(name="big.raw", size=len(data))
                    yield payloads_pb2.PayloadsUploadRequest(
                        payload_id=ident, details=details, data=data
                    )

        started = time.perf_counter()
        reply = stub.Upload(requests())
        seconds = time.perf_counter() - started
    if reply.header.code != 0:
        raise RuntimeError(f"upload failed: {list(reply.header.messages)}")
    return seconds, payload_id


def delete_payload(target: str, payload_id: str) -> None:
    """Deletes a payload the benchmark uploaded, and its bytes."""
    with grpc.insecure_channel(target) as channel:
        stub = payloads_pb2_grpc.PayloadsStub(channel)
        reply = stub.Delete(
            payloads_pb2.PayloadsDeleteRequest(payload_id=common_pb2.Identifier(value=payload_id))
        )
    if reply.header.code != 0:
        raise RuntimeError(f"deleting {payload_id} failed: {list(reply.header.messages)}")


def plain_download(target: str, payload_id: str, size: int) -> float:
    """Seconds to download the file with `aorta.api` stubs (bytes discarded)."""
    request = payloads_pb2.PayloadsDownloadRequest(
        payload_id=common_pb2.Identifier(value=payload_id), name="/input/big.raw"
    )
    received = 0
    with grpc.insecure_channel(target) as channel:
        stub = payloads_pb2_grpc.PayloadsStub(channel)
        started = time.perf_counter()
        for message in stub.Download(request):
            received += len(message.data)
        seconds = time.perf_counter() - started
    if received != size:
        raise RuntimeError(f"downloaded {received} of {size} bytes")
    return seconds


def check_upload(target: str, payload_id: str, digest: str) -> None:
    """Raises unless the platform recorded the source's sha256 for the uploaded file."""
    request = payloads_pb2.PayloadsDetailsRequest(
        payload_id=common_pb2.Identifier(value=payload_id)
    )
    with grpc.insecure_channel(target) as channel:
        stub = payloads_pb2_grpc.PayloadsStub(channel)
        lines = [line for item in stub.Details(request) for line in item.header.messages]
    recorded = checksums(lines).get("/input/big.raw")
    if recorded != digest:
        raise RuntimeError(f"the platform recorded sha256 {recorded}, the source has {digest}")
