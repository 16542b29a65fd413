"""A Payloads server that does nothing but send and swallow bytes: the most a client moves.

`python -m bench.grpc_floor PORT SIZE` answers every Download with SIZE bytes in 1 MiB messages
serialized once, before the first call, and sent again and again; every Upload is read to its
end and dropped (`Create` names a payload "floor" for clients that ask first). No storage, no
checks, no per-message work in Python beyond handing bytes to and from gRPC. What a client
moves through it is the ceiling of any Payloads server on this machine for that client, so the
payload benchmark can tell how much of a shortfall is the gateway's and how much the client's.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import grpc

from aorta.api import common_pb2, payloads_pb2

MiB = 1 << 20
_OK = common_pb2.ResponseHeader(code=0)


def download_messages(size: int) -> tuple[bytes, bytes, int]:
    """The first message (with the file's details), every later full one, and how many."""
    data = bytes(MiB)
    details = payloads_pb2.PayloadFileDetails(name="/input/big.raw", size=size, mode=0o644)
    first = payloads_pb2.PayloadsDownloadResponse(header=_OK, details=details, data=data)
    later = payloads_pb2.PayloadsDownloadResponse(header=_OK, data=data)
    return first.SerializeToString(), later.SerializeToString(), size // MiB


async def serve(port: int, size: int) -> None:
    if size % MiB or size <= 0:
        raise SystemExit(f"the size must be a positive number of MiB, not {size} bytes")
    first, later, count = download_messages(size)
    created = payloads_pb2.PayloadsCreateResponse(
        header=_OK, payload_id=common_pb2.Identifier(value="floor")
    ).SerializeToString()

    async def create(request: bytes, context: object) -> bytes:
        return created

    async def upload(requests: AsyncIterator[bytes], context: object) -> bytes:
        received = 0
        async for message in requests:
            received += len(message)
        details = payloads_pb2.PayloadFileDetails(name="/input/big.raw", size=received)
        return payloads_pb2.PayloadsUploadResponse(header=_OK, details=details).SerializeToString()

    async def download(request: bytes, context: object) -> AsyncIterator[bytes]:
        yield first
        for _ in range(count - 1):
            yield later

    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        "Create": grpc.unary_unary_rpc_method_handler(create),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Download": grpc.unary_stream_rpc_method_handler(download),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("nvidia.clara.platform.Payloads", handlers)]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
