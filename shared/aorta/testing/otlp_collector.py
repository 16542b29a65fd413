"""Where tests read the spans the platform makes.

`otlp_collector` is an OTLP/gRPC trace collector in the test's own process: what `aorta up`
exports its spans to when `OTEL_EXPORTER_OTLP_ENDPOINT` names it, kept in memory for the test
(or benchmark) to read. It speaks the real protocol
(`opentelemetry.proto.collector.trace.v1.TraceService/Export`), so a platform under test runs
its exporter exactly as it would against an OpenTelemetry Collector. `memory_spans` turns
tracing on in the test's own process, exporting to the SDK's in-memory exporter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aorta.observability import tracing


@dataclass(frozen=True)
class CollectedSpan:
    """One exported span: ids in hex, times in Unix seconds, string and number attributes."""

    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start: float
    end: float
    attributes: dict[str, Any]
    error: bool


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: OtlpCollector) -> None:
        self._collector = collector

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(resource.get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        CollectedSpan(
                            service=service,
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            start=span.start_time_unix_nano / 1e9,
                            end=span.end_time_unix_nano / 1e9,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            error=span.status.code == span.status.STATUS_CODE_ERROR,
                        )
                    )
        self._collector.add(spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpCollector:
    """The spans received so far (`spans`), and a wait for the ones a test expects."""

    def __init__(self) -> None:
        self._spans: list[CollectedSpan] = []
        self._changed = threading.Condition()

    def add(self, spans: list[CollectedSpan]) -> None:
        with self._changed:
            self._spans.extend(spans)
            self._changed.notify_all()

    @property
    def spans(self) -> list[CollectedSpan]:
        with self._changed:
            return list(self._spans)

    def wait_for(
        self, found: Callable[[list[CollectedSpan]], bool], timeout: float = 30.0
    ) -> list[CollectedSpan]:
        """The spans once `found(spans)` holds; `TimeoutError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not found(list(self._spans)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the spans expected did not arrive in {timeout:g} s")
                self._changed.wait(left)
            return list(self._spans)


@contextmanager
def otlp_collector(port: int = 0) -> Iterator[tuple[OtlpCollector, str]]:
    """A collector listening on loopback (`port`, 0: a free one) and its endpoint URL, for
    `OTEL_EXPORTER_OTLP_ENDPOINT`; stopped on exit."""
    collector = OtlpCollector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    service = _TraceService(collector)
    # The generated module of opentelemetry-proto has no type hints.
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield collector, f"http://127.0.0.1:{bound}"
    finally:
        server.stop(grace=None)


@contextmanager
def memory_spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process (`aorta.observability.tracing`), every span exported at once
    to the exporter yielded; off again on exit."""
    exporter = InMemorySpanExporter()
    provider = tracing.new_provider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)
