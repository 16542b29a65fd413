"""An OTLP/gRPC trace collector in a process of its own, for `bench_observability`.

`python -m bench.span_sink` serves OpenTelemetry's TraceService on a free loopback port, prints
that port on its first line, counts the spans it receives and, once its standard input closes,
prints the count and the CPU seconds it spent, then exits. Decoding the spans is the
collector's work, not the platform's: in its own process it stays out of the platform's CPU
time, as a real collector would.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class SpanCounter(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace collector that keeps nothing but the number of spans it received."""

    def __init__(self) -> None:
        self.spans = 0

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.spans += sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        return trace_service_pb2.ExportTraceServiceResponse()


async def serve() -> None:
    counter = SpanCounter()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(counter, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    # Standard input closes when the benchmark is done with the collector.
    await asyncio.to_thread(sys.stdin.read)
    await server.stop(None)
    print(counter.spans, time.process_time(), flush=True)


if __name__ == "__main__":
    asyncio.run(serve())
