"""What metrics and tracing cost: the jobs benchmark with both on, against both off, in one run.

`bench_jobs`' many-jobs figure (`JOBS` one-operator jobs started at once, jobs per second from
the first `Start` to the last `job.stopped`) on a fresh platform in this process, run in the
order `ORDER` (mirrored around its middle, so that a machine growing busier or quieter during
the run weighs on every side alike), after one run left out that pays for what a process does
once (imports, the first operator's start); each side's figure is the mean of its two runs.

- off: `AORTA_METRICS=off` (no gRPC interceptor, no bus timer, nothing fed) and no tracing;
- metrics: every metric fed, no tracing, to tell the two costs apart;
- on: every metric fed, and tracing on with the OTLP/gRPC exporter sending every span to a
  collector in this process (a `grpc.aio` server of OpenTelemetry's TraceService that counts
  the spans it receives), as a platform with `OTEL_EXPORTER_OTLP_ENDPOINT` set does.

The target is less than 5 % fewer jobs per second with both on. Jobs per second on a machine
other work shares moves by more than that from run to run, so the report also gives the CPU
time this process spent per job, which other processes disturb far less: what metrics and
tracing cost is CPU in the platform's own process.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from aorta.logger import configure_logging
from aorta.observability import metrics, tracing
from bench.bench_jobs import JOBS, platform_many, with_platform

TARGET_LOSS_PERCENT = 5.0
ORDER = ("off", "metrics", "on", "on", "metrics", "off")


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


@asynccontextmanager
async def collector() -> AsyncIterator[tuple[SpanCounter, str]]:
    """A `SpanCounter` serving on a free loopback port; yields it and its address."""
    counter = SpanCounter()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(counter, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield counter, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def jobs_per_second(side: str, endpoint: str) -> tuple[float, float]:
    """The many-jobs figure on a fresh platform with `side`'s metrics and tracing, and the CPU
    seconds this process (the platform, its threads included) spent per job."""
    metrics.set_recording(side != "off")
    if side == "on":
        provider = tracing.new_provider()
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracing.install(provider)
    cpu = time.process_time()
    try:
        many = await with_platform(platform_many)
        cpu = time.process_time() - cpu
    finally:
        # Exports what is still buffered; the exporter's thread calls the collector, which
        # this loop serves, so it must not block the loop.
        await asyncio.to_thread(tracing.shutdown)
        metrics.set_recording(True)
    return JOBS / float(many["seconds"]), cpu / JOBS


async def measure() -> dict[str, Any]:
    sides = dict.fromkeys(ORDER)
    rates: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    async with collector() as (counter, endpoint):
        await jobs_per_second("off", endpoint)
        for side in ORDER:
            jobs_per_s, cpu_per_job = await jobs_per_second(side, endpoint)
            rates[side].append(jobs_per_s)
            cpu[side].append(cpu_per_job)
    rate = {side: statistics.mean(values) for side, values in rates.items()}
    ms = {side: statistics.mean(values) * 1000 for side, values in cpu.items()}
    loss = (rate["off"] - rate["on"]) / rate["off"] * 100
    report: dict[str, Any] = {"cores": os.cpu_count(), "jobs": JOBS, "order": "-".join(ORDER)}
    for side in sides:
        report[f"jobs_per_s_{side}"] = [round(value, 1) for value in rates[side]]
    for side in sides:
        report[f"jobs_per_s_{side}_mean"] = round(rate[side], 1)
    report |= {
        "loss_percent_metrics_only": round((rate["off"] - rate["metrics"]) / rate["off"] * 100, 1),
        "loss_percent_metrics_and_tracing": round(loss, 1),
        "loss_target_percent": TARGET_LOSS_PERCENT,
        "loss_within_target": loss < TARGET_LOSS_PERCENT,
    }
    for side in sides:
        report[f"platform_cpu_ms_per_job_{side}"] = round(ms[side], 2)
    for side in ("metrics", "on"):
        increase = (ms[side] - ms["off"]) / ms["off"] * 100
        report[f"platform_cpu_increase_percent_{side}"] = round(increase, 1)
    report["spans_received"] = counter.spans
    return report


def run() -> dict[str, Any]:
    configure_logging("json", "error")
    return asyncio.run(measure())


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
