"""A Jobs server that does nothing but stream a List of stored-sized jobs: what any server
sending Clara's wire (one `JobsListResponse` per job) reaches on this machine.

`python -m bench.list_floor PORT HISTORY HEAVY` answers every `Jobs.List` with `HISTORY` items,
`HEAVY` of them spread as `bench.bench_lists` seeds them and carrying its heavy metadata, newest
first, each serialized before the first call (by `list_wire`, the platform's own encoding) and
handed to gRPC as bytes. No store, no bus, no per-item work in Python beyond the handover. A
heavy item is encoded once and sent for every heavy job (the same size; holding a hundred
copies of 3.5 MiB would only measure this server's memory). The list benchmark streams it with
the same client as the platform, so `list_floor_jobs_per_s` is the ceiling of one gRPC message
per job here, and the platform's share of it says how much of a shortfall is the platform's.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import grpc

from aorta.api import jobs_pb2
from aorta_services.scheduler.domain import list_wire
from aorta_services.scheduler.domain.listing import JobListing
from bench.bench_lists import heavy_metadata, is_heavy, job_document


def list_items(history: int, heavy: int) -> list[bytes]:
    """The wire bytes of every item of a whole List of the seeded history, newest first."""
    start = 0.0
    light = {"site": "north"}
    heavy_item = b""
    items = []
    for n in reversed(range(history)):
        if is_heavy(n, history, heavy):
            if not heavy_item:
                document = job_document(n, start + n, heavy_metadata())
                heavy_item = list_wire.list_item(JobListing.from_document(document))
            items.append(heavy_item)
        else:
            document = job_document(n, start + n, light)
            items.append(list_wire.list_item(JobListing.from_document(document)))
    return items


async def serve(port: int, history: int, heavy: int) -> None:
    items = list_items(history, heavy)

    async def list_jobs(request: bytes, context: object) -> AsyncIterator[bytes]:
        for item in items:
            yield item

    service = jobs_pb2.DESCRIPTOR.services_by_name["Jobs"].full_name
    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        "List": grpc.unary_stream_rpc_method_handler(list_jobs),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, handlers)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
